package scanner_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/msrc/msrctest"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
	"github.com/palisade-sec/palisade/shared/windowsimage"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// winRig is a scanner with the fixture DB and Windows advisory data from
// the loopback MSRC API holding November and December 2024 (prepared, as
// the handler does when it starts), and a registry that counts what it
// serves.
type winRig struct {
	s    *scanner.Scanner
	msrc *msrctest.Server
	reg  *testenv.CountingRegistry
	clk  *testClock
}

func newWinRig(t *testing.T) *winRig {
	t.Helper()
	r := newUnpreparedWinRig(t)
	if w := r.s.PrepareWindows(t.Context()); !strings.HasPrefix(w.Version, "msrc:2024-Dec:") || w.Stale {
		t.Fatalf("prepared Windows data: %+v", w)
	}
	return r
}

func newUnpreparedWinRig(t *testing.T) *winRig {
	t.Helper()
	f := msrctest.NewServer(t)
	f.Publish("2024-Nov", msrctest.NovRelease, msrctest.Doc(t, "2024-Nov"))
	f.Publish("2024-Dec", msrctest.DecRelease, msrctest.Doc(t, "2024-Dec"))
	clk := &testClock{t: time.Date(2024, 12, 20, 6, 0, 0, 0, time.UTC)}
	src := msrc.NewSource(&msrc.MemoryStore{}, msrc.Options{BaseURL: f.BaseURL(), Months: 2, Now: clk.Now})
	s := newScanner(t, scanner.Options{Windows: src})
	return &winRig{s: s, msrc: f, reg: testenv.NewCountingRegistry(t), clk: clk}
}

