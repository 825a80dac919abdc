package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/palisade-sec/palisade/functions/cli"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/msrc/msrctest"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// withDBMirror points the settings at an empty cache dir and a loopback
// mirror of the fixture DB, so that downloads are on (as they must be for
// the Windows advisory data) and reach nothing outside.
func withDBMirror(t *testing.T) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "..", "shared", "scanner", "testdata", "db", "*.yaml"))
	dir := t.TempDir()
	if err := scanner.BuildFixtureDB(dir, scantest.DBUpdatedAt, files...); err != nil {
		t.Fatal(err)
	}
	ref := scantest.Registry(t) + "/mirror/trivy-db:2"
	scantest.PushDB(t, ref, dir)
	t.Setenv("PALISADE_TRIVY_DB_REPOSITORY", ref)
	t.Setenv("PALISADE_TRIVY_CACHE_DIR", t.TempDir())
	t.Setenv("PALISADE_TRIVY_DEMO_DB", "false")
	t.Setenv("PALISADE_MSRC_MONTHS", "2")
	t.Setenv("PALISADE_LOG_LEVEL", "warn")
}

// windowsTar writes a Server Core 2022 image at the November update, with
// an application layer, as `docker save` does.
func windowsTar(t *testing.T) string {
	t.Helper()
	img := scantest.WindowsImage(t, "10.0.20348.2849", "",
		scantest.Layer(t, scantest.WindowsBaseFiles(windowsimage.ServerCore)), scantest.Layer(t, scantest.WindowsAppFiles()))
	tag, _ := name.NewTag("example.com/team/winapp:1")
	p := filepath.Join(t.TempDir(), "winapp.tar")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScanWindowsImageTar(t *testing.T) {
	withDBMirror(t)
	f := msrctest.NewServer(t)
	f.Publish("2024-Nov", msrctest.NovRelease, msrctest.Doc(t, "2024-Nov"))
	f.Publish("2024-Dec", msrctest.DecRelease, msrctest.Doc(t, "2024-Dec"))
	tar := windowsTar(t)

	code, out, stderr := run(t, "--format", "json", "--input", tar, "--msrc-url", f.BaseURL())
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got jsonOut
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, fd := range got.Findings {
		ids = append(ids, fd.VulnID)
	}
	want := "CVE-2024-49112 CVE-2021-23337 CVE-2024-49019 CVE-2024-49090 CVE-2024-49138 GHSA-5crp-9r3c-p9vr"
	if got.Image.OS != "Windows Server 2022 Server Core 10.0.20348.2849" || got.Image.Status != model.ImageActive || strings.Join(ids, " ") != want {
		t.Fatalf("windows image: %s %s %q\nfindings %s\nwant     %s", got.Image.OS, got.Image.Status, got.Image.Error, strings.Join(ids, " "), want)
	}
	if got := f.Requests(); len(got) != 2 {
		t.Fatalf("documents downloaded: %q", got)
	}

	// The next run reuses the data under the cache dir: MSRC is not asked
	// again (it is gone) and nothing is reported stale.
	f.Close()
	code, out, stderr = run(t, "--input", tar, "--msrc-url", f.BaseURL(), "--fail-on", "critical")
	if code != cli.ExitPolicy || strings.Contains(stderr, "Windows advisory data") {
		t.Fatalf("second run: exit %d, want %d; stderr:\n%s", code, cli.ExitPolicy, stderr)
	}
	for _, w := range []string{"Windows Server 2022 Server Core 10.0.20348.2849 (active", "CVE-2024-49112", "10.0.20348.2966", "+msrc:2024-Dec:"} {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q:\n%s", w, out)
		}
	}
	code, out, _ = run(t, "--format", "sarif", "--input", tar)
	var sarif struct {
		Runs []struct {
			Results []struct {
				RuleID  string
				Level   string
				Message struct{ Text string }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &sarif); err != nil || code != cli.ExitOK {
		t.Fatalf("sarif: exit %d, %v", code, err)
	}
	if r := sarif.Runs[0].Results[0]; r.RuleID != "CVE-2024-49112" || r.Level != "error" || !strings.Contains(r.Message.Text, "servercore:ltsc2022 at revision ≥ 2966") {
		t.Fatalf("first SARIF result %+v", r)
	}
}

// A Windows image in a registry, by tag: the base told from its files.
func TestScanWindowsRegistryImage(t *testing.T) {
	withDBMirror(t)
	f := msrctest.NewServer(t)
	f.Publish("2024-Nov", msrctest.NovRelease, msrctest.Doc(t, "2024-Nov"))
	f.Publish("2024-Dec", msrctest.DecRelease, msrctest.Doc(t, "2024-Dec"))
	host := scantest.Registry(t)
	scantest.Push(t, host, "team/winsvc", "2.0", scantest.WindowsImage(t, "10.0.17763.6532", "",
		scantest.Layer(t, scantest.WindowsBaseFiles(windowsimage.NanoServer))))
	code, out, stderr := run(t, host+"/team/winsvc:2.0", "--format", "json", "--msrc-url", f.BaseURL())
	var got jsonOut
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != cli.ExitOK {
		t.Fatalf("exit %d, %v: %s", code, err, stderr)
	}
	var ids []string
	for _, fd := range got.Findings {
		ids = append(ids, fd.VulnID)
	}
	// Windows Server 2019 at November's update lacks December's fixes.
	if got.Image.OS != "Windows Server 2019 Nano Server 10.0.17763.6532" || got.Image.Platform != "windows/amd64" ||
		strings.Join(ids, " ") != "CVE-2024-49112 CVE-2024-49118 CVE-2024-49138" {
		t.Fatalf("image %s %s, findings %q", got.Image.OS, got.Image.Platform, ids)
	}
}

// With no Windows data and MSRC out of reach, the image cannot be assessed:
// it says so and fails a --fail-on gate rather than passing as clean.
func TestScanWindowsImageWithoutMSRC(t *testing.T) {
	withDBMirror(t)
	code, out, stderr := run(t, "--format", "json", "--fail-on", "critical", "--input", windowsTar(t), "--msrc-url", "http://127.0.0.1:1/cvrf/v3.0")
	var got jsonOut
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if code != cli.ExitPolicy || got.Image.Status != model.ImageUnsupported ||
		!strings.HasPrefix(got.Image.Error, "no Windows advisory data (MSRC unreachable)") || !strings.Contains(stderr, "NO WINDOWS ADVISORY DATA") {
		t.Fatalf("exit %d, image %s %q\nstderr:\n%s", code, got.Image.Status, got.Image.Error, stderr)
	}
}

// Offline (--skip-db-update, or the setting), MSRC is not called either.
func TestScanWindowsImageOffline(t *testing.T) {
	withFixtureDB(t)
	f := msrctest.NewServer(t)
	f.Publish("2024-Dec", msrctest.DecRelease, msrctest.Doc(t, "2024-Dec"))
	code, out, stderr := run(t, "--format", "json", "--skip-db-update", "--input", windowsTar(t), "--msrc-url", f.BaseURL())
	var got jsonOut
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: exit %d %s", err, code, stderr)
	}
	if code != cli.ExitOK || got.Image.Status != model.ImageUnsupported || got.Image.Error != "no Windows advisory data: never refreshed" {
		t.Fatalf("exit %d, image %s %q", code, got.Image.Status, got.Image.Error)
	}
	if r := f.Requests(); len(r) != 0 {
		t.Fatalf("offline scan asked MSRC for %q", r)
	}
}
