package refreshintel_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/refreshintel"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/funchost"
	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/intel/inteltest"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/runningimages"
	"github.com/palisade-sec/palisade/shared/scanevents"
	"github.com/palisade-sec/palisade/shared/scanevents/scaneventstest"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vex"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/faultstore"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// The CVEs of the test images.
const (
	heartbleed = "CVE-2014-0160"  // openssl; in KEV from the start
	log4shell  = "CVE-2021-44228" // log4j-core; in KEV from the start, ransomware
	looney     = "CVE-2023-4911"  // libc6; listed in KEV on day 2
	xz         = "CVE-2024-3094"  // xz-utils; its EPSS score jumps on day 2
)

var (
	day1 = time.Date(2026, 11, 29, 2, 30, 0, 0, time.UTC)
	day2 = day1.Add(24 * time.Hour)
)

func kevDay1() []byte {
	return inteltest.KEV("2026.11.28", day1.Add(-10*time.Hour),
		inteltest.Vuln{CVE: heartbleed, DateAdded: "2022-05-04", DueDate: "2022-05-25"},
		inteltest.Vuln{CVE: log4shell, DateAdded: "2021-12-10", DueDate: "2021-12-24", Ransomware: true})
}

func kevDay2() []byte {
	return inteltest.KEV("2026.11.29", day2.Add(-10*time.Hour),
		inteltest.Vuln{CVE: heartbleed, DateAdded: "2022-05-04", DueDate: "2022-05-25"},
		inteltest.Vuln{CVE: log4shell, DateAdded: "2021-12-10", DueDate: "2021-12-24", Ransomware: true},
		inteltest.Vuln{CVE: looney, DateAdded: "2026-11-29", DueDate: "2026-12-20"})
}

func epssDay1() []byte {
	return inteltest.EPSS(day1.Add(-2*time.Hour),
		inteltest.Score{CVE: heartbleed, Score: 0.94469, Percentile: 0.99978},
		inteltest.Score{CVE: log4shell, Score: 0.94358, Percentile: 0.99956},
		inteltest.Score{CVE: looney, Score: 0.05, Percentile: 0.9},
		inteltest.Score{CVE: xz, Score: 0.02, Percentile: 0.8})
}

// epssDay2: xz's score jumps; log4shell's moves within its bucket.
func epssDay2() []byte {
	return inteltest.EPSS(day2.Add(-2*time.Hour),
		inteltest.Score{CVE: heartbleed, Score: 0.94469, Percentile: 0.99978},
		inteltest.Score{CVE: log4shell, Score: 0.94361, Percentile: 0.99957},
		inteltest.Score{CVE: looney, Score: 0.05, Percentile: 0.9},
		inteltest.Score{CVE: xz, Score: 0.61, Percentile: 0.99})
}

func digestN(n int) string { return fmt.Sprintf("sha256:%064x", n) }

var (
	imageA = digestN(0xa) // not running
	imageB = digestN(0xb) // running in aks-prod and aks-stage
)

func finding(d, id, pkg string, sev model.Severity, fixed string) model.Finding {
	return model.Finding{ID: model.FindingID(d, id, pkg, "", "1.0"), Digest: d, Registry: "contoso.azurecr.io", Repository: "shop/web",
		VulnID: id, PkgName: pkg, InstalledVersion: "1.0",
		FixedVersion: fixed, Severity: sev, SeverityRank: sev.Rank(), Status: model.FindingOpen}
}

