package posture

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// countingStore counts the writes (puts and deletes) that reach a store,
// and the puts of each posture result.
type countingStore struct {
	store.Store
	mu      sync.Mutex
	writes  int
	results map[string]int
}

func (c *countingStore) Put(ctx context.Context, ct store.Container, pk, id string, v any, cond store.Cond) (string, error) {
	c.mu.Lock()
	c.writes++
	if ct == store.Posture {
		if c.results == nil {
			c.results = map[string]int{}
		}
		c.results[id]++
	}
	c.mu.Unlock()
	return c.Store.Put(ctx, ct, pk, id, v, cond)
}

func (c *countingStore) Delete(ctx context.Context, ct store.Container, pk, id string) error {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Store.Delete(ctx, ct, pk, id)
}

// reset returns the writes so far and forgets them.
func (c *countingStore) reset() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, r := c.writes, c.results
	c.writes, c.results = 0, nil
	return n, r
}

// recordAt assesses snap at time at and records it.
func recordAt(t *testing.T, rc *Recorder, snap *Snapshot, at time.Time) (*Report, *model.PostureRun) {
	t.Helper()
	rep, err := NewEngine(testConfig(t, ""), nil, nil, nil, nil, func() time.Time { return at }).Assess(t.Context(), snap)
	if err != nil {
		t.Fatal(err)
	}
	run, err := rc.Record(t.Context(), rep)
	if err != nil {
		t.Fatal(err)
	}
	return rep, run
}

