package rescanimages_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/rescanimages"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanevents"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
	"github.com/palisade-sec/palisade/shared/sentinel"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/testenv"
)

var (
	pushTime = time.Date(2026, 5, 2, 10, 0, 0, 0, time.UTC)
	rescan1  = time.Date(2026, 5, 3, 3, 0, 0, 0, time.UTC)
	rescan2  = time.Date(2026, 5, 4, 3, 0, 0, 0, time.UTC)
	rescan3  = time.Date(2026, 5, 5, 3, 0, 0, 0, time.UTC)
)

// eventSink is a loopback HTTPS Event Grid topic keeping what it receives.
type eventSink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []struct {
		EventType string
		Subject   string
		Data      json.RawMessage
	}
}

func newEventSink(t *testing.T) *eventSink {
	s := &eventSink{}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/events" || r.Header.Get("aeg-sas-key") != "topic-key" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		var batch []struct {
			EventType string
			Subject   string
			Data      json.RawMessage
		}
		if err := json.Unmarshal(b, &batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.events = append(s.events, batch...)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *eventSink) publisher(t *testing.T) *scanevents.Publisher {
	p, err := scanevents.New(s.srv.URL+"/api/events", "topic-key", nil, &azcore.ClientOptions{Transport: s.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *eventSink) types() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, e := range s.events {
		out[e.EventType]++
	}
	return out
}

func findingsByVuln(t *testing.T, st store.Store, digest string) map[string]model.Finding {
	t.Helper()
	fs, err := vulnstore.Findings(t.Context(), st, digest)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]model.Finding{}
	for _, f := range fs {
		out[f.VulnID] = f
	}
	return out
}

// counts is a run record without what varies between runs of the same work.
func counts(r model.RescanRun) model.RescanRun {
	r.Invocations, r.DurationMs, r.FinishedAt = 0, 0, time.Time{}
	return r
}

