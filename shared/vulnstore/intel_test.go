package vulnstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/intel/inteltest"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/testenv"
)

var intelDay = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// feeds builds feeds listing kev in the KEV catalogue and scoring every
// CVE of epss.
func feeds(t testing.TB, kev []string, epss map[string]float64) *intel.Feeds {
	t.Helper()
	k, err := intel.DecodeKEV(bytes.NewReader(inteltest.KEV("2026.11.29", intelDay, inteltest.Listed("2026-11-01", kev...)...)), 0)
	if err != nil {
		t.Fatal(err)
	}
	var scores []inteltest.Score
	for c, s := range epss {
		scores = append(scores, inteltest.Score{CVE: c, Score: s, Percentile: s})
	}
	e, err := intel.DecodeEPSS(bytes.NewReader(inteltest.EPSS(intelDay, scores...)), 0)
	if err != nil {
		t.Fatal(err)
	}
	return &intel.Feeds{KEV: k, EPSS: e}
}

// vuln is a finding of image d.
func vuln(d, id, pkg string, sev model.Severity, aliases ...string) model.Finding {
	return model.Finding{ID: model.FindingID(d, id, pkg, "", "1.0"), Digest: d, VulnID: id, Aliases: aliases, PkgName: pkg,
		InstalledVersion: "1.0", Severity: sev, SeverityRank: sev.Rank(), Status: model.FindingOpen}
}

func record(t testing.TB, st store.Store, d string, fs *intel.Feeds, running bool, at time.Time, findings ...model.Finding) {
	t.Helper()
	img := model.Image{Digest: d, Status: model.ImageActive, Registry: "contoso.azurecr.io", Repository: "shop/web"}
	if _, err := vulnstore.Record(context.Background(), st, vulnstore.Scan{Image: img, Findings: findings, SeenAt: at, Intel: fs, Running: running}); err != nil {
		t.Fatal(err)
	}
}

func stored(t testing.TB, st store.Store, d string) map[string]model.Finding {
	t.Helper()
	m, err := vulnstore.Findings(context.Background(), st, d)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]model.Finding{}
	for _, f := range m {
		out[f.VulnID+"/"+f.PkgName] = f
	}
	return out
}

type runningSet map[string]bool

func (r runningSet) has(d string) bool { return r[d] }

// visits records what ApplyIntel visited.
type visits struct {
	mu   sync.Mutex
	seen []string
}

func (v *visits) visit(_ context.Context, f model.Finding, running bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seen = append(v.seen, fmt.Sprintf("%s %s %s running=%v", f.Digest[len(f.Digest)-2:], f.VulnID, f.Priority, running))
	return nil
}

func (v *visits) sorted() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := slices.Clone(v.seen)
	slices.Sort(out)
	return out
}