func (r *winRig) scan(t *testing.T, repo string, img v1.Image) *scanner.Result {
	t.Helper()
	dig := scantest.Push(t, r.reg.Host, repo, "1", img)
	res, err := r.s.Scan(t.Context(), scanner.Target{Registry: r.reg.Host, Repository: repo, Digest: dig, Tag: "1"})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// vulnIDs lists the findings' ids in their order, with the path of those
// in a language package.
func vulnIDs(fs []model.Finding) string {
	var out []string
	for _, f := range fs {
		id := f.VulnID
		if f.PkgPath != "" {
			id += "@" + f.PkgPath
		}
		out = append(out, id)
	}
	return strings.Join(out, " ")
}

const (
	lodash     = "CVE-2021-23337@app/node_modules/lodash/package.json"
	newtonsoft = "GHSA-5crp-9r3c-p9vr@app/shop.deps.json"
)

// Windows images built here, pushed to a registry and scanned: the base
// told from the label or the files, the findings exactly right below, at
// and above the fixed builds of the hand-made documents (see msrctest), the
// language packages of the Files/ tree found, the utility VM's not.
func TestScanWindowsImages(t *testing.T) {
	r := newWinRig(t)
	core := scantest.Layer(t, scantest.WindowsBaseFiles(windowsimage.ServerCore))
	nano := scantest.Layer(t, scantest.WindowsBaseFiles(windowsimage.NanoServer))
	app := scantest.Layer(t, scantest.WindowsAppFiles())
	for _, tc := range []struct {
		name, osVersion, label string
		base                   v1.Layer
		os, status, reason     string
		want                   string
	}{
		{name: "server core by label, below November", osVersion: "10.0.20348.2848", label: "mcr.microsoft.com/windows/servercore:ltsc2022", base: core,
			os: "Windows Server 2022 Server Core 10.0.20348.2848", status: model.ImageActive,
			want: "CVE-2024-43639 CVE-2024-49112 " + lodash + " CVE-2024-43451 CVE-2024-49019 CVE-2024-49039 CVE-2024-49090 CVE-2024-49138 " + newtonsoft},
		{name: "server core by its files, at November", osVersion: "10.0.20348.2849", base: core,
			os: "Windows Server 2022 Server Core 10.0.20348.2849", status: model.ImageActive,
			want: "CVE-2024-49112 " + lodash + " CVE-2024-49019 CVE-2024-49090 CVE-2024-49138 " + newtonsoft},
		{name: "nano server by its files, just below December", osVersion: "10.0.20348.2965", base: nano,
			os: "Windows Server 2022 Nano Server 10.0.20348.2965", status: model.ImageActive,
			want: "CVE-2024-49112 " + lodash + " CVE-2024-49019 CVE-2024-49090 CVE-2024-49138 " + newtonsoft},
		{name: "nano server by label, at December", osVersion: "10.0.20348.2966", label: "mcr.microsoft.com/dotnet/aspnet:8.0-nanoserver-ltsc2022", base: nano,
			os: "Windows Server 2022 Nano Server 10.0.20348.2966", status: model.ImageActive,
			want: lodash + " " + newtonsoft},
		{name: "server 2019 above December", osVersion: "10.0.17763.6660", base: core,
			os: "Windows Server 2019 Server Core 10.0.17763.6660", status: model.ImageActive,
			want: lodash + " " + newtonsoft},
		{name: "server 2016 is not covered", osVersion: "10.0.14393.7515", label: "mcr.microsoft.com/windows/servercore:ltsc2016", base: core,
			os: "Windows 10.0.14393.7515", status: model.ImageUnsupported, reason: "Windows build 14393 (Windows Server 2016) is not covered",
			want: lodash + " " + newtonsoft},
		{name: "no Windows system files", osVersion: "10.0.20348.2966", base: app,
			os: "Windows Server 2022 10.0.20348.2966", status: model.ImageUnsupported, reason: "could not tell the Windows base",
			want: lodash + " " + newtonsoft},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := r.scan(t, "team/win", scantest.WindowsImage(t, tc.osVersion, tc.label, tc.base, app))
			img := res.Image
			if img.OS != tc.os || img.OSFamily != "windows" || img.Status != tc.status || img.Platform != "windows/amd64" ||
				!strings.Contains(img.Error, tc.reason) || (tc.reason == "") != (img.Error == "") {
				t.Errorf("summary: os %q family %q status %s platform %s error %q", img.OS, img.OSFamily, img.Status, img.Platform, img.Error)
			}
			if !strings.HasPrefix(img.DBVersion, scantest.DBVersion+"+msrc:2024-Dec:") {
				t.Errorf("DB version %q: want the Trivy DB's and the Windows data's", img.DBVersion)
			}
			if got := vulnIDs(res.Findings); got != tc.want {
				t.Errorf("findings\n got %s\nwant %s", got, tc.want)
			}
			var total int
			for _, n := range img.Counts {
				total += n
			}
			if total != len(res.Findings) || img.Packages != 4 {
				t.Errorf("counts %v for %d findings, %d packages", img.Counts, len(res.Findings), img.Packages)
			}
			// Rescans re-match the stored inventory: the same result.
			m, err := r.s.Match(t.Context(), res.Image, res.Inventory)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(res.Image, m.Image); d != "" {
				t.Errorf("re-matched summary differs (-scan +match):\n%s", d)
			}
			if d := cmp.Diff(res.Findings, m.Findings); d != "" {
				t.Errorf("re-matched findings differ (-scan +match):\n%s", d)
			}
		})
	}

	// One scan in full, in golden files.
	res := r.scan(t, "team/win", scantest.WindowsImage(t, "10.0.20348.2849", "", core, app))
	golden(t, "windows-findings.golden.json", normalise(res.Findings, res.Image.Digest, r.reg.Host))
	golden(t, "windows-inventory.golden.json", res.Inventory)
}