func findingsOf(d string) []model.Finding {
	if d == imageA {
		return []model.Finding{
			finding(d, log4shell, "log4j-core", model.SeverityCritical, "2.17.1"),
			finding(d, looney, "libc6", model.SeverityHigh, "2.36-9+deb12u3"),
			finding(d, xz, "xz-utils", model.SeverityCritical, ""),
			finding(d, "GHSA-0000-0000-0000", "lodash", model.SeverityLow, ""),
		}
	}
	return []model.Finding{
		finding(d, looney, "libc6", model.SeverityHigh, "2.36-9+deb12u3"),
		finding(d, heartbleed, "openssl", model.SeverityHigh, ""),
	}
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// fixture is the function behind the Functions host emulator, with a real
// embedded store (failures injectable), a loopback feed server and a
// loopback Event Grid topic.
type fixture struct {
	st     *faultstore.Store
	feeds  *inteltest.Server
	clk    *clock
	src    *vex.Source
	vexDir string
	topic  *scaneventstest.Topic
	host   *funchost.Host
	logs   *testenv.Buffer
}

func newFixture(t *testing.T, kevURL, epssURL string) *fixture {
	t.Helper()
	f := &fixture{st: faultstore.Open(t), clk: &clock{now: day1}, topic: scaneventstest.New(t), logs: &testenv.Buffer{}, vexDir: t.TempDir()}
	f.feeds = inteltest.NewServer(t, kevDay1(), epssDay1())
	if kevURL == "server" {
		kevURL = f.feeds.KEVURL()
	}
	if epssURL == "server" {
		epssURL = f.feeds.EPSSURL()
	}
	docs := vex.NewStore(f.st, f.clk.Now)
	f.src = vex.NewSource(intel.NewSource(f.st, intel.Options{KEVURL: kevURL, EPSSURL: epssURL, MinKEVEntries: 2, MinEPSSRows: 3, Now: f.clk.Now}), docs)
	det, err := detection.NewDetector(detection.Options{})
	if err != nil {
		t.Fatal(err)
	}
	alerts := detection.NewPipeline(f.st, nil, det, detection.PipelineOptions{Function: refreshintel.Name, Now: f.clk.Now})
	fn := refreshintel.New(f.st, f.src, det, alerts, f.topic.Publisher(t), refreshintel.Options{VEXDir: f.vexDir, VEX: docs, Now: f.clk.Now})
	logger := zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), f.logs))
	srv := customhandler.NewServer(logger)
	srv.Handle(refreshintel.Name, fn.Handle)
	f.host = testenv.Host(t, srv, logger)
	return f
}

// putRunning records the images running in a cluster, as posture does.
func (f *fixture) putRunning(t *testing.T, cluster string, digests ...string) {
	t.Helper()
	var imgs []model.RunningImage
	for _, d := range digests {
		imgs = append(imgs, model.RunningImage{Digest: d, Image: "contoso.azurecr.io/shop/web:1.0", Workloads: []string{"Deployment/shop/web"}})
	}
	if _, err := runningimages.Write(t.Context(), f.st, cluster, imgs, f.clk.Now()); err != nil {
		t.Fatal(err)
	}
}

// scan records an image's findings as scan on push and the rescans do:
// annotated with the feeds held now, and again when they changed
// meanwhile.
func (f *fixture) scan(ctx context.Context, d string, at time.Time) error {
	feeds, _, err := f.src.Load(ctx)
	if err != nil {
		return err
	}
	where, err := vulnstore.ReadRunning(ctx, f.st)
	if err != nil {
		return err
	}
	img := model.Image{Digest: d, Registry: "contoso.azurecr.io", Repository: "shop/web", Status: model.ImageActive, DBVersion: "2@2026-11-28T00:00:00Z", ScannedAt: at}
	sc := vulnstore.Scan{Image: img, Findings: findingsOf(d), SeenAt: at, Intel: feeds, Running: where.Has(d)}
	if _, err := vulnstore.Record(ctx, f.st, sc); err != nil {
		return err
	}
	now, _, err := f.src.Load(ctx)
	if err != nil || now == feeds {
		return err
	}
	_, err = vulnstore.Reannotate(ctx, f.st, d, now, sc.Running)
	return err
}

func (f *fixture) fire(t *testing.T) error {
	t.Helper()
	return f.host.FireTimer(t.Context(), refreshintel.Name)
}

func (f *fixture) mustFire(t *testing.T) model.IntelRun {
	t.Helper()
	if err := f.fire(t); err != nil {
		t.Fatal(err)
	}
	return f.latest(t)
}

func (f *fixture) latest(t *testing.T) model.IntelRun {
	t.Helper()
	run, ok, err := refreshintel.LatestRun(t.Context(), f.st)
	if err != nil || !ok {
		t.Fatalf("latest run: found %v, %v", ok, err)
	}
	return run
}