// TestApplyIntelByCVE: a feed change updates exactly the open findings of
// the CVEs it changed, through the index Record keeps (a CVE found as an
// alias counts; findings without a CVE and resolved ones are left alone),
// and applying it again changes nothing.
func TestApplyIntelByCVE(t *testing.T) {
	st := testenv.Store(t)
	ctx := t.Context()
	v1 := feeds(t, []string{"CVE-2014-0160"}, map[string]float64{"CVE-2021-44228": 0.2, "CVE-2023-4911": 0.01})
	a, b := digestN(1), digestN(2)
	record(t, st, a, v1, false, intelDay,
		vuln(a, "CVE-2021-44228", "log4j-core", model.SeverityCritical),
		vuln(a, "CVE-2023-4911", "libc6", model.SeverityHigh),
		vuln(a, "GHSA-jfh8-c2jp-5v3q", "log4j-api", model.SeverityCritical, "CVE-2021-44228"),
		vuln(a, "GHSA-0000-0000-0000", "lodash", model.SeverityLow))
	record(t, st, b, v1, true, intelDay,
		vuln(b, "CVE-2021-44228", "log4j-core", model.SeverityCritical),
		vuln(b, "CVE-2014-0160", "openssl", model.SeverityHigh),
		vuln(b, "CVE-2023-4911", "libc6", model.SeverityHigh))
	// b's libc6 finding is fixed: resolved, and out of the index.
	record(t, st, b, v1, true, intelDay.Add(time.Hour),
		vuln(b, "CVE-2021-44228", "log4j-core", model.SeverityCritical),
		vuln(b, "CVE-2014-0160", "openssl", model.SeverityHigh))
	if f := stored(t, st, b)["CVE-2014-0160/openssl"]; f.Priority != model.P1 || f.KEV == nil {
		t.Fatalf("recorded with feeds: %+v", f)
	}
	if f := stored(t, st, a)["CVE-2021-44228/log4j-core"]; f.Priority != model.P3 || f.EPSS == nil || f.EPSS.Score != 0.2 {
		t.Fatalf("recorded with feeds: %+v", f)
	}

	// Log4Shell is listed in KEV; libc6's score changes too.
	v2 := feeds(t, []string{"CVE-2014-0160", "CVE-2021-44228"}, map[string]float64{"CVE-2021-44228": 0.2, "CVE-2023-4911": 0.3})
	run := runningSet{b: true}
	var seen visits
	res, err := vulnstore.ApplyIntel(ctx, st, vulnstore.IntelUpdate{Intel: v2, Running: run.has, CVEs: []string{"CVE-2021-44228", "CVE-2023-4911"}, Visit: seen.visit})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"01 CVE-2021-44228 P2 running=false", "01 CVE-2023-4911 P3 running=false", "01 GHSA-jfh8-c2jp-5v3q P2 running=false",
		"02 CVE-2021-44228 P1 running=true",
	}
	if got := seen.sorted(); !slices.Equal(got, want) {
		t.Fatalf("visited\n%q\nwant\n%q", got, want)
	}
	if res.Images != 2 || res.Checked != 4 || res.Updated != 4 || res.RunningChanged != 0 {
		t.Errorf("result %+v", res)
	}
	fa, fb := stored(t, st, a), stored(t, st, b)
	if f := fa["GHSA-jfh8-c2jp-5v3q/log4j-api"]; f.KEV == nil || !f.KnownExploited || f.Priority != model.P2 {
		t.Errorf("alias finding: %+v", f)
	}
	if f := fa["CVE-2023-4911/libc6"]; f.EPSS == nil || f.EPSS.Score != 0.3 || f.KEV != nil {
		t.Errorf("rescored finding: %+v", f)
	}
	if f := fa["GHSA-0000-0000-0000/lodash"]; f.Priority != model.P4 || !f.LastSeen.Equal(intelDay) {
		t.Errorf("finding without a CVE: %+v", f)
	}
	if f := fb["CVE-2023-4911/libc6"]; f.Status != model.FindingResolved || f.EPSS.Score != 0.01 {
		t.Errorf("resolved finding touched: %+v", f)
	}

	// Applied again (a redelivered or resumed run): nothing to write.
	res, err = vulnstore.ApplyIntel(ctx, st, vulnstore.IntelUpdate{Intel: v2, Running: run.has, CVEs: []string{"CVE-2021-44228", "CVE-2023-4911"}})
	if err != nil || res.Updated != 0 || res.Checked != 4 {
		t.Fatalf("applied again: %+v, %v", res, err)
	}

	// Once deleted, an image is out of the index.
	if _, err := vulnstore.MarkDeleted(ctx, st, model.Image{Digest: a}, intelDay.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	res, err = vulnstore.ApplyIntel(ctx, st, vulnstore.IntelUpdate{Intel: v2, Running: run.has, All: true})
	if err != nil || res.Images != 1 || res.Checked != 2 {
		t.Fatalf("after the delete: %+v, %v", res, err)
	}
}

// TestApplyIntelRunningChange: an image that starts (or stops) running has
// every open finding prioritised again, once.
func TestApplyIntelRunningChange(t *testing.T) {
	st := testenv.Store(t)
	ctx := t.Context()
	fs := feeds(t, []string{"CVE-2014-0160"}, nil)
	a := digestN(1)
	crit := vuln(a, "CVE-2024-0001", "zlib", model.SeverityCritical)
	crit.FixedVersion = "1.3"
	record(t, st, a, fs, false, intelDay, crit, vuln(a, "CVE-2014-0160", "openssl", model.SeverityHigh), vuln(a, "GHSA-0000-0000-0000", "lodash", model.SeverityLow))
	if got := stored(t, st, a); got["CVE-2024-0001/zlib"].Priority != model.P3 || got["CVE-2014-0160/openssl"].Priority != model.P2 {
		t.Fatalf("not running: %+v", got)
	}
	run := runningSet{a: true}
	res, err := vulnstore.ApplyIntel(ctx, st, vulnstore.IntelUpdate{Intel: fs, Running: run.has})
	if err != nil || res.RunningChanged != 1 || res.Checked != 3 || res.Updated != 2 {
		t.Fatalf("started running: %+v, %v", res, err)
	}
	got := stored(t, st, a)
	if got["CVE-2024-0001/zlib"].Priority != model.P2 || got["CVE-2014-0160/openssl"].Priority != model.P1 || got["GHSA-0000-0000-0000/lodash"].Priority != model.P4 {
		t.Fatalf("running: %+v", got)
	}
	res, err = vulnstore.ApplyIntel(ctx, st, vulnstore.IntelUpdate{Intel: fs, Running: run.has})
	if err != nil || res.RunningChanged != 0 || res.Checked != 0 {
		t.Fatalf("again: %+v, %v", res, err)
	}
}

