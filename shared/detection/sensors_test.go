package detection

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/faultstore"
)

// TestSensors: each node's last event is recorded, moves only forward, is
// written at most once a SensorInterval by one process, and a node clock
// ahead of ours counts as now.
func TestSensors(t *testing.T) {
	st := faultstore.Open(t)
	clock := fixedNow()
	s := NewSensors(st, func() time.Time { return clock })
	env := func(cluster, node string, at time.Time) *model.Envelope {
		return &model.Envelope{Cluster: cluster, Node: node, Time: at}
	}
	read := func() map[string]time.Time {
		out := map[string]time.Time{}
		if err := EachSensor(t.Context(), st, func(n SensorNode) error {
			out[n.Cluster+"/"+n.Node] = n.LastEvent
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	writes := 0
	st.SetFail(func(op string, c store.Container) error {
		if op == "put" && c == store.State {
			writes++
		}
		return nil
	})
	t0 := clock.Add(-10 * time.Minute)
	batch := []*model.Envelope{env("aks-a", "n1", t0), env("aks-a", "n1", t0.Add(time.Second)), env("aks-a", "n2", t0), env("aks-b", "n1", clock.Add(time.Hour)), env("", "n9", t0)}
	if err := s.Observe(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"aks-a/n1": t0.Add(time.Second), "aks-a/n2": t0, "aks-b/n1": clock}
	if d := cmp.Diff(want, read()); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if writes != 3 {
		t.Errorf("%d writes, want 3", writes)
	}
	// Within the interval: no write. A late batch: no change.
	if err := s.Observe(t.Context(), []*model.Envelope{env("aks-a", "n1", t0.Add(30*time.Second))}); err != nil {
		t.Fatal(err)
	}
	if err := NewSensors(st, func() time.Time { return clock }).Observe(t.Context(), []*model.Envelope{env("aks-a", "n2", t0.Add(-time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if writes != 3 {
		t.Errorf("%d writes, want still 3", writes)
	}
	if err := s.Observe(t.Context(), []*model.Envelope{env("aks-a", "n1", t0.Add(2*time.Minute))}); err != nil {
		t.Fatal(err)
	}
	want["aks-a/n1"] = t0.Add(2 * time.Minute)
	if d := cmp.Diff(want, read()); d != "" || writes != 4 {
		t.Errorf("after the interval, %d writes (-want +got):\n%s", writes, d)
	}
}
