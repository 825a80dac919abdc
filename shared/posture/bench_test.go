package posture

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/inventory/inventorytest"
	"github.com/palisade-sec/palisade/shared/store/embedded"
	"github.com/palisade-sec/palisade/tests/cputime"
)

// bigSnapshot is a 5,000-pod cluster (inventorytest.Cluster).
func bigSnapshot() *Snapshot {
	return &Snapshot{Name: "bench", Objects: inventorytest.Cluster()}
}

// BenchmarkAssess5000Pods assesses a 5,000-pod snapshot with the built-in
// checks and three Rego policies (prepared once, outside the loop, as in a
// run).
func BenchmarkAssess5000Pods(b *testing.B) {
	snap := bigSnapshot()
	if n := len(snap.Objects.Pods); n != 5000 {
		b.Fatalf("%d pods", n)
	}
	cfg := testConfig(b, "testdata/policies")
	eng, err := LoadEngine(b.Context(), cfg, nil, clock)
	if err != nil || len(eng.Policies()) != 3 {
		b.Fatalf("engine: %v", err)
	}
	var results int
	b.ReportAllocs()
	for b.Loop() {
		rep, err := eng.Assess(b.Context(), snap)
		if err != nil {
			b.Fatal(err)
		}
		results = len(rep.Results)
	}
	b.ReportMetric(float64(results), "results/op")
	b.ReportMetric(float64(snap.Objects.Count()), "objects")
}

// BenchmarkRecord5000Pods records the assessment of the 5,000-pod cluster
// again and again, nothing having changed, and reports the store writes of
// each run: every-result rewrites every result each run (what the Recorder
// did before, reproduced with a refresh on every run), changed-only writes
// what changed plus the daily refresh (a fresh store item lasts a day).
func BenchmarkRecord5000Pods(b *testing.B) {
	snap := bigSnapshot()
	eng := NewEngine(testConfig(b, ""), nil, nil, nil, nil, clock)
	rep, err := eng.Assess(b.Context(), snap)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name    string
		refresh time.Duration
	}{{"every-result", time.Nanosecond}, {"changed-only", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			st, err := embedded.OpenWith(filepath.Join(b.TempDir(), "palisade.db"), embedded.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			cs := &countingStore{Store: st}
			rc := &Recorder{Store: cs, RefreshEvery: bc.refresh}
			if _, err := rc.Record(b.Context(), rep); err != nil { // the first run writes everything
				b.Fatal(err)
			}
			first, _ := cs.reset()
			runs := 0
			b.ReportAllocs()
			cpu0 := cputime.Process(b)
			for b.Loop() {
				runs++
				rep.At = testNow.Add(time.Duration(runs) * time.Second)
				if _, err := rc.Record(b.Context(), rep); err != nil {
					b.Fatal(err)
				}
			}
			writes, _ := cs.reset()
			b.ReportMetric(float64(first), "writes/first-run")
			b.ReportMetric(float64(writes)/float64(runs), "writes/run")
			b.ReportMetric(float64(len(rep.Results)), "results/run")
			b.ReportMetric(float64((cputime.Process(b)-cpu0).Milliseconds())/float64(runs), "cpu-ms/run")
		})
	}
}