// TestRescanAfterDBChange scans two real images from a registry, takes the
// registry away, and rescans through the Functions host as the DB gains an
// advisory and then fixes another.
func TestRescanAfterDBChange(t *testing.T) {
	reg := testenv.NewCountingRegistry(t)
	st := openStore(t)
	base := openScanner(t, buildDB(t, dbBase))
	deb := scantest.Push(t, reg.Host, "team/deb", "1", scantest.Image(t, scantest.Layer(t, scantest.DebianFiles())))
	alp := scantest.Push(t, reg.Host, "team/alp", "1", scantest.Image(t, scantest.Layer(t, scantest.AlpineFiles())))
	for _, d := range []struct{ repo, digest string }{{"team/deb", deb}, {"team/alp", alp}} {
		res, err := base.Scan(t.Context(), scanner.Target{Registry: reg.Host, Repository: d.repo, Digest: d.digest, Tag: "1"})
		if err != nil {
			t.Fatal(err)
		}
		img := res.Image
		img.PushedAt, img.PushedUnix, img.ScannedAt, img.ScannedUnix = pushTime, pushTime.Unix(), pushTime, pushTime.Unix()
		if _, err := vulnstore.Record(t.Context(), st, vulnstore.Scan{Image: img, Inventory: &res.Inventory, Findings: res.Findings, SeenAt: pushTime}); err != nil {
			t.Fatal(err)
		}
	}
	if err := base.Close(); err != nil {
		t.Fatal(err)
	}
	pulls := reg.Requests("", "")
	if pulls == 0 {
		t.Fatal("the scans made no registry request")
	}
	// From here on no registry is reachable.
	reg.Close()
	before := findingsByVuln(t, st, deb)
	imgBefore, err := vulnstore.GetImage(t.Context(), st, deb)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := before["CVE-2023-5678"]; !ok || len(before) == 0 {
		t.Fatalf("push scan findings: %v", before)
	}

	sink := newEventSink(t)
	sw := &swapScanner{sc: openScanner(t, buildDB(t, dbNew))}
	clk := &clock{now: rescan1}
	sums := &summaryRecorder{}
	fn := rescanimages.New(st, sw, sink.publisher(t), rescanimages.Options{Now: clk.Now, PageSize: 1, Summaries: sums})
	h := newHarness(t)
	h.srv.Handle(rescanimages.Name, fn.Handle)

	// 1. A new advisory: CVE-2026-1000 appears, first seen at the rescan.
	if err := h.host.FireTimer(t.Context(), rescanimages.Name); err != nil {
		t.Fatal(err)
	}
	after := findingsByVuln(t, st, deb)
	nf, ok := after["CVE-2026-1000"]
	if !ok || nf.Status != model.FindingOpen || !nf.FirstSeen.Equal(rescan1) || nf.Severity != model.SeverityCritical {
		t.Fatalf("new advisory finding: %+v", nf)
	}
	if old := after["CVE-2023-4911"]; !old.FirstSeen.Equal(pushTime) || old.Status != model.FindingOpen {
		t.Fatalf("an old finding lost its history: %+v", old)
	}
	img, err := vulnstore.GetImage(t.Context(), st, deb)
	if err != nil {
		t.Fatal(err)
	}
	if img.DBVersion != dbVersion(dbNew) || !img.ScannedAt.Equal(rescan1) || !img.PushedAt.Equal(pushTime) ||
		img.Counts[model.SeverityCritical] != imgBefore.Counts[model.SeverityCritical]+1 || img.MaxRank != model.SeverityCritical.Rank() {
		t.Fatalf("image after the first rescan: %+v", img)
	}
	rs := runs(t, st)
	want := model.RescanRun{ID: rs[0].ID, StartedAt: rescan1, Complete: true, DBVersion: dbVersion(dbNew),
		Checked: 2, Rescanned: 2, Changed: 1, New: 1, EventsPublished: 3}
	if d := cmp.Diff(want, counts(rs[0])); len(rs) != 1 || d != "" {
		t.Fatalf("first run record (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]int{scanevents.TypeScanCompleted: 2, scanevents.TypeCriticalFound: 1}, sink.types()); d != "" {
		t.Fatalf("events published (-want +got):\n%s", d)
	}
	// A summary of each image rescanned went to Log Analytics.
	if got := sums.byDigest(); len(sums.got) != 2 || !slices.ContainsFunc(got[deb].Vulns, func(v model.VulnRef) bool { return v.ID == "CVE-2026-1000" }) ||
		got[deb].Trigger != "rescan" || !got[deb].At.Equal(rescan1) || got[deb].Image.DBVersion != dbVersion(dbNew) {
		t.Fatalf("summaries %+v", sums.got)
	}
	// Log Analytics down for the next run: counted in its record.
	sums.fail = true

	// 2. A fix: openssl's CVE-2023-5678 no longer affects the installed
	// version; it is resolved at the rescan.
	if err := sw.get().Close(); err != nil {
		t.Fatal(err)
	}
	sw.set(openScanner(t, buildDB(t, dbFixed)))
	clk.Set(rescan2)
	if err := h.host.FireTimer(t.Context(), rescanimages.Name); err != nil {
		t.Fatal(err)
	}
	after = findingsByVuln(t, st, deb)
	if f := after["CVE-2023-5678"]; f.Status != model.FindingResolved || !f.ResolvedAt.Equal(rescan2) || !f.FirstSeen.Equal(pushTime) {
		t.Fatalf("fixed finding: %+v", f)
	}
	img, _ = vulnstore.GetImage(t.Context(), st, deb)
	if img.Counts[model.SeverityMedium] != imgBefore.Counts[model.SeverityMedium]-1 || img.DBVersion != dbVersion(dbFixed) {
		t.Fatalf("image after the fix: %+v", img)
	}
	rs = runs(t, st)
	want = model.RescanRun{ID: rs[1].ID, StartedAt: rescan2, Complete: true, DBVersion: dbVersion(dbFixed),
		Checked: 2, Rescanned: 2, Changed: 1, Fixed: 1, EventsPublished: 2, SummariesFailed: 2}
	if d := cmp.Diff(want, counts(rs[1])); len(rs) != 2 || d != "" {
		t.Fatalf("second run record (-want +got):\n%s", d)
	}

	// 3. The same DB again: every image is skipped.
	clk.Set(rescan3)
	if err := h.host.FireTimer(t.Context(), rescanimages.Name); err != nil {
		t.Fatal(err)
	}
	rs = runs(t, st)
	want = model.RescanRun{ID: rs[2].ID, StartedAt: rescan3, Complete: true, DBVersion: dbVersion(dbFixed), Checked: 2, Skipped: 2}
	if d := cmp.Diff(want, counts(rs[2])); len(rs) != 3 || d != "" {
		t.Fatalf("third run record (-want +got):\n%s", d)
	}
	if n := reg.Requests("", ""); n != pulls {
		t.Fatalf("the rescans sent %d requests to the registry", n-pulls)
	}
	if len(sums.got) != 2 {
		t.Errorf("%d summaries; the run that skipped every image sent some", len(sums.got))
	}
	_ = sw.get().Close()
}

// summaryRecorder records the summaries sent, failing while fail is set.
type summaryRecorder struct {
	mu   sync.Mutex
	got  []sentinel.ImageScan
	fail bool
}

func (r *summaryRecorder) PublishImages(_ context.Context, scans []sentinel.ImageScan) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("logs ingestion down")
	}
	r.got = append(r.got, scans...)
	return nil
}