// stored reads an image's findings by "CVE/package".
func stored(t *testing.T, st store.Store, d string) map[string]model.Finding {
	t.Helper()
	m, err := vulnstore.Findings(t.Context(), st, d)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]model.Finding{}
	for _, fd := range m {
		out[fd.VulnID+"/"+fd.PkgName] = fd
	}
	return out
}

// priorities is "CVE/package priority" of an image's open findings, sorted.
func priorities(t *testing.T, st store.Store, d string) []string {
	t.Helper()
	var out []string
	for k, fd := range stored(t, st, d) {
		if fd.Status == model.FindingOpen {
			out = append(out, k+" "+string(fd.Priority))
		}
	}
	slices.Sort(out)
	return out
}

func alertsOf(t *testing.T, st store.Store) []model.Alert {
	t.Helper()
	l, err := detection.ListAlerts(t.Context(), st, detection.AlertFilter{Type: refreshintel.AlertType}, store.Cursor{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(l.Items, func(a, b model.Alert) int { return strings.Compare(a.Cluster, b.Cluster) })
	return l.Items
}

// TestFeedChangeUpdatesFindings: the first feeds prioritise every stored
// finding; a day later a CVE newly listed in KEV and a jump of an EPSS score
// update exactly the open findings of those CVEs, through the CVE index and
// without matching anything again, and the newly listed CVE in the running
// image raises an alert per cluster and an Event Grid event. A run that
// fails after raising them is run again: the same alert (count 1), the same
// event ids, nothing rewritten.
func TestFeedChangeUpdatesFindings(t *testing.T) {
	f := newFixture(t, "server", "server")
	ctx := t.Context()
	f.putRunning(t, "aks-prod", imageB)
	f.putRunning(t, "aks-stage", imageB)

	// Scanned before any feed was held: severity, fix and running only,
	// and each finding with a CVE says which feeds it lacks.
	for _, d := range []string{imageA, imageB} {
		if err := f.scan(ctx, d, day1.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if fd := stored(t, f.st, imageB)[heartbleed+"/openssl"]; fd.Priority != model.P3 || !slices.Equal(fd.MissingFeeds, []string{"kev", "epss"}) {
		t.Fatalf("scanned without feeds: %+v", fd)
	}
	if fd := stored(t, f.st, imageA)["GHSA-0000-0000-0000/lodash"]; fd.MissingFeeds != nil || fd.Priority != model.P4 {
		t.Fatalf("finding without a CVE: %+v", fd)
	}
	before := stored(t, f.st, imageA)

	// Day 1: the first feeds are the baseline. Every finding is
	// prioritised with them; nothing counts as newly listed.
	run := f.mustFire(t)
	if !run.All || !run.Complete || run.KEVAdded != 0 || run.Alerts != 0 || run.Checked != 6 || run.Updated != 5 {
		t.Fatalf("first run: %+v", run)
	}
	for _, fr := range run.Feeds {
		if !fr.Held || fr.Stale || fr.Entries == 0 || len(fr.Problems) != 0 {
			t.Errorf("feed report %+v", fr)
		}
	}
	want := map[string][]string{
		imageA: {"CVE-2021-44228/log4j-core P2", "CVE-2023-4911/libc6 P3", "CVE-2024-3094/xz-utils P3", "GHSA-0000-0000-0000/lodash P4"},
		imageB: {"CVE-2014-0160/openssl P1", "CVE-2023-4911/libc6 P3"},
	}
	for d, w := range want {
		if got := priorities(t, f.st, d); !slices.Equal(got, w) {
			t.Fatalf("day 1 priorities of %s:\n%q\nwant\n%q", d[len(d)-1:], got, w)
		}
	}
	l4j := stored(t, f.st, imageA)[log4shell+"/log4j-core"]
	if l4j.KEV == nil || !l4j.KEV.Ransomware() || l4j.KEV.DueDate != "2021-12-24" || l4j.EPSS == nil || l4j.EPSS.Score != 0.94358 || l4j.MissingFeeds != nil {
		t.Fatalf("annotated finding: %+v", l4j)
	}
	if len(f.topic.Events()) != 0 || len(alertsOf(t, f.st)) != 0 {
		t.Fatal("the baseline catalogue raised alerts or events")
	}

	// Day 2: libc6's CVE is listed; xz's score jumps. The run stores the
	// alerts and events, then fails to mark the changes applied.
	f.clk.Set(day2)
	f.feeds.SetKEV(kevDay2())
	f.feeds.SetEPSS(epssDay2())
	var alertWritten atomic.Bool
	var failedOnce atomic.Bool
	f.st.SetFail(func(op string, c store.Container) error {
		if op == "put" && c == store.Alerts {
			alertWritten.Store(true)
		}
		if op == "put" && c == store.State && alertWritten.Load() && failedOnce.CompareAndSwap(false, true) {
			return errors.New("injected: state write lost")
		}
		return nil
	})
	if err := f.fire(t); err == nil || !failedOnce.Load() {
		t.Fatalf("the run did not fail as injected: %v", err)
	}
	f.st.SetFail(nil)
	firstEvents := f.topic.OfType(scanevents.TypeExploited)
	if len(firstEvents) != 2 {
		t.Fatalf("events of the failed run: %+v", f.topic.Events())
	}

	// The next invocation applies the same changes again.
	run = f.mustFire(t)
	if run.All || !run.Complete || run.Changed != 2 || run.KEVAdded != 1 || run.Checked != 3 || run.Updated != 0 || run.Alerts != 2 || run.EventsPublished != 2 {
		t.Fatalf("second day run: %+v", run)
	}
	want = map[string][]string{
		imageA: {"CVE-2021-44228/log4j-core P2", "CVE-2023-4911/libc6 P2", "CVE-2024-3094/xz-utils P3", "GHSA-0000-0000-0000/lodash P4"},
		imageB: {"CVE-2014-0160/openssl P1", "CVE-2023-4911/libc6 P1"},
	}
	for d, w := range want {
		if got := priorities(t, f.st, d); !slices.Equal(got, w) {
			t.Fatalf("day 2 priorities of %s:\n%q\nwant\n%q", d[len(d)-1:], got, w)
		}
	}
	after := stored(t, f.st, imageA)
	for k, fd := range after {
		// Nothing matched again: the scan's own data is as it was.
		if b := before[k]; !fd.LastSeen.Equal(b.LastSeen) || !fd.FirstSeen.Equal(b.FirstSeen) || fd.FixedVersion != b.FixedVersion {
			t.Errorf("%s changed beyond its exploitation data: %+v", k, fd)
		}
	}
	if x := after[xz+"/xz-utils"]; x.EPSS == nil || x.EPSS.Score != 0.61 || x.EPSS.Date != "2026-11-30" {
		t.Errorf("rescored finding: %+v", x.EPSS)
	}
	if l := after[log4shell+"/log4j-core"]; l.EPSS.Score != 0.94358 || l.EPSS.Date != "2026-11-29" {
		t.Errorf("an immaterial EPSS move rewrote the finding: %+v", l.EPSS)
	}

	alerts := alertsOf(t, f.st)
	if len(alerts) != 2 || alerts[0].Cluster != "aks-prod" || alerts[1].Cluster != "aks-stage" {
		t.Fatalf("alerts: %+v", alerts)
	}
	for _, a := range alerts {
		// Critical: the image has two known-exploited findings.
		if a.Count != 1 || a.ImageDigest != imageB || a.Severity != model.SeverityCritical || !a.KnownExploited || a.Source != detection.SourceVulnerability ||
			a.Evidence["cve"] != looney || a.Evidence["kevDateAdded"] != "2026-11-29" || a.Evidence["fixedVersion"] != "2.36-9+deb12u3" ||
			!strings.Contains(a.Evidence["summary"], "exploited in the wild") || !strings.Contains(a.Evidence["summary"], "running in cluster "+a.Cluster) ||
			a.Workload != "Deployment/shop/web" || a.Namespace != "shop" || !strings.Contains(a.Title, looney) {
			t.Errorf("alert %+v", a)
		}
	}
	events := f.topic.OfType(scanevents.TypeExploited)
	if len(events) != 4 {
		t.Fatalf("events: %d, want the 2 of the failed run and the same 2 again", len(events))
	}
	ids := map[string]int{}
	for _, e := range events {
		ids[e.ID]++
		var data scanevents.ExploitedRunning
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.CVE != looney || data.Digest != imageB || data.KEV.DateAdded != "2026-11-29" || data.Priority != model.P1 ||
			len(data.Findings) != 1 || e.Subject != "contoso.azurecr.io/shop/web@"+imageB {
			t.Errorf("event %s: %+v", e.Subject, data)
		}
	}
	if len(ids) != 2 || ids[firstEvents[0].ID] != 2 || ids[firstEvents[1].ID] != 2 {
		t.Errorf("redelivered events changed ids: %v", ids)
	}

	// Nothing changed since: nothing to do.
	f.clk.Set(day2.Add(time.Hour))
	run = f.mustFire(t)
	if run.Changed != 0 || run.Checked != 0 || run.Updated != 0 || run.Alerts != 0 || !run.Complete {
		t.Fatalf("run with no change: %+v", run)
	}
	if a := alertsOf(t, f.st); a[0].Count != 1 || len(f.topic.Events()) != 4 {
		t.Errorf("a run with no change raised more: %+v", a)
	}
}

// TestConcurrentRescan: rescans of the same images run while the feeds
// change and their update runs; when all are done every open finding
// carries the new feeds, each cluster has one alert, and no finding is
// duplicated.
func TestConcurrentRescan(t *testing.T) {
	f := newFixture(t, "server", "server")
	ctx := t.Context()
	f.putRunning(t, "aks-prod", imageB)
	for _, d := range []string{imageA, imageB} {
		if err := f.scan(ctx, d, day1.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	f.mustFire(t)
	f.clk.Set(day2)
	f.feeds.SetKEV(kevDay2())
	f.feeds.SetEPSS(epssDay2())

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var rescans atomic.Int64
	for i, d := range []string{imageA, imageB} {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := f.scan(context.Background(), d, day2.Add(time.Duration(i*1000+n)*time.Second)); err != nil {
					t.Error(err)
					return
				}
				rescans.Add(1)
			}
		})
	}
	err := f.fire(t)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if rescans.Load() == 0 {
		t.Fatal("no rescan ran alongside the update")
	}
	want := map[string][]string{
		imageA: {"CVE-2021-44228/log4j-core P2", "CVE-2023-4911/libc6 P2", "CVE-2024-3094/xz-utils P3", "GHSA-0000-0000-0000/lodash P4"},
		imageB: {"CVE-2014-0160/openssl P1", "CVE-2023-4911/libc6 P1"},
	}
	for d, w := range want {
		if got := priorities(t, f.st, d); !slices.Equal(got, w) {
			t.Errorf("priorities of %s after %d rescans:\n%q\nwant\n%q", d[len(d)-1:], rescans.Load(), got, w)
		}
	}
	if x := stored(t, f.st, imageA)[xz+"/xz-utils"]; x.EPSS == nil || x.EPSS.Score != 0.61 {
		t.Errorf("xz lacks its new score: %+v", x.EPSS)
	}
	if got := len(stored(t, f.st, imageB)); got != 2 {
		t.Errorf("image B has %d findings, want 2", got)
	}
	if a := alertsOf(t, f.st); len(a) != 1 || a[0].Count != 1 || a[0].Cluster != "aks-prod" {
		t.Errorf("alerts: %+v", a)
	}
}

// TestBadFeedsKeepLastGood: truncated and malformed downloads are refused;
// the last good copies stay in use, the findings keep their data, and the
// run record says what went wrong. Two days without a good download make
// the feeds stale: reported, with the copies still in use.
func TestBadFeedsKeepLastGood(t *testing.T) {
	f := newFixture(t, "server", "server")
	ctx := t.Context()
	if err := f.scan(ctx, imageA, day1.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.mustFire(t)
	held := priorities(t, f.st, imageA)

	f.clk.Set(day2)
	kev := kevDay2()
	f.feeds.SetKEV(kev[:len(kev)-100])                     // truncated
	f.feeds.SetEPSSRaw(inteltest.Gzip([]byte("cve,epss"))) // no header line, no rows
	run := f.mustFire(t)
	if run.Changed != 0 || run.Updated != 0 || !run.Complete {
		t.Fatalf("a refused feed changed findings: %+v", run)
	}
	for _, fr := range run.Feeds {
		if !fr.Held || fr.Stale || len(fr.Problems) != 1 || !strings.HasPrefix(fr.Problems[0], "last download failed: ") {
			t.Errorf("feed report %+v", fr)
		}
	}
	if got := priorities(t, f.st, imageA); !slices.Equal(got, held) {
		t.Errorf("priorities moved: %q, want %q", got, held)
	}

	// Still failing two days on: stale, and said so.
	f.clk.Set(day2.Add(48 * time.Hour))
	f.feeds.Fail("/kev.json", http.StatusBadGateway)
	run = f.mustFire(t)
	for _, fr := range run.Feeds {
		if !fr.Held || !fr.Stale || !strings.Contains(strings.Join(fr.Problems, "; "), "not confirmed current") {
			t.Errorf("stale feed report %+v", fr)
		}
	}
	if !strings.Contains(f.logs.String(), "exploitation feeds are STALE") {
		t.Errorf("the log does not say the feeds are stale:\n%s", f.logs.String())
	}
	feeds, _, err := f.src.Load(ctx)
	if err != nil || feeds.KEV == nil || feeds.EPSS == nil || len(feeds.KEV.Entries) != 2 {
		t.Fatalf("the last good copies are not in use: %+v, %v", feeds, err)
	}

	// Good again: fresh.
	f.feeds.Fail("/kev.json", 0)
	f.feeds.SetKEV(kevDay2())
	f.feeds.SetEPSS(inteltest.EPSS(day2.Add(46*time.Hour), inteltest.Score{CVE: heartbleed, Score: 0.9, Percentile: 0.9},
		inteltest.Score{CVE: log4shell, Score: 0.9, Percentile: 0.9}, inteltest.Score{CVE: looney, Score: 0.06, Percentile: 0.9},
		inteltest.Score{CVE: xz, Score: 0.02, Percentile: 0.8}))
	run = f.mustFire(t)
	for _, fr := range run.Feeds {
		if fr.Stale || len(fr.Problems) != 0 {
			t.Errorf("recovered feed report %+v", fr)
		}
	}
	if fd := stored(t, f.st, imageA)[looney+"/libc6"]; fd.KEV == nil || fd.Priority != model.P2 {
		t.Errorf("after the recovery: %+v", fd)
	}
}

// TestNoFeed: with no download location (offline, as `make run`), a run
// says plainly that there is no feed, and findings keep naming the feeds
// they lack.
func TestNoFeed(t *testing.T) {
	f := newFixture(t, "", "")
	if err := f.scan(t.Context(), imageA, day1); err != nil {
		t.Fatal(err)
	}
	run := f.mustFire(t)
	for _, fr := range run.Feeds {
		if fr.Held || !fr.Stale || !strings.Contains(strings.Join(fr.Problems, "; "), "no download location set") {
			t.Errorf("feed report %+v", fr)
		}
	}
	if !strings.Contains(f.logs.String(), "NO EXPLOITATION FEED for KEV and EPSS") {
		t.Errorf("the log does not say there is no feed:\n%s", f.logs.String())
	}
	if fd := stored(t, f.st, imageA)[log4shell+"/log4j-core"]; !slices.Equal(fd.MissingFeeds, []string{"kev", "epss"}) || fd.Priority != model.P3 {
		t.Errorf("finding: %+v", fd)
	}
}

// TestEventsNotPublished: a topic that refuses the events does not fail
// the run: the alert is stored, and the run record counts the events not
// published.
func TestEventsNotPublished(t *testing.T) {
	f := newFixture(t, "server", "server")
	f.putRunning(t, "aks-prod", imageB)
	if err := f.scan(t.Context(), imageB, day1); err != nil {
		t.Fatal(err)
	}
	f.mustFire(t)
	f.clk.Set(day2)
	f.feeds.SetKEV(kevDay2())
	f.topic.Fail(http.StatusServiceUnavailable)
	run := f.mustFire(t)
	if run.Alerts != 1 || run.EventsFailed != 1 || run.EventsPublished != 0 || !run.Complete {
		t.Fatalf("run: %+v", run)
	}
	if len(alertsOf(t, f.st)) != 1 {
		t.Error("the alert was not stored")
	}
}