func storedResult(t *testing.T, st store.Store, cluster, id string) model.PostureResult {
	t.Helper()
	var r model.PostureResult
	if _, err := st.Get(t.Context(), store.Posture, cluster, id, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRecorderWritesOnlyChanges: a rerun writes no result that did not
// change, a change writes its results with a new changedAt, and the run
// record counts the writes the store saw.
func TestRecorderWritesOnlyChanges(t *testing.T) {
	cs := &countingStore{Store: newTestStore(t)}
	rc := &Recorder{Store: cs}
	snap, _ := clusterSnapshot(t, "testdata/bad", "", "", "")
	snap.Name = "aks-1"

	rep1, run1 := recordAt(t, rc, snap, testNow)
	if n, _ := cs.reset(); run1.ResultsWritten != len(rep1.Results) || run1.ResultsUnchanged != 0 || run1.Writes != n {
		t.Fatalf("first run wrote %d of %d results, %d writes (store saw %d)", run1.ResultsWritten, len(rep1.Results), run1.Writes, n)
	}

	_, run2 := recordAt(t, rc, snap, testNow)
	n, written := cs.reset()
	if run2.ResultsWritten != 0 || run2.ResultsUnchanged != len(rep1.Results) || len(written) != 0 {
		t.Errorf("identical rerun wrote %d results (store saw %d)", run2.ResultsWritten, len(written))
	}
	if n != run2.Writes || n != 3 {
		t.Errorf("identical rerun: %d writes (run record says %d), want 3: run record, history, running images", n, run2.Writes)
	}

	// The CronJob gets a CPU limit: its resource-limits evidence changes,
	// nothing else does.
	later := testNow.Add(time.Minute)
	ctr := &snap.Objects.CronJobs[0].Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	ctr.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	rep3, run3 := recordAt(t, rc, snap, later)
	n, written = cs.reset()
	changed := results(rep3, "resource-limits")["CronJob/legacy/report"]
	if run3.ResultsWritten != 1 || len(written) != 1 || written[changed.ID] != 1 || n != run3.Writes {
		t.Errorf("one change: %d results written %v, %d writes (run says %d)", run3.ResultsWritten, written, n, run3.Writes)
	}
	got := storedResult(t, cs, "aks-1", changed.ID)
	if got.Message != "container report: no memory limit" || !got.ChangedAt.Equal(later) || !got.EvaluatedAt.Equal(later) || !got.FirstFailed.Equal(testNow) {
		t.Errorf("changed result: %q changed %v evaluated %v first failed %v", got.Message, got.ChangedAt, got.EvaluatedAt, got.FirstFailed)
	}
	other := results(rep3, "privileged-containers")["DaemonSet/legacy/node-agent"]
	if got := storedResult(t, cs, "aks-1", other.ID); !got.ChangedAt.Equal(testNow) || !got.EvaluatedAt.Equal(testNow) {
		t.Errorf("unchanged result rewritten: changed %v evaluated %v", got.ChangedAt, got.EvaluatedAt)
	}
	// The run record says when everything was evaluated.
	var last model.State
	if _, err := cs.Get(t.Context(), store.State, model.KindPostureRun, RunID("aks-1"), &last); err != nil {
		t.Fatal(err)
	}
	var lr model.PostureRun
	if err := json.Unmarshal(last.Data, &lr); err != nil {
		t.Fatal(err)
	}
	if !lr.At.Equal(later) || len(lr.Checks) != len(Builtin()) {
		t.Fatalf("run at %v with %d check summaries, want %v and %d", lr.At, len(lr.Checks), later, len(Builtin()))
	}
	for _, c := range lr.Checks {
		if !c.EvaluatedAt.Equal(later) {
			t.Errorf("check %s evaluated at %v", c.CheckID, c.EvaluatedAt)
		}
		if c.CheckID == "resource-limits" && c.Failed == 0 {
			t.Errorf("resource-limits summary %+v", c)
		}
	}
}

// TestRecorderDailyRefresh: over a day of hourly runs on a cluster that
// does not change, every result is written once, and the writes spread
// over the day.
func TestRecorderDailyRefresh(t *testing.T) {
	cs := &countingStore{Store: newTestStore(t)}
	rc := &Recorder{Store: cs}
	objs, err := LoadManifestDir("testdata/fidelity", ManifestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snap := &Snapshot{Name: "aks-1", Objects: objs}
	rep, _ := recordAt(t, rc, snap, testNow)
	cs.reset()
	total := map[string]int{}
	most := 0
	for h := 1; h <= 24; h++ {
		_, run := recordAt(t, rc, snap, testNow.Add(time.Duration(h)*time.Hour))
		_, results := cs.reset()
		for id, n := range results {
			total[id] += n
		}
		most = max(most, run.ResultsWritten)
	}
	for _, r := range rep.Results {
		if total[r.ID] != 1 {
			t.Fatalf("result %s written %d times in a day, want once", r.ID, total[r.ID])
		}
	}
	if len(total) != len(rep.Results) {
		t.Errorf("%d results refreshed, want %d", len(total), len(rep.Results))
	}
	if most > len(rep.Results)/4 {
		t.Errorf("one run refreshed %d of %d results: the refreshes do not spread over the day", most, len(rep.Results))
	}
}

func TestRefreshDue(t *testing.T) {
	rc := &Recorder{}
	// Within a day of its write, each result becomes due once (at its
	// time of day) and stays due until written.
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		first := -1
		for m := 0; m <= 24*60; m += 5 {
			due := rc.refreshDue(id, testNow, testNow.Add(time.Duration(m)*time.Minute))
			switch {
			case due && first < 0:
				first = m
			case !due && first >= 0:
				t.Errorf("%s: due at minute %d, not at %d", id, first, m)
			}
		}
		if first <= 0 {
			t.Errorf("%s: due at minute %d, want within (0, 1440]", id, first)
		}
	}
	if (&Recorder{RefreshEvery: time.Hour}).refreshDue("a", testNow, testNow.Add(30*time.Minute)) ==
		(&Recorder{RefreshEvery: time.Hour}).refreshDue("a", testNow, testNow.Add(61*time.Minute)) {
		t.Error("RefreshEvery not honoured")
	}
}

// TestHistoryTTL: history and remediation records carry the ttl of the
// history days; the latest run record and results do not expire.
func TestHistoryTTL(t *testing.T) {
	st := newTestStore(t)
	rc := &Recorder{Store: st, HistoryDays: 30}
	snap, _ := clusterSnapshot(t, "testdata/bad", "", "", "")
	snap.Name = "aks-1"
	recordAt(t, rc, snap, testNow)
	ttl := map[string]int{}
	err := store.Each(t.Context(), st, store.State, store.Query{}, func(s model.State) error {
		ttl[s.Kind] = s.TTL
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ttl[model.KindPostureHistory] != 30*86400 || ttl[model.KindPostureRun] != 0 || ttl[model.KindRunningImages] != 0 {
		t.Errorf("ttls %v", ttl)
	}
	rm := &Remediator{Store: st, Now: clock, HistoryDays: 30}
	if err := rm.record(t.Context(), model.Remediation{ResultID: "r", Resource: "Deployment/a/b", At: testNow}); err != nil {
		t.Fatal(err)
	}
	var rec []model.State
	err = store.Each(t.Context(), st, store.State, store.Query{PartitionKey: model.KindRemediation}, func(s model.State) error {
		rec = append(rec, s)
		return nil
	})
	if err != nil || len(rec) != 1 || rec[0].TTL != 30*86400 {
		t.Errorf("remediation records %+v (%v)", rec, err)
	}
}