// A base layer's verdict is kept with its analysis: an image on the same
// base is identified without fetching the base again. A base layer first
// analysed as another layer has no verdict, and is read to tell it.
func TestWindowsBaseLayerReadOnce(t *testing.T) {
	r := newWinRig(t)
	nano := scantest.Layer(t, scantest.WindowsBaseFiles(windowsimage.NanoServer))
	nanoDigest, err := nano.Digest()
	if err != nil {
		t.Fatal(err)
	}
	blob := "/blobs/" + nanoDigest.String()
	app := scantest.Layer(t, scantest.WindowsAppFiles())
	other := scantest.Layer(t, []scantest.File{{Name: "Files/other/readme.txt", Body: []byte("other")}})

	// The base as the second layer of an image: analysed, no verdict.
	r.scan(t, "team/odd", scantest.WindowsImage(t, "10.0.20348.2966", "mcr.microsoft.com/windows/nanoserver:ltsc2022", other, nano))
	if n := r.reg.Requests("GET", blob); n != 1 {
		t.Fatalf("base blob fetched %d times, want 1", n)
	}
	// As the base of an image that does not name it: its analysis is
	// cached without a verdict, so it is read once more to tell the base.
	res := r.scan(t, "team/a", scantest.WindowsImage(t, "10.0.20348.2966", "", nano, app))
	if res.Image.OS != "Windows Server 2022 Nano Server 10.0.20348.2966" || r.reg.Requests("GET", blob) != 2 {
		t.Fatalf("os %q, base blob fetched %d times, want 2", res.Image.OS, r.reg.Requests("GET", blob))
	}
	// A new base, analysed as the base: its verdict is cached with it.
	core := scantest.Layer(t, scantest.WindowsBaseFiles(windowsimage.ServerCore))
	coreDigest, _ := core.Digest()
	r.scan(t, "team/b", scantest.WindowsImage(t, "10.0.20348.2966", "", core, app))
	res = r.scan(t, "team/c", scantest.WindowsImage(t, "10.0.20348.2966", "", core, other))
	if n := r.reg.Requests("GET", "/blobs/"+coreDigest.String()); n != 1 || res.Image.OS != "Windows Server 2022 Server Core 10.0.20348.2966" {
		t.Fatalf("os %q, server core blob fetched %d times, want 1", res.Image.OS, n)
	}
}

