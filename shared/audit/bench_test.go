package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/statecache"
	"github.com/palisade-sec/palisade/tests/cputime"
	"github.com/palisade-sec/palisade/tests/testenv"
	"github.com/palisade-sec/palisade/tests/testfile"
)

// BenchmarkAuditBatch measures one Event Hubs event holding 100 diagnostic
// records (decode of all three encoding levels + rules + de-duplication),
// without I/O.
func BenchmarkAuditBatch(b *testing.B) {
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	if err != nil {
		b.Fatal(err)
	}
	var events [][]byte
	for i := range 100 {
		ev := readEvent(b, strings.TrimSuffix(filepath.Base(files[i%len(files)]), ".json"))
		events = append(events, ev)
	}
	body := diagnosticBody(b, events...)
	d := newDetector(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process(b)
	for b.Loop() {
		batch := d.NewBatch()
		n, bad, err := (Analyzer{}).AddBody(batch, body)
		if err != nil || n != 100 || len(bad) != 0 {
			b.Fatalf("%d events, %d bad, %v", n, len(bad), err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
	// The machine is shared: CPU time shows the cost per core regardless
	// of what else runs.
	b.ReportMetric(float64(b.N*100)/(cputime.Process(b)-cpu0).Seconds(), "records/cpu-s")
}

// BenchmarkAuditBenign measures the committed benign corpus (two hours of
// an ordinary cluster, mostly reads and controller traffic, with records
// of other categories), body by body: the mix a real audit hub carries.
func BenchmarkAuditBenign(b *testing.B) {
	var bodies [][]byte
	for line := range bytes.Lines(testfile.Gunzip(b, benignPath)) {
		bodies = append(bodies, line)
	}
	d := newDetector(b)
	a := Analyzer{}
	records := 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process(b)
	for b.Loop() {
		batch := d.NewBatch()
		var c Counts
		for _, body := range bodies {
			if _, err := a.Analyze(batch, body, &c); err != nil {
				b.Fatal(err)
			}
		}
		records += c.Events + c.SkippedTotal()
	}
	b.ReportMetric(float64(records)/(cputime.Process(b)-cpu0).Seconds(), "records/cpu-s")
}

// BenchmarkAuditBenignBaselines is BenchmarkAuditBenign with the identity
// baselines on: each body's observations are staged against the baselines
// an instance holds (learned from the corpus before the timer starts), as
// analyzeaudit does before it commits; the commit, which within an hour
// writes nothing for an identity already learned, is measured by
// tests/hostpath.
func BenchmarkAuditBenignBaselines(b *testing.B) {
	var bodies [][]byte
	for line := range bytes.Lines(testfile.Gunzip(b, benignPath)) {
		bodies = append(bodies, line)
	}
	d := newDetector(b)
	a := Analyzer{}
	st := testenv.Store(b)
	ids := NewIdentities(st, IdentityOptions{})
	ctx := b.Context()
	for _, body := range bodies {
		var obs Observations
		var c Counts
		if _, err := a.AnalyzeObserving(d.NewBatch(), body, &c, &obs); err != nil {
			b.Fatal(err)
		}
		if _, err := ids.Observe(ctx, obs.List()); err != nil {
			b.Fatal(err)
		}
	}
	records := 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process(b)
	for b.Loop() {
		batch := d.NewBatch()
		var c Counts
		for _, body := range bodies {
			var obs Observations
			if _, err := a.AnalyzeObserving(batch, body, &c, &obs); err != nil {
				b.Fatal(err)
			}
			if _, err := ids.Stage(ctx, statecache.Begin(st), obs.List()); err != nil {
				b.Fatal(err)
			}
		}
		records += c.Events + c.SkippedTotal()
	}
	b.ReportMetric(float64(records)/(cputime.Process(b)-cpu0).Seconds(), "records/cpu-s")
}

// benignObservations decodes the benign corpus once: the observations of
// each body, as analyzeaudit hands them to the baselines.
func benignObservations(b *testing.B) (bodies [][]Observation, events int) {
	d := newDetector(b)
	for line := range bytes.Lines(testfile.Gunzip(b, benignPath)) {
		var obs Observations
		var c Counts
		if _, err := (Analyzer{}).AnalyzeObserving(d.NewBatch(), line, &c, &obs); err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, obs.List())
		events += c.Events
	}
	return bodies, events
}

// BenchmarkIdentityObserve measures the identity baselines alone on the
// benign corpus, body by body, on the embedded store: each pass is the
// corpus two hours later than the one before, so every identity's
// baseline learns a new hour and is written, as in production at the turn
// of an hour (within an hour, most batches change no baseline and write
// nothing). It reports the audit events the baselines take per CPU-second
// (all events count, as analyzeaudit passes them all) and the CPU time per
// event.
func BenchmarkIdentityObserve(b *testing.B) {
	bodies, events := benignObservations(b)
	ids := NewIdentities(testenv.Store(b), IdentityOptions{})
	ctx := b.Context()
	passes := 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process(b)
	for b.Loop() {
		shift := time.Duration(passes) * 2 * time.Hour
		passes++
		for _, obs := range bodies {
			b.StopTimer()
			moved := slices.Clone(obs)
			for i := range moved {
				moved[i].At = moved[i].At.Add(shift)
			}
			b.StartTimer()
			if _, err := ids.Observe(ctx, moved); err != nil {
				b.Fatal(err)
			}
		}
	}
	cpu := cputime.Process(b) - cpu0
	b.ReportMetric(float64(passes*events)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(passes*events), "cpu-ns/event")
}

// BenchmarkIdentityStage is the in-memory part of BenchmarkIdentityObserve:
// staging a body's observations in a transaction over baselines already
// cached, not committed (nothing changes within the hour).
func BenchmarkIdentityStage(b *testing.B) {
	bodies, events := benignObservations(b)
	st := testenv.Store(b)
	ids := NewIdentities(st, IdentityOptions{})
	ctx := b.Context()
	for _, obs := range bodies {
		if _, err := ids.Observe(ctx, obs); err != nil {
			b.Fatal(err)
		}
	}
	passes := 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process(b)
	for b.Loop() {
		passes++
		for _, obs := range bodies {
			if _, err := ids.Stage(ctx, statecache.Begin(st), obs); err != nil {
				b.Fatal(err)
			}
		}
	}
	cpu := cputime.Process(b) - cpu0
	b.ReportMetric(float64(passes*events)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(passes*events), "cpu-ns/event")
}

// BenchmarkIdentityBytes learns 20,000 identities, each with a typical
// baseline (a service account: 8 operations, 1 secret namespace, 1
// registry) or a full one (an Entra application with every kind at its
// cap), and reports the heap each costs in an instance's cache and the
// size of its stored item.
func BenchmarkIdentityBytes(b *testing.B) {
	const n = 20_000
	for _, tc := range []struct {
		name                          string
		ops, secrets, registries, src int
	}{{"typical", 8, 1, 1, 0}, {"full", 20, 6, 6, 8}} {
		b.Run(tc.name, func(b *testing.B) {
			t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
			for b.Loop() {
				b.StopTimer()
				st := testenv.Store(b)
				ids := NewIdentities(st, IdentityOptions{MaxCached: n})
				var obs []Observation
				for i := range n {
					user := fmt.Sprintf("system:serviceaccount:ns%d:app%d", i%100, i)
					if tc.src > 0 {
						user = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
					}
					o := Observation{Cluster: "aks-prod", User: user, EventID: fmt.Sprint(i), At: t0, Verb: "get", Namespace: "shop", Code: 200, Source: "10.0.0.1"}
					for j := range max(tc.ops, tc.secrets, tc.registries, tc.src) {
						x := o
						x.EventID += "-" + strconv.Itoa(j)
						x.Resource = "widgets" + strconv.Itoa(j%tc.ops)
						if j < tc.secrets {
							x.Resource, x.Namespace = "secrets", "ns"+strconv.Itoa(j)
						}
						if j < tc.registries {
							x.Images = []string{"registry" + strconv.Itoa(j) + ".example/app:1"}
						}
						if j < tc.src {
							x.Source = "20.0." + strconv.Itoa(j) + ".1"
						}
						obs = append(obs, x)
					}
				}
				b.StartTimer()
				if _, err := ids.Observe(b.Context(), obs); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				obs = nil
				settle()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				if got := ids.cache.Len(); got != n {
					b.Fatalf("%d baselines cached, want %d", got, n)
				}
				var doc json.RawMessage
				if _, err := st.Get(b.Context(), store.State, KindIdentityBaseline, IdentityBaselineID("aks-prod", fmt.Sprintf("%08x-0000-4000-8000-%012x", 7, 7)), &doc); err != nil && tc.src > 0 {
					b.Fatal(err)
				}
				if tc.src == 0 {
					if _, err := st.Get(b.Context(), store.State, KindIdentityBaseline, IdentityBaselineID("aks-prod", "system:serviceaccount:ns7:app7"), &doc); err != nil {
						b.Fatal(err)
					}
				}
				// What the instance holds for its baselines is what is
				// freed when it lets them go.
				ids = nil
				settle()
				var released runtime.MemStats
				runtime.ReadMemStats(&released)
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(released.HeapAlloc))/n, "heap-bytes/identity")
				b.ReportMetric(float64(len(doc)), "stored-bytes/identity")
				b.StartTimer()
			}
		})
	}
}

// settle collects garbage until the pools the store keeps between writes
// (bbolt's pages) are dropped too: sync.Pool survives one collection.
func settle() {
	runtime.GC()
	runtime.GC()
}
