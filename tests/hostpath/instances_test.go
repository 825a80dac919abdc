package hostpath

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/audit"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// counted is what an alert should hold: its count and status.
type counted struct {
	Count  int
	Status string
}

// expected folds every event of wl in one batch, with no store: each alert
// counts each of its events once.
func expected(t *testing.T, wl workload) map[string]counted {
	t.Helper()
	d, err := detection.NewDetector(detectionOptions)
	if err != nil {
		t.Fatal(err)
	}
	b := d.NewBatch()
	var c audit.Counts
	for _, body := range wl.bodies {
		req, err := customhandler.DecodeRequest(body)
		if err != nil {
			t.Fatal(err)
		}
		items, err := req.DataItems("events")
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if wl.function == "analyzeaudit" {
				if _, err := (audit.Analyzer{}).Analyze(b, it, &c); err != nil {
					t.Fatal(err)
				}
				continue
			}
			e, err := detection.DecodeEnvelope(it)
			if err != nil {
				t.Fatal(err)
			}
			b.AddEnvelope(&e)
		}
	}
	out := map[string]counted{}
	for _, a := range b.Alerts() {
		out[a.ID] = counted{a.Count, a.Status}
	}
	return out
}

func stored(t *testing.T, st store.Store) map[string]counted {
	t.Helper()
	out := map[string]counted{}
	if err := store.Each(context.Background(), st, store.Alerts, store.Query{}, func(a model.Alert) error {
		out[a.ID] = counted{a.Count, a.Status}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// deliver has srv process the batches of the partitions given, each
// partition in order on its own goroutine, as an instance of the function
// app processes the partitions it holds leases on.
func deliver(tb testing.TB, srv http.Handler, wl workload, partitions ...int) {
	tb.Helper()
	var wg sync.WaitGroup
	for _, p := range partitions {
		wg.Go(func() {
			for _, i := range wl.partitions[p] {
				invoke(tb, srv, wl.function, wl.bodies[i])
			}
		})
	}
	wg.Wait()
}

// TestTwoInstances runs two instances of the function app (each with its
// own in-memory alerts and baselines) over one store, as a scaled-out app
// does: the partitions split between them, then every batch delivered again
// to the other instance (leases moved, batches redelivered), then a fresh
// store with both instances processing the same batches at once. Every
// alert ends with each of its events counted once: none is lost to a
// concurrent update, none counted twice on redelivery.
func TestTwoInstances(t *testing.T) {
	for _, sk := range storeKinds(t) {
		t.Run(sk.name, func(t *testing.T) {
			for _, wl := range []workload{runtimeWorkload(t, 2_000, 20), auditWorkload(t, 2_000, 20)} {
				t.Run(wl.function, func(t *testing.T) {
					want := expected(t, wl)
					if len(want) < 10 {
						t.Fatalf("only %d alerts expected: the workload does not exercise sharing", len(want))
					}
					check := func(phase string, st store.Store) {
						t.Helper()
						if diff := cmp.Diff(want, stored(t, st)); diff != "" {
							t.Errorf("%s: alerts (-want +got):\n%s", phase, diff)
						}
					}
					o := sk.open(t)
					st := o.st
					one, two := newServer(t, st), newServer(t, o.another(t))
					var wg sync.WaitGroup
					wg.Go(func() { deliver(t, one, wl, 0, 1) })
					wg.Go(func() { deliver(t, two, wl, 2, 3) })
					wg.Wait()
					check("partitions split between the instances", st)

					wg.Go(func() { deliver(t, one, wl, 2, 3) })
					wg.Go(func() { deliver(t, two, wl, 0, 1) })
					wg.Wait()
					check("every batch redelivered to the other instance", st)

					o = sk.open(t)
					st = o.st
					one, two = newServer(t, st), newServer(t, o.another(t))
					wg.Go(func() { deliver(t, one, wl, 0, 1, 2, 3) })
					wg.Go(func() { deliver(t, two, wl, 0, 1, 2, 3) })
					wg.Wait()
					check("both instances processing the same window at once", st)
				})
			}
		})
	}
}
