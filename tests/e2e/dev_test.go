package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/scanner/scantest"
	"github.com/palisade-sec/palisade/shared/windowsimage"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// TestDevScansOnPush runs `palisade dev` offline, outside the source root
// (the test's directory holds no host.json: the built-in definitions are
// used), pushes a Debian image to its local registry, and waits for the
// scan to appear in the query API, labelled as demo data. Offline there is
// no MSRC either: a Windows image is recorded as unsupported, saying why,
// never as clean.
func TestDevScansOnPush(t *testing.T) {
	devAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	regAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	tmp := t.TempDir()
	cmd := []string{"dev"}
	env := []string{
		"PALISADE_DEV_ADDR=" + devAddr,
		"PALISADE_DEV_REGISTRY_ADDR=" + regAddr,
		"PALISADE_STORE_PATH=" + filepath.Join(tmp, "palisade.db"),
		"PALISADE_TRIVY_CACHE_DIR=" + filepath.Join(tmp, "trivy"),
		"PALISADE_TRIVY_SKIP_DB_UPDATE=true",
		// Offline: the feeds cannot be downloaded.
		"PALISADE_KEV_URL=http://127.0.0.1:1/kev.json",
		"PALISADE_EPSS_URL=http://127.0.0.1:1/epss.csv.gz",
		// Unreachable, as api.msrc.microsoft.com is offline, but at once.
		"PALISADE_MSRC_URL=http://127.0.0.1:1/cvrf/v3.0",
	}
	proc := testenv.Start(t, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+devAddr+"/admin/host/status", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return testenv.DialReady(regAddr)(ctx)
	}, env, binary, cmd...)

	img := scantest.Image(t, scantest.Layer(t, scantest.DebianFiles()))
	digest := scantest.Push(t, regAddr, "shop/web", "1.0", img)

	got := waitScanned(t, devAddr, digest, proc)
	if got.Status != "active" || !got.DemoData || got.Counts["CRITICAL"]+got.Counts["HIGH"]+got.Counts["MEDIUM"]+got.Counts["LOW"] == 0 {
		t.Errorf("image = %+v, want an active scan with findings labelled as demo data", got)
	}
	if !strings.Contains(strings.ToLower(proc.Output()), "demo") {
		t.Errorf("the log does not say that the demo DB is in use:\n%s", proc.Output())
	}
	_, body := getJSON(t, "http://"+devAddr+"/api/images/"+digest+"/findings?sort=priority")
	if !strings.Contains(body, "CVE-2023-4911") {
		t.Errorf("findings lack the glibc advisory of the demo DB: %s", body)
	}
	// No exploitation feed offline: the findings are prioritised without
	// one and say so, as the log and the API do.
	var findings struct {
		Items []struct {
			VulnID       string
			Priority     string
			MissingFeeds []string
			DemoData     bool
		}
	}
	if err := json.Unmarshal([]byte(body), &findings); err != nil {
		t.Fatal(err)
	}
	for _, f := range findings.Items {
		if f.Priority == "" || strings.Join(f.MissingFeeds, ",") != "kev,epss" || !f.DemoData {
			t.Errorf("finding %+v: want a priority, the missing feeds named, demo data", f)
		}
	}
	if !strings.Contains(proc.Output(), "NO EXPLOITATION FEED for KEV and EPSS") {
		t.Errorf("the log does not say there is no exploitation feed:\n%s", proc.Output())
	}
	if _, body := getJSON(t, "http://"+devAddr+"/api/intel"); !strings.Contains(body, `"stale":true`) || !strings.Contains(body, "never downloaded") {
		t.Errorf("/api/intel: %s", body)
	}
	resp, err := http.Post("http://"+devAddr+"/admin/functions/refreshintel", "application/json", strings.NewReader(`{"input":""}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(proc.Output(), `"kev: last download failed: GET http://127.0.0.1:1/kev.json`) {
		if time.Now().After(deadline) {
			t.Fatalf("refreshintel did not report the failed download:\n%s", proc.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The console: / goes there, it lists the image and says the data is
	// demo data; the banner printed its address.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get("http://" + devAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/api/console/" {
		t.Errorf("GET / = %d %s, want a redirect to the console", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = http.Get("http://" + devAddr + "/api/console/images")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "shop/web:1.0") || !strings.Contains(string(page), "Demo data.") ||
		resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("console images page: %d\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(proc.Output(), "http://"+devAddr+"/api/console/") {
		t.Errorf("the banner does not give the console's address:\n%s", proc.Output())
	}

	win := scantest.WindowsImage(t, "10.0.20348.2849", "mcr.microsoft.com/windows/servercore:ltsc2022",
		scantest.Layer(t, scantest.WindowsBaseFiles(windowsimage.ServerCore)))
	wgot := waitScanned(t, devAddr, scantest.Push(t, regAddr, "shop/winsvc", "1.0", win), proc)
	if wgot.Status != "unsupported" || !strings.HasPrefix(wgot.Error, "no Windows advisory data (MSRC unreachable)") {
		t.Errorf("Windows image = %+v, want unsupported for want of MSRC data", wgot)
	}
	if !strings.Contains(proc.Output(), "NO WINDOWS ADVISORY DATA") {
		t.Errorf("the log does not say that there is no Windows advisory data:\n%s", proc.Output())
	}

	// The daily rescan, run now through the admin API as Core Tools allows.
	resp, err = http.Post("http://"+devAddr+"/admin/functions/rescanimages", "application/json", strings.NewReader(`{"input":""}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("rescanimages run: status %d\n%s", resp.StatusCode, proc.Output())
	}
	if !strings.Contains(proc.Output(), `"function":"rescanimages"`) {
		t.Errorf("no rescanimages log line:\n%s", proc.Output())
	}
}

// scanned is what the query API says of a scanned image.
type scanned struct {
	Digest, Status, Error string
	DemoData              bool
	Counts                map[string]int
}

// waitScanned polls the query API until the image has been scanned.
func waitScanned(t *testing.T, devAddr, digest string, proc *testenv.Process) scanned {
	t.Helper()
	var got scanned
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, body := getJSON(t, "http://"+devAddr+"/api/images/"+digest)
		if code == 200 {
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if got.Status != "" {
				return got
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("image %s not scanned within 90 s (last answer %d %s)\n%s", digest, code, body, proc.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
