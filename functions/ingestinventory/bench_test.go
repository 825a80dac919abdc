package ingestinventory

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/inventory/inventorytest"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/tests/cputime"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// BenchmarkIngestAndAssess5000Pods takes a 5,000-pod cluster's full
// snapshot through the function (all its parts in one batch, as the
// trigger delivers them, into the embedded store: snapshot, running
// images) and then assesses the stored snapshot as assessposture does
// (read it back, built-in checks). Each op is a new generation. cpu-ms/op
// is the CPU time of those two steps alone (getrusage, so other load on
// the machine does not count); encoding the snapshot, the agent's work, is
// left out of it.
func BenchmarkIngestAndAssess5000Pods(b *testing.B) {
	objs := inventorytest.Cluster()
	if len(objs.Pods) != 5000 {
		b.Fatalf("%d pods", len(objs.Pods))
	}
	st := testenv.Store(b)
	f := New(st, Options{Now: func() time.Time { return t0 }})
	eng := posture.NewEngine(posture.Options{TrustedRegistries: []string{"myacr.azurecr.io"}, VulnSeverity: model.SeverityHigh},
		nil, nil, nil, nil, func() time.Time { return t0 })
	var cpu time.Duration
	var parts, bytes, results int
	gen := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		gen++
		bld, err := inventory.NewBuilder(inventory.Envelope{Kind: inventory.KindSnapshot, Cluster: cluster, Agent: "bench",
			Time: t0.Add(time.Duration(gen) * time.Second), Generation: gen}, 0)
		if err != nil {
			b.Fatal(err)
		}
		objs.Each(func(kind string, _ metav1.Object, obj runtime.Object) {
			if err := bld.Add(kind, obj); err != nil {
				b.Fatal(err)
			}
		})
		msgs, err := bld.Finish()
		if err != nil {
			b.Fatal(err)
		}
		bodies := make([][]byte, len(msgs))
		parts, bytes = len(msgs), 0
		for i, m := range msgs {
			bodies[i] = m.Body
			bytes += len(m.Body)
		}

		c0 := cputime.Process(b)
		if sum := invoke(b, f, bodies...); len(sum.Completed) != 1 {
			b.Fatalf("generation %d not completed: %+v", gen, sum)
		}
		latest, err := f.snaps.Latest(b.Context(), cluster)
		if err != nil || latest.Head.Generation != gen {
			b.Fatalf("latest: %v", err)
		}
		rep, err := eng.Assess(b.Context(), &posture.Snapshot{Name: cluster, Objects: latest.Objects})
		if err != nil {
			b.Fatal(err)
		}
		cpu += cputime.Process(b) - c0
		results = len(rep.Results)
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(gen), "cpu-ms/op")
	b.ReportMetric(float64(parts), "parts")
	b.ReportMetric(float64(bytes), "snapshot-bytes")
	b.ReportMetric(float64(results), "results")
}