func (r *summaryRecorder) byDigest() map[string]sentinel.ImageScan {
	out := map[string]sentinel.ImageScan{}
	for _, s := range r.got {
		out[s.Image.Digest] = s
	}
	return out
}

// TestActiveSet: recent and running images are rescanned, old ones that do
// not run and deleted ones are not.
func TestActiveSet(t *testing.T) {
	st := openStore(t)
	inv := goldenInventory(t)
	base := openScanner(t, buildDB(t, dbBase))
	now := rescan1
	recent, old := now.Add(-24*time.Hour), now.Add(-40*24*time.Hour)
	var (
		dRecent          = digestOf(1)
		dOld             = digestOf(2)
		dOldRunning      = digestOf(3)
		dRecentDeleted   = digestOf(4)
		dOldDeletedRun   = digestOf(5)
		dRecentRunning   = digestOf(6)
		dNeverScannedRun = digestOf(7)
	)
	for d, pushed := range map[string]time.Time{dRecent: recent, dOld: old, dOldRunning: old, dRecentDeleted: recent, dOldDeletedRun: old, dRecentRunning: recent} {
		storeScanned(t, st, base, inv, d, pushed)
	}
	_ = base.Close()
	for _, d := range []string{dRecentDeleted, dOldDeletedRun} {
		if _, err := vulnstore.MarkDeleted(t.Context(), st, model.Image{Digest: d}, recent); err != nil {
			t.Fatal(err)
		}
	}
	putRunning(t, st, "aks-a", dOldRunning, dOldDeletedRun, dRecentRunning)
	putRunning(t, st, "aks-b", dNeverScannedRun, "not-a-digest")

	sc := openScanner(t, buildDB(t, dbNew))
	defer sc.Close()
	fn := rescanimages.New(st, sc, nil, rescanimages.Options{Now: func() time.Time { return now }, PageSize: 2})
	run, err := fn.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := model.RescanRun{ID: run.ID, StartedAt: now, Complete: true, DBVersion: dbVersion(dbNew),
		Checked: 4, Rescanned: 3, Changed: 3, New: 3, NoInventory: 1}
	if d := cmp.Diff(want, counts(run)); d != "" {
		t.Fatalf("run (-want +got):\n%s", d)
	}
	for d, wantVersion := range map[string]string{
		dRecent: dbVersion(dbNew), dOldRunning: dbVersion(dbNew), dRecentRunning: dbVersion(dbNew),
		dOld: dbVersion(dbBase), dRecentDeleted: dbVersion(dbBase), dOldDeletedRun: dbVersion(dbBase),
	} {
		img, err := vulnstore.GetImage(t.Context(), st, d)
		if err != nil {
			t.Fatal(err)
		}
		if img.DBVersion != wantVersion {
			t.Errorf("image %s has DB %s, want %s", d[:16], img.DBVersion, wantVersion)
		}
		if _, ok := findingsByVuln(t, st, d)["CVE-2026-1000"]; ok != (wantVersion == dbVersion(dbNew)) {
			t.Errorf("image %s: new advisory found %v", d[:16], ok)
		}
	}
	// Deleted images stay deleted with every finding resolved.
	if img, _ := vulnstore.GetImage(t.Context(), st, dOldDeletedRun); img.Status != model.ImageDeleted {
		t.Fatalf("deleted running image: %+v", img)
	}

	// A second run with the same DB skips what it rescanned.
	now = rescan2
	run, err = fn.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want = model.RescanRun{ID: run.ID, StartedAt: now, Complete: true, DBVersion: dbVersion(dbNew), Checked: 4, Skipped: 3, NoInventory: 1}
	if d := cmp.Diff(want, counts(run)); d != "" {
		t.Fatalf("second run (-want +got):\n%s", d)
	}
}

