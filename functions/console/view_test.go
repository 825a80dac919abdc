package console

import (
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/embedded"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/seed"
)

var testNow = time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)

func seededStore(t *testing.T) (*embedded.Store, seed.Result) {
	t.Helper()
	st, err := embedded.OpenWith(filepath.Join(t.TempDir(), "palisade.db"), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, seed.Fill(t, st, seed.Options{Images: 80, Alerts: 800, Now: testNow})
}

// TestBuild: the view's joins agree with the store: each vulnerability
// lists exactly the images whose open findings have it, clusters count
// their open alerts, the alert charts count the alerts of their period,
// and summaries missing from an older store are rebuilt.
func TestBuild(t *testing.T) {
	st, _ := seededStore(t)
	ctx := t.Context()
	v, err := Build(ctx, st, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	err = vulnstore.EachImage(ctx, st, vulnstore.ImageFilter{}, func(img model.Image) error {
		if img.Status == model.ImageDeleted {
			return nil
		}
		fs, err := vulnstore.Findings(ctx, st, img.Digest)
		for _, f := range fs {
			if f.Status == model.FindingOpen && !slices.Contains(want[f.VulnID], img.Digest) {
				want[f.VulnID] = append(want[f.VulnID], img.Digest)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Vulns) != len(want) || len(want) == 0 {
		t.Fatalf("%d vulnerabilities in the view, %d open in the store", len(v.Vulns), len(want))
	}
	for id, digests := range want {
		slices.Sort(digests)
		if row := v.Vuln(id); row == nil || !slices.Equal(row.Digests, digests) {
			t.Errorf("%s: view %v, store %v", id, row, digests)
		}
	}

	open := map[string]int{}
	recent := 0
	err = detection.EachAlert(ctx, st, detection.AlertFilter{}, func(a model.Alert) error {
		if model.AlertOpen(a.Status) {
			open[a.Cluster]++
		}
		if a.Status != model.AlertDismissed && !a.LastSeen.Before(testNow.Truncate(time.Hour).Add(-23*time.Hour)) {
			recent++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range open {
		if c := v.Cluster(name); c == nil || c.OpenAlerts != n || !c.Assessed || c.Nodes == 0 || c.Running == 0 {
			t.Errorf("cluster %s: %+v, want %d open alerts, assessed, with nodes and running images", name, c, n)
		}
	}
	if got := v.overview().Total24h; got != recent || got == 0 {
		t.Errorf("alerts of the last 24 h: %d, want %d", got, recent)
	}

	// A store from before the summaries: they are rebuilt, a bounded
	// number per build.
	var some []string
	_ = vulnstore.EachSummary(ctx, st, func(s model.ImageVulns) error {
		if len(s.Vulns) > 0 && len(some) < 3 {
			some = append(some, s.Digest)
		}
		return nil
	})
	for _, d := range some {
		if err := st.Delete(ctx, store.State, model.KindImageVulns, d); err != nil {
			t.Fatal(err)
		}
	}
	again, err := Build(ctx, st, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if again.Unsummarized != 0 || len(again.Vulns) != len(v.Vulns) {
		t.Errorf("after rebuilding: %d unsummarised, %d vulnerabilities (want 0 and %d)", again.Unsummarized, len(again.Vulns), len(v.Vulns))
	}
}

// TestViewsRefresh: a view older than MaxAge is still served while a new
// one is built in the background; a triaged alert shows at once; one the
// view does not know has it rebuilt.
func TestViewsRefresh(t *testing.T) {
	st, _ := seededStore(t)
	clock := testNow
	vs := &views{st: st, now: func() time.Time { return clock }, maxAge: time.Minute}
	first, err := vs.get(t.Context())
	if err != nil || first == nil {
		t.Fatal(err)
	}
	if again, _ := vs.get(t.Context()); again != first {
		t.Error("a fresh view was rebuilt")
	}
	clock = clock.Add(2 * time.Minute)
	stale, _ := vs.get(t.Context())
	if stale != first {
		t.Error("a stale view was not served while the new one is built")
	}
	waitFor(t, func() bool { return vs.peek() != first })
	next := vs.peek()
	if !next.At.Equal(clock) {
		t.Errorf("rebuilt view at %s, want %s", next.At, clock)
	}
	a := next.Alerts[0]
	stored, err := detection.GetAlert(t.Context(), st, a.Cluster, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored.Status = model.AlertDismissed
	vs.changed(&stored)
	patched, _ := vs.get(t.Context())
	if patched == next || patched.Alert(a.ID).Status != model.AlertDismissed || next.Alert(a.ID).Status == model.AlertDismissed ||
		patched.At != next.At || patched.Alerts[0].ID != a.ID {
		t.Error("the triaged alert is not in the view, or the view it replaced changed")
	}
	if open := patched.Cluster(a.Cluster).OpenAlerts; model.AlertOpen(a.Status) && open != next.Cluster(a.Cluster).OpenAlerts-1 {
		t.Errorf("open alerts of the cluster: %d, was %d", open, next.Cluster(a.Cluster).OpenAlerts)
	}
	stored.ID = "0123456789abcdef0123456789abcdef"
	vs.changed(&stored)
	if got, _ := vs.get(t.Context()); got != patched {
		t.Error("a view to rebuild was not served while rebuilding")
	}
	waitFor(t, func() bool { return vs.peek() != patched })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCharts(t *testing.T) {
	c := stacked("t", []string{"a", "b", "c"}, []series{{Name: "x", Class: "c0", Values: []int{1, 0, 7}}, {Name: "y", Class: "c1", Values: []int{2, 0, 0}}}, 300, 100, 1)
	if len(c.Bars) != 3 || c.Empty || len(c.Legend) != 2 || c.Legend[0].Count != 8 {
		t.Fatalf("stacked: %+v", c)
	}
	plotH := 100 - padTop - padBottom
	// The tallest column (7) fills 7/10 of the plot (the scale goes to 10).
	if h := c.Bars[2].H; h != round1(plotH*0.7) {
		t.Errorf("bar of 7 is %g high, want %g", h, round1(plotH*0.7))
	}
	// Stacked: y's bar sits on x's in the first column.
	if c.Bars[1].Y+c.Bars[1].H != c.Bars[0].Y {
		t.Errorf("stacking: %+v", c.Bars[:2])
	}
	if e := stacked("t", []string{"a"}, []series{{Name: "x", Values: []int{0}}}, 300, 100, 1); !e.Empty || len(e.Bars) != 0 {
		t.Errorf("empty chart: %+v", e)
	}
	for in, want := range map[float64]float64{0: 1, 1: 1, 3: 5, 7: 10, 11: 20, 180: 200, 999: 1000} {
		if got := niceMax(in); got != want {
			t.Errorf("niceMax(%g) = %g, want %g", in, got, want)
		}
	}
	h := hbars("t", []hbarItem{{Label: "a", Value: 10}, {Label: "b", Value: 5}}, 400)
	if h.Bars[1].W*2 != h.Bars[0].W {
		t.Errorf("hbars widths %g and %g", h.Bars[0].W, h.Bars[1].W)
	}
	l := lines("t", []lineSeries{{Name: "s", Points: []linePoint{{testNow.Add(-time.Hour), 50}, {testNow.Add(-48 * time.Hour * 30), 10}, {testNow, 100}}}}, testNow.Add(-2*time.Hour), testNow, 100, 200, 100)
	if len(l.Lines) != 1 || len(l.Lines[0].Dots) != 2 || l.Lines[0].Dots[1].Y != padTop {
		t.Errorf("lines: %+v", l.Lines)
	}
}

func TestQueryLinks(t *testing.T) {
	q := newQuery("/api/console/images", mustURL(t, "/api/console/images?severity=high&page=3&code=k%26y"))
	if got := q.with("page", ""); got != "/api/console/images?code=k%26y&severity=high" {
		t.Errorf("with: %s", got)
	}
	if got := q.link("/api/console/alerts", "status", "open", "cluster", ""); got != "/api/console/alerts?code=k%26y&status=open" {
		t.Errorf("link: %s", got)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
