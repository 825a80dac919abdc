package detection

import (
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/tests/faultstore"
)

func connEnvelope(id string, at time.Time, ip string, port string) *model.Envelope {
	return &model.Envelope{Version: 1, ID: id, Cluster: "aks-prod", Node: "node-1", Time: at, Rule: "Outbound connection", Priority: "Notice",
		OutputFields: map[string]string{"evt.type": "connect", "fd.sip": ip, "fd.sport": port, "fd.l4proto": "tcp", "proc.name": "app"},
		Container:    &model.ContainerRef{ID: "c1", Name: "web"}, K8s: &model.K8sRef{Namespace: "shop", Pod: "web-7d4b9c8f5-x2x7q", Workload: "web"}}
}

// TestBaseline: destinations seen while learning are normal; afterwards a
// new one raises NetworkAnomaly once (again only on redelivery of the same
// event); pod addresses are folded into "private".
func TestBaseline(t *testing.T) {
	ctx := t.Context()
	st := faultstore.Open(t)
	d := newTestDetector(t)
	bl := NewBaselines(st, d, BaselineOptions{Learning: 24 * time.Hour, MaxDestinations: 100, Now: fixedNow})
	t0 := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	hits, err := bl.Observe(ctx, []*model.Envelope{
		connEnvelope("e1", t0, "20.50.2.1", "443"),
		connEnvelope("e2", t0.Add(time.Hour), "10.244.3.9", "5432"),
	})
	if err != nil || len(hits) != 0 {
		t.Fatalf("learning: %d hits, %v", len(hits), err)
	}
	after := t0.Add(25 * time.Hour)
	batch := []*model.Envelope{
		connEnvelope("e3", after, "20.50.2.1", "443"),     // learned
		connEnvelope("e4", after, "10.244.7.7", "5432"),   // another pod, same port: learned as private
		connEnvelope("e5", after, "203.0.113.80", "8443"), // new
	}
	hits, err = bl.Observe(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 || hits[0].Type != "NetworkAnomaly" || hits[0].EventID != "e5" || hits[0].Entity != "shop/web" {
		t.Fatalf("after learning: hits %+v, want one NetworkAnomaly for e5", hits)
	}
	again, err := bl.Observe(ctx, batch)
	if err != nil || len(again) != 1 || again[0].EventID != "e5" {
		t.Fatalf("redelivery: hits %+v, %v; want the same hit", again, err)
	}
	later, err := bl.Observe(ctx, []*model.Envelope{connEnvelope("e6", after.Add(time.Minute), "203.0.113.80", "8443")})
	if err != nil || len(later) != 0 {
		t.Errorf("second connection to a flagged destination: %d hits, %v; want none", len(later), err)
	}
}
