package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/localregistry"
	"github.com/palisade-sec/palisade/shared/msrc/msrctest"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
	"github.com/palisade-sec/palisade/shared/windowsimage"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// dbMirror publishes the scanner's fixture DB to a loopback registry, as a
// mirror of Trivy's DB repository, and returns its reference.
func dbMirror(t *testing.T) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(testenv.Root(t), "shared", "scanner", "testdata", "db", "*.yaml"))
	dir := t.TempDir()
	if err := scanner.BuildFixtureDB(dir, scantest.DBUpdatedAt, files...); err != nil {
		t.Fatal(err)
	}
	ref := scantest.Registry(t) + "/mirror/trivy-db:2"
	scantest.PushDB(t, ref, dir)
	return ref
}

// msrcAPI is the loopback MSRC API with November and December 2024.
func msrcAPI(t *testing.T) *msrctest.Server {
	t.Helper()
	f := msrctest.NewServer(t)
	f.Publish("2024-Nov", msrctest.NovRelease, msrctest.Doc(t, "2024-Nov"))
	f.Publish("2024-Dec", msrctest.DecRelease, msrctest.Doc(t, "2024-Dec"))
	return f
}

// windowsImage is a Server Core 2022 image at the November update with an
// application layer.
func windowsImage(t *testing.T, osVersion string) v1.Image {
	t.Helper()
	return scantest.WindowsImage(t, osVersion, "",
		scantest.Layer(t, scantest.WindowsBaseFiles(windowsimage.ServerCore)), scantest.Layer(t, scantest.WindowsAppFiles()))
}

// TestWindowsScanOnPush runs the built binary behind the host emulator with
// PALISADE_MSRC_URL on the loopback MSRC API: the DB lifecycle fetches the
// Windows data, a Windows image pushed to a registry raising ACR's events
// is scanned on push, and the query API serves its Windows findings.
func TestWindowsScanOnPush(t *testing.T) {
	f := msrcAPI(t)
	var mu sync.Mutex
	var events []json.RawMessage
	reg := testenv.ServeCounting(t, func(host string) http.Handler {
		return localregistry.New(host, zerolog.Nop(), time.Now, func(ev json.RawMessage) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, ev)
		})
	})
	h, front := launch(t,
		"PALISADE_REGISTRIES="+reg.Host, "PALISADE_REGISTRY_INSECURE="+reg.Host, "PALISADE_REGISTRY_ENTRA_ID=false",
		"PALISADE_TRIVY_CACHE_DIR="+t.TempDir(), "PALISADE_TRIVY_DB_REPOSITORY="+dbMirror(t), "PALISADE_TRIVY_DEMO_DB=false",
		"PALISADE_MSRC_URL="+f.BaseURL(), "PALISADE_MSRC_MONTHS=2")
	if err := h.FireTimer(t.Context(), "rescanimages"); err != nil {
		t.Fatal(err)
	}
	if got := f.Requests(); !slices.Contains(got, "2024-Nov") || !slices.Contains(got, "2024-Dec") {
		t.Fatalf("the DB lifecycle fetched %q", got)
	}

	digest := scantest.Push(t, reg.Host, "shop/winapp", "1.0", windowsImage(t, "10.0.20348.2849"))
	mu.Lock()
	evs := slices.Clone(events)
	mu.Unlock()
	if len(evs) != 1 {
		t.Fatalf("%d push events", len(evs))
	}
	if err := h.DeliverEventGrid(t.Context(), "scanimage", evs, false); err != nil {
		t.Fatal(err)
	}

	code, body := getJSON(t, front.URL+"/api/images/"+digest)
	var img struct{ OS, OSFamily, Status, DBVersion string }
	if err := json.Unmarshal([]byte(body), &img); err != nil || code != 200 {
		t.Fatalf("GET image: %d %s", code, body)
	}
	if img.OS != "Windows Server 2022 Server Core 10.0.20348.2849" || img.OSFamily != "windows" || img.Status != "active" || !strings.Contains(img.DBVersion, "+msrc:2024-Dec:") {
		t.Fatalf("image %+v", img)
	}
	code, body = getJSON(t, front.URL+"/api/images/"+digest+"/findings?package=Windows%20Server%202022%20Server%20Core")
	var page struct {
		Items []struct{ VulnID, FixedVersion, Remediation string }
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil || code != 200 {
		t.Fatalf("GET findings: %d %s", code, body)
	}
	var ids []string
	for _, it := range page.Items {
		ids = append(ids, it.VulnID)
		if it.FixedVersion != "10.0.20348.2966" || !strings.Contains(it.Remediation, "servercore:ltsc2022") {
			t.Errorf("finding %+v", it)
		}
	}
	slices.Sort(ids)
	if strings.Join(ids, " ") != "CVE-2024-49019 CVE-2024-49090 CVE-2024-49112 CVE-2024-49138" {
		t.Fatalf("Windows findings %q\n%s", ids, body)
	}
}

// TestWindowsScanCLI: `palisade scan` on a Windows image tar, with the MSRC
// data fetched once into the cache dir.
func TestWindowsScanCLI(t *testing.T) {
	f := msrcAPI(t)
	t.Setenv("PALISADE_TRIVY_CACHE_DIR", t.TempDir())
	t.Setenv("PALISADE_TRIVY_DB_REPOSITORY", dbMirror(t))
	t.Setenv("PALISADE_TRIVY_DEMO_DB", "false")
	t.Setenv("PALISADE_MSRC_MONTHS", "2")
	tag, _ := name.NewTag("example.com/shop/winapp:1")
	tar := filepath.Join(t.TempDir(), "winapp.tar")
	if err := tarball.WriteToFile(tar, tag, windowsImage(t, "10.0.20348.2965")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		code, out, errOut := runCLI(t, "scan", "--input", tar, "--msrc-url", f.BaseURL(), "--format", "sarif", "--fail-on", "critical")
		var log struct {
			Runs []struct {
				Results []struct {
					RuleID  string
					Message struct{ Text string }
				}
			}
		}
		if err := json.Unmarshal([]byte(out), &log); err != nil || len(log.Runs) != 1 || len(log.Runs[0].Results) == 0 {
			t.Fatalf("exit %d: not a SARIF log with results (%v)\n%s\n%s", code, err, out, errOut)
		}
		first := log.Runs[0].Results[0]
		if code != 1 || first.RuleID != "CVE-2024-49112" || !strings.Contains(first.Message.Text, "Windows Server 2022 Server Core 10.0.20348.2965") {
			t.Fatalf("exit %d, want 1 (a critical Windows finding); first result %+v\n%s", code, first, errOut)
		}
	}
	if got := f.Requests(); len(got) != 2 {
		t.Fatalf("documents downloaded over two runs: %q, want each month once", got)
	}
}