// No Windows advisory data: Windows images are unsupported, with the
// reason, never clean; scans never call MSRC themselves. Once MSRC answers,
// the stored inventory is matched with no pull.
func TestWindowsWithoutAdvisoryData(t *testing.T) {
	r := newUnpreparedWinRig(t)
	image := func(rev string) v1.Image {
		return scantest.WindowsImage(t, "10.0.20348."+rev, "mcr.microsoft.com/windows/servercore:ltsc2022",
			scantest.Layer(t, scantest.WindowsBaseFiles(windowsimage.ServerCore)))
	}
	res := r.scan(t, "team/win", image("2849"))
	if res.Image.Status != model.ImageUnsupported || res.Image.Error != "no Windows advisory data: never refreshed" ||
		len(res.Findings) != 0 || res.Image.DBVersion != scantest.DBVersion+"+msrc:none" {
		t.Fatalf("never refreshed: status %s error %q findings %d version %s", res.Image.Status, res.Image.Error, len(res.Findings), res.Image.DBVersion)
	}
	if got := r.msrc.Requests(); len(got) != 0 {
		t.Fatalf("a scan asked MSRC for %q", got)
	}

	r.msrc.FailUpdates(http.StatusServiceUnavailable)
	if w := r.s.PrepareWindows(t.Context()); w.Version != "" || !w.Stale {
		t.Fatalf("prepared with MSRC down: %+v", w)
	}
	res = r.scan(t, "team/win", image("2849"))
	if res.Image.Status != model.ImageUnsupported || !strings.HasPrefix(res.Image.Error, "no Windows advisory data (MSRC unreachable): updates index: GET ") ||
		res.Image.DBVersion != scantest.DBVersion+"+msrc:none" {
		t.Fatalf("MSRC down: status %s error %q version %s", res.Image.Status, res.Image.Error, res.Image.DBVersion)
	}
	if db := r.s.DB(); db.Windows.Version != "" || !db.Windows.Stale {
		t.Errorf("windows data %+v: want none, stale", db.Windows)
	}
	r.msrc.FailUpdates(0)

	// The DB lifecycle refreshes; the stored inventory is matched again.
	db, err := r.s.RefreshDB(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(db.Windows.Version, "msrc:2024-Dec:") || db.Windows.Stale || !slices.Equal(db.Windows.Months, []string{"2024-Nov", "2024-Dec"}) {
		t.Fatalf("after refresh: %+v", db.Windows)
	}
	if got := db.VersionFor(res.Image); got == res.Image.DBVersion {
		t.Fatalf("the version for the image did not change: %s", got)
	}
	pulls := r.reg.Requests("", "")
	m, err := r.s.Match(t.Context(), res.Image, res.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	if m.Image.Status != model.ImageActive || m.Image.Error != "" || len(m.Findings) != 4 || m.Image.DBVersion != db.VersionFor(m.Image) {
		t.Fatalf("re-matched: %+v, %d findings", m.Image, len(m.Findings))
	}
	if n := r.reg.Requests("", ""); n != pulls {
		t.Errorf("matching made %d registry requests", n-pulls)
	}
}

// A manifest list of Windows images (one per release): the newest build is
// assessed.
func TestWindowsManifestList(t *testing.T) {
	r := newWinRig(t)
	core := scantest.Layer(t, scantest.WindowsBaseFiles(windowsimage.ServerCore))
	var idx v1.ImageIndex = empty.Index
	for _, v := range []string{"10.0.17763.6659", "10.0.20348.2849", "10.0.20348.2700"} {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        scantest.WindowsImage(t, v, "mcr.microsoft.com/windows/servercore", core),
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: v}},
		})
	}
	ref, err := name.NewTag(r.reg.Host + "/team/multi:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	dig, _ := idx.Digest()
	res, err := r.s.Scan(t.Context(), scanner.Target{Registry: r.reg.Host, Repository: "team/multi", Digest: dig.String()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Digest != dig.String() || res.Image.Platform != "windows/amd64" || res.Image.OS != "Windows Server 2022 Server Core 10.0.20348.2849" {
		t.Fatalf("summary %+v", res.Image)
	}
}

// A docker save archive of a Windows image scans as the registry image does
// (no registry manifest is made for it).
func TestWindowsArchive(t *testing.T) {
	r := newWinRig(t)
	img := scantest.WindowsImage(t, "10.0.20348.2849", "",
		scantest.Layer(t, scantest.WindowsBaseFiles(windowsimage.NanoServer)), scantest.Layer(t, scantest.WindowsAppFiles()))
	want := r.scan(t, "team/win", img)
	got, err := r.s.Scan(t.Context(), scanner.Target{Input: saveArchive(t, img, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Image.OS != want.Image.OS || got.Image.Status != model.ImageActive {
		t.Fatalf("archive: %+v", got.Image)
	}
	sameFindings(t, want.Findings, got.Findings)
}

// An image scanned as Windows before Windows images were assessed has no
// identity in its stored inventory: a rescan keeps it unsupported, saying
// how to have it assessed, and records the Windows data's version so later
// rescans skip it.
func TestWindowsImageScannedBefore(t *testing.T) {
	r := newWinRig(t)
	img := model.Image{Digest: "sha256:" + strings.Repeat("0a", 32), Registry: "contoso.azurecr.io", Repository: "shop/old", Platform: "windows/amd64"}
	m, err := r.s.Match(t.Context(), img, model.Inventory{Groups: []model.PackageGroup{}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Image.Status != model.ImageUnsupported || !strings.Contains(m.Image.Error, "push the image again") ||
		m.Image.DBVersion != r.s.DB().VersionFor(m.Image) || !strings.Contains(m.Image.DBVersion, "+msrc:2024-Dec:") || len(m.Findings) != 0 {
		t.Fatalf("%+v", m.Image)
	}
}