// racer is a store whose first conditional write of a finding is preceded
// by a rescan of the same image, the interleaving a concurrent rescan
// makes.
type racer struct {
	store.Store
	once   sync.Once
	rescan func()
	raced  atomic.Bool
}

func (r *racer) Put(ctx context.Context, c store.Container, pk, id string, v any, cond store.Cond) (string, error) {
	if c == store.Findings && cond.IfMatch != "" {
		r.once.Do(func() { r.rescan(); r.raced.Store(true) })
	}
	return r.Store.Put(ctx, c, pk, id, v, cond)
}

// TestApplyIntelConcurrentRescan: a rescan that rewrites the image between
// the update's read and its write wins; the update reads again, does not
// reopen what the rescan resolved, and leaves every open finding annotated
// with the new feeds.
func TestApplyIntelConcurrentRescan(t *testing.T) {
	base := testenv.Store(t)
	a := digestN(1)
	v1 := feeds(t, nil, nil)
	record(t, base, a, v1, false, intelDay,
		vuln(a, "CVE-2021-44228", "log4j-core", model.SeverityCritical),
		vuln(a, "CVE-2021-45046", "log4j-core", model.SeverityCritical),
		vuln(a, "CVE-2023-4911", "libc6", model.SeverityHigh))
	v2 := feeds(t, []string{"CVE-2021-44228", "CVE-2021-45046", "CVE-2023-4911"}, nil)
	st := &racer{Store: base, rescan: func() {
		// The rescan found CVE-2021-45046 fixed and a new CVE, with the new feeds.
		record(t, base, a, v2, false, intelDay.Add(time.Hour),
			vuln(a, "CVE-2021-44228", "log4j-core", model.SeverityCritical),
			vuln(a, "CVE-2023-4911", "libc6", model.SeverityHigh),
			vuln(a, "CVE-2024-3094", "xz-utils", model.SeverityCritical))
	}}
	res, err := vulnstore.ApplyIntel(t.Context(), st, vulnstore.IntelUpdate{Intel: v2, Running: runningSet{}.has, CVEs: []string{"CVE-2021-44228", "CVE-2021-45046", "CVE-2023-4911"}})
	if err != nil {
		t.Fatal(err)
	}
	if !st.raced.Load() || res.Conflicts == 0 {
		t.Fatalf("the rescan did not race the update: %+v", res)
	}
	got := stored(t, base, a)
	if f := got["CVE-2021-45046/log4j-core"]; f.Status != model.FindingResolved {
		t.Errorf("the update reopened a finding the rescan resolved: %+v", f)
	}
	for _, k := range []string{"CVE-2021-44228/log4j-core", "CVE-2023-4911/libc6"} {
		if f := got[k]; f.Status != model.FindingOpen || f.KEV == nil || f.Priority != model.P2 {
			t.Errorf("%s: %+v", k, f)
		}
	}
	if f := got["CVE-2024-3094/xz-utils"]; f.Status != model.FindingOpen || f.Priority != model.P3 {
		t.Errorf("the rescan's new finding: %+v", f)
	}
}