// populate stores n recent images and m old running ones, scanned with the
// base DB.
func populate(t *testing.T, st store.Store, sc *scanner.Scanner, n, m int) {
	t.Helper()
	inv := goldenInventory(t)
	var running []string
	for i := range n + m {
		pushed := rescan1.Add(-time.Duration(i) * time.Hour)
		if i >= n {
			pushed = rescan1.Add(-60 * 24 * time.Hour)
			running = append(running, digestOf(i))
		}
		storeScanned(t, st, sc, inv, digestOf(i), pushed)
	}
	putRunning(t, st, "aks-a", running...)
}

// cancelAfter cancels the invocation's context after n matches, as the
// host does when the function times out.
type cancelAfter struct {
	*scanner.Scanner
	mu     sync.Mutex
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Match(ctx context.Context, img model.Image, inv model.Inventory) (*scanner.Match, error) {
	m, err := c.Scanner.Match(ctx, img, inv)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 {
		c.cancel()
	}
	return m, err
}

// TestInterruptedRunResumes: runs cut short by a time budget or by the
// host's cancellation resume from the cursor and end with the same stored
// result, and the same run record, as an uninterrupted run.
func TestInterruptedRunResumes(t *testing.T) {
	const recent, running = 23, 5
	stores := map[string]store.Store{"whole": openStore(t), "budget": openStore(t), "cancel": openStore(t)}
	base := openScanner(t, buildDB(t, dbBase))
	for _, st := range stores {
		populate(t, st, base, recent, running)
	}
	_ = base.Close()
	sc := openScanner(t, buildDB(t, dbNew))
	defer sc.Close()
	opts := func(c *clock) rescanimages.Options {
		return rescanimages.Options{Now: c.Now, PageSize: 4}
	}

	whole := rescanimages.New(stores["whole"], sc, nil, opts(&clock{now: rescan1}))
	wantRun, err := whole.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !wantRun.Complete || wantRun.Rescanned != recent+running {
		t.Fatalf("uninterrupted run: %+v", wantRun)
	}
	wantData := dumpAll(t, stores["whole"])

	t.Run("time budget", func(t *testing.T) {
		// Each reading of the clock takes a second; the budget is three.
		o := opts(&clock{now: rescan1, step: time.Second})
		o.MaxDuration = 3 * time.Second
		fn := rescanimages.New(stores["budget"], sc, nil, o)
		var run model.RescanRun
		for run.Invocations = 0; !run.Complete; {
			if run.Invocations > 100 {
				t.Fatal("the run does not finish")
			}
			if run, err = fn.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if run.Invocations < 5 {
			t.Fatalf("the budget did not cut the run short: %d invocations", run.Invocations)
		}
		if d := cmp.Diff(counts(wantRun), counts(run)); d != "" {
			t.Fatalf("run record (-uninterrupted +resumed):\n%s", d)
		}
		if d := cmp.Diff(wantData, dumpAll(t, stores["budget"]), cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("stored data (-uninterrupted +resumed):\n%s", d)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		ca := &cancelAfter{Scanner: sc}
		fn := rescanimages.New(stores["cancel"], ca, nil, opts(&clock{now: rescan1}))
		var run model.RescanRun
		cuts := 0
		for !run.Complete {
			if cuts > 100 {
				t.Fatal("the run does not finish")
			}
			ctx, cancel := context.WithCancel(t.Context())
			ca.mu.Lock()
			ca.n, ca.cancel = 7, cancel
			ca.mu.Unlock()
			run, err = fn.Run(ctx)
			cancel()
			if err != nil {
				cuts++
				if !strings.Contains(err.Error(), "context canceled") {
					t.Fatal(err)
				}
			}
		}
		if cuts < 3 {
			t.Fatalf("only %d invocations were cut short", cuts)
		}
		if d := cmp.Diff(counts(wantRun), counts(run)); d != "" {
			t.Fatalf("run record (-uninterrupted +resumed):\n%s", d)
		}
		if d := cmp.Diff(wantData, dumpAll(t, stores["cancel"]), cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("stored data (-uninterrupted +resumed):\n%s", d)
		}
	})
}

// TestDBLifecycle: the DB comes from an OCI mirror, is refreshed at most
// every DBMaxAge and once however many invocations arrive together, and a
// failed download keeps the last good DB and says so in the run record.
func TestDBLifecycle(t *testing.T) {
	mirror := testenv.NewCountingRegistry(t)
	ref := mirror.Host + "/mirror/trivy-db:2"
	scantest.PushDB(t, ref, buildDB(t, dbBase))
	clk := &clock{now: time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC)}
	lazy := scanner.NewLazy(scanner.Options{CacheDir: t.TempDir(), DBRepositories: []string{ref}, Now: clk.Now, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	defer lazy.Close()
	sc, err := lazy.Get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if sc.DB().Version != dbVersion(dbBase) {
		t.Fatalf("downloaded DB %+v", sc.DB())
	}
	st := openStore(t)
	storeScanned(t, st, sc, goldenInventory(t), digestOf(1), clk.now.Add(-time.Hour))

	fn := rescanimages.New(st, lazy, nil, rescanimages.Options{Now: clk.Now, DBMaxAge: 12 * time.Hour})
	h := newHarness(t)
	h.srv.Handle(rescanimages.Name, fn.Handle)
	fire := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() { errs <- h.host.FireTimer(t.Context(), rescanimages.Name) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	latest := func() model.RescanRun {
		rs := runs(t, st)
		return rs[len(rs)-1]
	}

	// A newer DB in the mirror; four invocations at once download it once.
	scantest.PushDB(t, ref, buildDB(t, dbNew))
	clk.Set(clk.now.Add(13 * time.Hour))
	blobs := mirror.Requests("GET", "/blobs/")
	fire(4)
	perDownload := mirror.Requests("GET", "/blobs/") - blobs
	if perDownload == 0 {
		t.Fatal("the newer DB was not downloaded")
	}
	if r := latest(); r.DBVersion != dbVersion(dbNew) || r.Rescanned != 1 || r.New != 1 || r.DBDownloadError != "" {
		t.Fatalf("run after the refresh: %+v", r)
	}
	fire(1) // with a fresh DB: no download
	if n := mirror.Requests("GET", "/blobs/") - blobs; n != perDownload {
		t.Fatalf("%d blob downloads for two refreshes within the max age, want %d (one)", n, perDownload)
	}

	// Within the max age a newer DB is not fetched.
	scantest.PushDB(t, ref, buildDB(t, dbFixed))
	clk.Set(clk.now.Add(time.Hour))
	blobs = mirror.Requests("GET", "/blobs/")
	fire(1)
	if n := mirror.Requests("GET", "/blobs/") - blobs; n != 0 || latest().DBVersion != dbVersion(dbNew) {
		t.Fatalf("refreshed within the max age: %d blob downloads, run %+v", n, latest())
	}

	// The mirror loses the DB: the refresh fails, the last good DB stays.
	r, _ := name.ParseReference(ref)
	if err := remote.Delete(r); err != nil {
		t.Fatal(err)
	}
	clk.Set(clk.now.Add(13 * time.Hour))
	fire(1)
	if r := latest(); r.DBVersion != dbVersion(dbNew) || r.DBDownloadError == "" || !r.Complete {
		t.Fatalf("run after a failed download: %+v", r)
	}
}
