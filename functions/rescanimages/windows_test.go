package rescanimages_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/rescanimages"
	"github.com/palisade-sec/palisade/functions/scanimage"
	"github.com/palisade-sec/palisade/shared/localregistry"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/msrc/msrctest"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/shared/windowsimage"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// msrcCVEs are the Windows findings of an image, in order.
func msrcCVEs(t *testing.T, fs map[string]model.Finding) string {
	t.Helper()
	var out []string
	for id, f := range fs {
		if f.PkgType == windowsimage.PkgType && f.Status == model.FindingOpen {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// TestWindowsImagesThroughThePipeline pushes Windows images built here to
// palisade dev's registry (which raises ACR's ImagePushed events), scans
// them on push (scanimage) and rescans them (rescanimages), both behind the
// Functions host emulator, with the Windows advisory data coming from the
// loopback MSRC API and kept in the store's state container, as the
// function app keeps it.
func TestWindowsImagesThroughThePipeline(t *testing.T) {
	clk := &clock{now: time.Date(2024, 12, 20, 6, 0, 0, 0, time.UTC)}
	f := msrctest.NewServer(t)
	f.Publish("2024-Nov", msrctest.NovRelease, msrctest.Doc(t, "2024-Nov"))
	f.Publish("2024-Dec", msrctest.DecRelease, msrctest.Doc(t, "2024-Dec"))
	st := openStore(t)
	src := msrc.NewSource(msrc.StateStore{St: st, Now: clk.Now}, msrc.Options{BaseURL: f.BaseURL(), Months: 3, Now: clk.Now})
	sc, err := scanner.New(t.Context(), scanner.Options{CacheDir: t.TempDir(), DBDir: buildDB(t, dbBase),
		Logger: zerolog.New(zerolog.NewTestWriter(t)), Windows: src})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()

	var mu sync.Mutex
	var pushed []json.RawMessage
	reg := testenv.ServeCounting(t, func(host string) http.Handler {
		return localregistry.New(host, zerolog.Nop(), clk.Now, func(ev json.RawMessage) {
			mu.Lock()
			defer mu.Unlock()
			pushed = append(pushed, ev)
		})
	})
	h := newHarness(t)
	push := scanimage.New(st, sc, scanimage.Options{Registries: []string{reg.Host}, Now: clk.Now})
	h.srv.Handle(scanimage.Name, push.Handle)
	h.srv.Handle(rescanimages.Name, rescanimages.New(st, sc, nil, rescanimages.Options{Now: clk.Now, DBMaxAge: time.Hour}).Handle)
	rescan := func() model.RescanRun {
		t.Helper()
		if err := h.host.FireTimer(t.Context(), rescanimages.Name); err != nil {
			t.Fatal(err)
		}
		rs := runs(t, st)
		return rs[len(rs)-1]
	}
	deliver := func() {
		t.Helper()
		mu.Lock()
		evs := slices.Clone(pushed)
		mu.Unlock()
		for _, ev := range evs {
			if err := h.host.DeliverEventGrid(t.Context(), scanimage.Name, []json.RawMessage{ev}, false); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The DB lifecycle fetches the Windows data: three months are held,
	// October is not published, so the data says it is incomplete.
	run := rescan()
	if !strings.HasPrefix(run.WindowsData, "msrc:2024-Dec:") || !run.WindowsDataStale ||
		!slices.ContainsFunc(run.WindowsDataProblems, func(p string) bool { return strings.HasPrefix(p, "2024-Oct: not in the MSRC updates index") }) {
		t.Fatalf("first run: %+v", run)
	}

	core := scantest.Layer(t, scantest.WindowsBaseFiles(windowsimage.ServerCore))
	nano := scantest.Layer(t, scantest.WindowsBaseFiles(windowsimage.NanoServer))
	app := scantest.Layer(t, scantest.WindowsAppFiles())
	images := []struct {
		repo, osVersion, label string
		base                   v1.Layer
		status                 string
		msrc                   string // Windows findings, sorted
		msrcAfterJan           string
	}{
		{"team/core-below", "10.0.20348.2848", "mcr.microsoft.com/windows/servercore:ltsc2022", core, model.ImageActive,
			"CVE-2024-43451 CVE-2024-43639 CVE-2024-49019 CVE-2024-49039 CVE-2024-49090 CVE-2024-49112 CVE-2024-49138",
			"CVE-2024-43451 CVE-2024-43639 CVE-2024-49019 CVE-2024-49039 CVE-2024-49090 CVE-2024-49112 CVE-2024-49138 CVE-2025-21298"},
		{"team/core-at", "10.0.20348.2849", "", core, model.ImageActive,
			"CVE-2024-49019 CVE-2024-49090 CVE-2024-49112 CVE-2024-49138",
			"CVE-2024-49019 CVE-2024-49090 CVE-2024-49112 CVE-2024-49138 CVE-2025-21298"},
		{"team/nano-above", "10.0.20348.2967", "", nano, model.ImageActive, "", "CVE-2025-21298"},
		{"team/2025-at-jan", "10.0.26100.2894", "mcr.microsoft.com/windows/nanoserver:ltsc2025", nano, model.ImageActive, "", ""},
		{"team/2016", "10.0.14393.7515", "mcr.microsoft.com/windows/servercore:ltsc2016", core, model.ImageUnsupported, "", ""},
	}
	digests := map[string]string{}
	for _, im := range images {
		digests[im.repo] = scantest.Push(t, reg.Host, im.repo, "1.0", scantest.WindowsImage(t, im.osVersion, im.label, im.base, app))
	}
	deliver()
	for _, im := range images {
		img, err := vulnstore.GetImage(t.Context(), st, digests[im.repo])
		if err != nil {
			t.Fatal(err)
		}
		fs := findingsByVuln(t, st, digests[im.repo])
		if img.Status != im.status || img.OSFamily != "windows" || msrcCVEs(t, fs) != im.msrc {
			t.Errorf("%s on push: status %s (%s), Windows findings %q, want %q", im.repo, img.Status, img.Error, msrcCVEs(t, fs), im.msrc)
		}
		if _, ok := fs["GHSA-5crp-9r3c-p9vr"]; !ok {
			t.Errorf("%s: the NuGet package's finding is missing", im.repo)
		}
	}
	// Event Grid delivers again: nothing to do.
	deliver()
	if s := push.Stats(); s.Scanned != int64(len(images)) || s.Skipped != int64(len(images)) {
		t.Fatalf("scanimage stats %+v", s)
	}
	pulls := reg.Requests("", "")

	// December is revised and comes back malformed: its last good data is
	// kept, the run says so, and nothing changes.
	f.Publish("2024-Dec", "2024-12-18T08:00:00Z", []byte(`{"DocumentTitle":{"Value":"December 2024 Security Updates"},"Vulnerability":[`))
	clk.Set(clk.Now().Add(2 * time.Hour))
	run = rescan()
	if !run.WindowsDataStale || !slices.ContainsFunc(run.WindowsDataProblems, func(p string) bool {
		return strings.HasPrefix(p, "2024-Dec: ") && strings.Contains(p, "keeping the data downloaded")
	}) || run.Skipped != len(images) || run.Rescanned != 0 {
		t.Fatalf("run with a malformed month: %+v", run)
	}
	for _, im := range images {
		if got := msrcCVEs(t, findingsByVuln(t, st, digests[im.repo])); got != im.msrc {
			t.Errorf("%s after the malformed month: %q, want %q", im.repo, got, im.msrc)
		}
	}

	// January is published (and December mended): the rescan adds its
	// CVEs with no request to the registry.
	f.Publish("2024-Dec", "2024-12-19T08:00:00Z", msrctest.Doc(t, "2024-Dec"))
	f.Publish("2025-Jan", msrctest.JanRelease, msrctest.Doc(t, "2025-Jan"))
	jan := time.Date(2025, 1, 15, 3, 0, 0, 0, time.UTC)
	clk.Set(jan)
	run = rescan()
	if !strings.HasPrefix(run.WindowsData, "msrc:2025-Jan:") || run.WindowsDataStale || run.Rescanned != len(images) || run.New != 3 || run.Fixed != 0 {
		t.Fatalf("run after January: %+v", run)
	}
	for _, im := range images {
		fs := findingsByVuln(t, st, digests[im.repo])
		if got := msrcCVEs(t, fs); got != im.msrcAfterJan {
			t.Errorf("%s after January: %q, want %q", im.repo, got, im.msrcAfterJan)
		}
		if nf, ok := fs["CVE-2025-21298"]; ok && (!nf.FirstSeen.Equal(jan) || nf.FixedVersion == "") {
			t.Errorf("%s: January's finding %+v", im.repo, nf)
		}
	}
	if n := reg.Requests("", ""); n != pulls {
		t.Fatalf("the rescans sent %d requests to the registry", n-pulls)
	}
	img, err := vulnstore.GetImage(t.Context(), st, digests["team/2016"])
	if err != nil {
		t.Fatal(err)
	}
	if img.Status != model.ImageUnsupported || !strings.Contains(img.Error, "Windows Server 2016") {
		t.Errorf("Windows Server 2016 image: %s (%s)", img.Status, img.Error)
	}
}