// TestApplyIntelRaceStress runs updates and rescans of the same images at
// once; when both are done, every open finding carries the new feeds'
// data, whichever wrote last.
func TestApplyIntelRaceStress(t *testing.T) {
	st := testenv.Store(t)
	v1 := feeds(t, nil, nil)
	v2 := feeds(t, []string{"CVE-2024-0001", "CVE-2024-0002"}, map[string]float64{"CVE-2024-0003": 0.6})
	var digests []string
	for i := range 6 {
		d := digestN(i)
		digests = append(digests, d)
		record(t, st, d, v1, false, intelDay, vuln(d, "CVE-2024-0001", "a", model.SeverityLow), vuln(d, "CVE-2024-0002", "b", model.SeverityMedium), vuln(d, "CVE-2024-0003", "c", model.SeverityHigh))
	}
	var wg sync.WaitGroup
	for i, d := range digests {
		wg.Go(func() {
			record(t, st, d, v2, false, intelDay.Add(time.Duration(i)*time.Minute), vuln(d, "CVE-2024-0001", "a", model.SeverityLow), vuln(d, "CVE-2024-0002", "b", model.SeverityMedium), vuln(d, "CVE-2024-0003", "c", model.SeverityHigh))
		})
	}
	for range 2 {
		wg.Go(func() {
			if _, err := vulnstore.ApplyIntel(context.Background(), st, vulnstore.IntelUpdate{Intel: v2, Running: runningSet{}.has, All: true}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, d := range digests {
		for k, f := range stored(t, st, d) {
			want := map[string]model.Priority{"CVE-2024-0001/a": model.P2, "CVE-2024-0002/b": model.P2, "CVE-2024-0003/c": model.P3}[k]
			if f.Priority != want {
				t.Errorf("%s %s: priority %s, want %s", d, k, f.Priority, want)
			}
		}
	}
}

// TestFindingFiltersAndPriorityOrder: the exploitation filters, across
// images and within one, and one image's findings most urgent first,
// paged.
func TestFindingFiltersAndPriorityOrder(t *testing.T) {
	st := testenv.Store(t)
	ctx := t.Context()
	fs := feeds(t, []string{"CVE-2021-44228"}, map[string]float64{"CVE-2021-44228": 0.94, "CVE-2023-4911": 0.4, "CVE-2024-0001": 0.05})
	a, b := digestN(1), digestN(2)
	fixed := vuln(a, "CVE-2024-0002", "zlib", model.SeverityCritical)
	fixed.FixedVersion = "1.3"
	record(t, st, a, fs, true, intelDay, vuln(a, "CVE-2021-44228", "log4j-core", model.SeverityCritical),
		vuln(a, "CVE-2023-4911", "libc6", model.SeverityHigh), vuln(a, "CVE-2024-0001", "curl", model.SeverityLow), fixed,
		vuln(a, "CVE-2024-0003", "tar", model.SeverityMedium))
	record(t, st, b, fs, false, intelDay, vuln(b, "CVE-2021-44228", "log4j-core", model.SeverityCritical), vuln(b, "CVE-2024-0001", "curl", model.SeverityLow))
	ids := func(l store.List[model.Finding]) []string {
		var out []string
		for _, f := range l.Items {
			out = append(out, f.Digest[len(f.Digest)-1:]+" "+f.VulnID+" "+string(f.Priority))
		}
		return out
	}
	yes, no := true, false
	for _, tc := range []struct {
		name   string
		digest string
		f      vulnstore.FindingFilter
		want   []string
	}{
		{"kev everywhere", "", vulnstore.FindingFilter{KEV: &yes}, []string{"1 CVE-2021-44228 P1", "2 CVE-2021-44228 P2"}},
		{"P2 or more urgent everywhere", "", vulnstore.FindingFilter{MinPriority: model.P2}, []string{"1 CVE-2021-44228 P1", "1 CVE-2023-4911 P2", "1 CVE-2024-0002 P2", "2 CVE-2021-44228 P2"}},
		{"epss of one image", a, vulnstore.FindingFilter{MinEPSS: 0.4}, []string{"1 CVE-2021-44228 P1", "1 CVE-2023-4911 P2"}},
		{"not kev, P2 or more urgent", "", vulnstore.FindingFilter{KEV: &no, MinPriority: model.P2}, []string{"1 CVE-2023-4911 P2", "1 CVE-2024-0002 P2"}},
		{"epss and P1", a, vulnstore.FindingFilter{MinEPSS: 0.04, MinPriority: model.P1}, []string{"1 CVE-2021-44228 P1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := vulnstore.ListFindings(ctx, st, tc.digest, tc.f, store.Cursor{})
			if err != nil {
				t.Fatal(err)
			}
			got := ids(l)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	var all []string
	cur := store.Cursor{Limit: 2}
	for pages := 0; ; pages++ {
		l, err := vulnstore.SortedFindings(ctx, st, a, vulnstore.FindingFilter{Status: model.FindingOpen}, cur)
		if err != nil || pages > 4 {
			t.Fatal(pages, err)
		}
		all = append(all, ids(l)...)
		if l.Continuation == "" {
			break
		}
		cur.Continuation = l.Continuation
	}
	// Within P4, the scored low finding comes before the unscored medium.
	want := []string{"1 CVE-2021-44228 P1", "1 CVE-2023-4911 P2", "1 CVE-2024-0002 P2", "1 CVE-2024-0001 P4", "1 CVE-2024-0003 P4"}
	if !slices.Equal(all, want) {
		t.Errorf("by priority:\n%q\nwant\n%q", all, want)
	}
	if _, err := vulnstore.SortedFindings(ctx, st, a, vulnstore.FindingFilter{}, store.Cursor{Continuation: "abc"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a bogus continuation: %v", err)
	}

	// Across images.
	l, err := vulnstore.SortedFindings(ctx, st, "", vulnstore.FindingFilter{MinPriority: model.P2}, store.Cursor{})
	if got, want := ids(l), []string{"1 CVE-2021-44228 P1", "2 CVE-2021-44228 P2", "1 CVE-2023-4911 P2", "1 CVE-2024-0002 P2"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("across images: %q, %v; want %q", got, err, want)
	}
}

// TestSortedFindingsBound: a selection larger than the bound (MaxSorted)
// is refused, naming it; a narrower one is sorted.
func TestSortedFindingsBound(t *testing.T) {
	st := testenv.Store(t)
	d := digestN(1)
	const most = 300
	many := make([]model.Finding, most+1)
	for i := range many {
		many[i] = vuln(d, fmt.Sprintf("CVE-2024-%05d", 10000+i), "pkg", model.SeverityLow)
	}
	many[7].Severity, many[7].SeverityRank = model.SeverityCritical, model.SeverityCritical.Rank()
	record(t, st, d, feeds(t, nil, nil), false, intelDay, many...)
	_, err := vulnstore.SortedFindingsAtMost(t.Context(), st, "", vulnstore.FindingFilter{}, store.Cursor{}, most)
	if !errors.Is(err, vulnstore.ErrTooMany) || !strings.Contains(err.Error(), "more than 300") {
		t.Fatalf("err %v, want ErrTooMany", err)
	}
	l, err := vulnstore.SortedFindingsAtMost(t.Context(), st, "", vulnstore.FindingFilter{MinPriority: model.P3}, store.Cursor{}, most)
	if err != nil || len(l.Items) != 1 || l.Items[0].VulnID != "CVE-2024-10007" {
		t.Fatalf("narrowed: %+v, %v", l.Items, err)
	}
}

// TestCVEIndexChunks: an image with more open findings than one index item
// lists gets several, written with its findings; ApplyIntel finds the
// findings of every chunk; when the image has fewer findings again, the
// chunks past the new ones are dropped.
func TestCVEIndexChunks(t *testing.T) {
	st := testenv.Store(t)
	ctx := t.Context()
	a := digestN(1)
	chunks := func() int {
		t.Helper()
		page, err := st.Query(ctx, store.State, store.Query{PartitionKey: model.KindCVEIndex, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Items)
	}
	vulnstore.SetIndexChunkRefs(t, 20)
	const n = 30 // more than one index item lists
	many := make([]model.Finding, n)
	for i := range many {
		many[i] = vuln(a, fmt.Sprintf("CVE-2024-%05d", 10000+i), "pkg", model.SeverityMedium)
	}
	record(t, st, a, feeds(t, nil, nil), false, intelDay, many...)
	if got := chunks(); got != 2 {
		t.Fatalf("%d index items for %d findings, want 2", got, n)
	}
	first, last := many[0].VulnID, many[n-1].VulnID
	res, err := vulnstore.ApplyIntel(ctx, st, vulnstore.IntelUpdate{Intel: feeds(t, []string{first, last}, nil), Running: runningSet{}.has, CVEs: []string{first, last}})
	if err != nil || res.Updated != 2 || res.Checked != 2 {
		t.Fatalf("KEV listing of a CVE in each chunk: %+v, %v", res, err)
	}
	got := stored(t, st, a)
	for _, c := range []string{first, last} {
		if f := got[c+"/pkg"]; f.KEV == nil || f.Priority != model.P2 {
			t.Errorf("%s: %+v", c, f)
		}
	}

	record(t, st, a, feeds(t, []string{first, last}, nil), false, intelDay.Add(time.Hour), many[:10]...)
	if got := chunks(); got != 1 {
		t.Errorf("%d index items after the image kept 10 findings, want 1", got)
	}
	record(t, st, a, feeds(t, []string{first, last}, nil), false, intelDay.Add(2*time.Hour))
	if got := chunks(); got != 0 {
		t.Errorf("%d index items after the image has no open finding, want 0", got)
	}
}
