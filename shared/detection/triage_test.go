package detection

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/storetest"
	"github.com/palisade-sec/palisade/tests/faultstore"
	"github.com/palisade-sec/palisade/tests/testenv"
)

func TestTransition(t *testing.T) {
	const (
		n, a, r, d, p = model.AlertNew, model.AlertActive, model.AlertResolved, model.AlertDismissed, model.AlertPending
	)
	allowed := map[[2]string]bool{
		{n, a}: true, {n, r}: true, {n, d}: true, {n, n}: true,
		{a, r}: true, {a, d}: true, {a, a}: true,
		{r, a}: true, {r, r}: true,
		{d, a}: true, {d, d}: true,
	}
	for _, from := range []string{n, a, r, d, p} {
		for _, to := range []string{n, a, r, d, p} {
			err := Transition(from, to)
			if got := err == nil; got != allowed[[2]string{from, to}] {
				t.Errorf("Transition(%s, %s) = %v", from, to, err)
			}
			if err != nil && !errors.Is(err, ErrTransition) {
				t.Errorf("Transition(%s, %s): %v is not ErrTransition", from, to, err)
			}
		}
	}
}

func TestTriageRequestCheck(t *testing.T) {
	ok := TriageRequest{ID: "0123456789abcdef0123456789abcdef", Status: model.AlertDismissed, By: "ana", Comment: "test cluster\nknown"}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*TriageRequest){
		"no id":          func(r *TriageRequest) { r.ID = "" },
		"id with slash":  func(r *TriageRequest) { r.ID = "a/b" },
		"status new":     func(r *TriageRequest) { r.Status = model.AlertNew },
		"status pending": func(r *TriageRequest) { r.Status = model.AlertPending },
		"unknown status": func(r *TriageRequest) { r.Status = "closed" },
		"nobody":         func(r *TriageRequest) { r.By = "  " },
		"long name":      func(r *TriageRequest) { r.By = strings.Repeat("a", MaxTriageBy+1) },
		"long comment":   func(r *TriageRequest) { r.Comment = strings.Repeat("a", MaxTriageComment+1) },
		"control":        func(r *TriageRequest) { r.Comment = "a\x1b[31mb" },
		"newline in by":  func(r *TriageRequest) { r.By = "a\nb" },
		"bad utf-8":      func(r *TriageRequest) { r.By = "\xff" },
	} {
		r := ok
		mod(&r)
		if err := r.Check(); !errors.Is(err, ErrTriageInvalid) {
			t.Errorf("%s: err = %v, want ErrTriageInvalid", name, err)
		}
	}
}

// published records what a Pipeline sends downstream.
type published struct {
	mu     sync.Mutex
	alerts []model.Alert
}

func (p *published) Publish(_ context.Context, alerts []model.Alert) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.alerts = append(p.alerts, alerts...)
	return nil
}

func (p *published) take() []model.Alert {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.alerts
	p.alerts = nil
	return out
}

// TestTriage: a person's status sticks on detection's own path, one
// instance keeping the alert in its cache (statecache) while the triage
// writes to the store: the batch redelivered is not sent downstream as
// open, new events of the same detection within the window are counted
// and keep the alert dismissed (the cached copy's ETag meets the triage's
// write and is read again), a repeated request changes nothing, and the
// next window raises a new alert.
func TestTriage(t *testing.T) {
	ctx := t.Context()
	st := storetest.NewCounting(testenv.Store(t))
	d := newTestDetector(t)
	pub := &published{}
	pipe := NewPipeline(st, pub, d, PipelineOptions{Now: fixedNow})
	saved, n, err := pipe.Commit(ctx, batchOf(t, d, "netcat_rce").Folds())
	if err != nil || n != 1 {
		t.Fatalf("published %d, err %v", n, err)
	}
	a := saved[0]
	if a.Status != model.AlertNew || pub.take()[0].Status != model.AlertNew {
		t.Fatalf("raised alert is %s, want new", a.Status)
	}
	old := NewPipeline(st, pub, d, PipelineOptions{Now: fixedNow})
	if _, n, err := old.Commit(ctx, batchOf(t, d, "netcat_rce").Folds()); err != nil || n != 1 || len(pub.take()) != 1 {
		t.Fatalf("another instance, redelivered before the triage: published %d, err %v", n, err)
	}
	at := fixedNow().Add(5 * time.Minute)

	got, changed, err := Triage(ctx, st, TriageRequest{ID: a.ID, Status: model.AlertActive, By: "ana", Comment: "looking"}, at)
	if err != nil || !changed || got.Status != model.AlertActive || len(got.Triage) != 1 || got.Triage[0].By != "ana" || !got.Triage[0].At.Equal(at) {
		t.Fatalf("take on (by id alone): %+v changed %v err %v", got.Triage, changed, err)
	}
	req := TriageRequest{Cluster: a.Cluster, ID: a.ID, Status: model.AlertDismissed, By: "ana", Comment: "pen test"}
	if _, changed, err = Triage(ctx, st, req, at); err != nil || !changed {
		t.Fatalf("dismiss: changed %v err %v", changed, err)
	}
	if _, changed, err = Triage(ctx, st, req, at.Add(time.Minute)); err != nil || changed {
		t.Errorf("the same request again: changed %v err %v", changed, err)
	}
	if _, changed, err = Triage(ctx, st, TriageRequest{ID: a.ID, Status: model.AlertDismissed, By: "bo"}, at); err != nil || changed {
		t.Errorf("keeping the status with no comment: changed %v err %v", changed, err)
	}
	if _, _, err = Triage(ctx, st, TriageRequest{ID: a.ID, Status: model.AlertResolved, By: "bo"}, at); !errors.Is(err, ErrTransition) {
		t.Errorf("dismissed to resolved: err %v, want ErrTransition", err)
	}

	// The batch again: this instance's copy still says new, but nothing is
	// written and nothing sent as open.
	before := st.Ops()
	again, n, err := pipe.Commit(ctx, batchOf(t, d, "netcat_rce").Folds())
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Status != model.AlertDismissed || n != 0 || len(pub.take()) != 0 {
		t.Errorf("redelivered: %s, %d published, want dismissed and none", again[0].Status, n)
	}
	if ops := st.Ops(); ops.Puts != before.Puts {
		t.Errorf("the redelivery wrote %d items", ops.Puts-before.Puts)
	}

	// A new event of the same detection in the window, on the instance
	// that read the alert again, and on one whose copy is from before the
	// triage: its write, conditional on that copy's ETag, meets the
	// triage's and is merged again into the stored alert.
	e := loadFalco(t, "netcat_rce")
	for i, p := range []*Pipeline{pipe, old} {
		e.ID, e.Time = fmt.Sprintf("repeat-%d", i), e.Time.Add(10*time.Minute)
		b := d.NewBatch()
		b.AddEnvelope(&e)
		saved, n, err := p.Commit(ctx, b.Folds())
		if err != nil {
			t.Fatal(err)
		}
		if saved[0].Status != model.AlertDismissed || n != 0 || len(pub.take()) != 0 {
			t.Errorf("repeat %d: %s, %d published, want dismissed and none", i, saved[0].Status, n)
		}
	}
	stored, err := GetAlert(ctx, st, "", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != model.AlertDismissed || stored.Count != a.Count+2 || len(stored.Triage) != 2 {
		t.Errorf("after the repeats: status %s count %d triage %d, want dismissed %d 2", stored.Status, stored.Count, len(stored.Triage), a.Count+2)
	}

	// The next window is a new alert, raised as new.
	e.ID, e.Time = "next-window", e.Time.Add(time.Hour)
	b := d.NewBatch()
	b.AddEnvelope(&e)
	next, _, err := pipe.Commit(ctx, b.Folds())
	if err != nil {
		t.Fatal(err)
	}
	if next[0].ID == a.ID || next[0].Status != model.AlertNew || len(pub.take()) != 1 {
		t.Errorf("next window: %s %s", next[0].ID, next[0].Status)
	}

	if _, _, err := Triage(ctx, st, TriageRequest{ID: "0123456789abcdef0123456789abcdef", Status: model.AlertActive, By: "ana"}, at); !errors.Is(err, ErrAlertNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if _, _, err := Triage(ctx, st, TriageRequest{Cluster: "other", ID: a.ID, Status: model.AlertActive, By: "ana"}, at); !errors.Is(err, ErrAlertNotFound) {
		t.Errorf("wrong cluster: %v", err)
	}
}

// TestTriagePending: a burst alert below its threshold is not raised and
// cannot be triaged.
func TestTriagePending(t *testing.T) {
	st := faultstore.Open(t)
	d := newTestDetector(t)
	b := d.NewBatch()
	b.Add(Hit{Type: "ReconnaissanceBurst", Cluster: "aks", Entity: "ns/web", EventID: "e1", Time: fixedNow().UnixNano()})
	saved, err := NewSink(st, d, SinkOptions{Now: fixedNow}).Save(t.Context(), b.Folds())
	if err != nil {
		t.Fatal(err)
	}
	if saved[0].Status != model.AlertPending {
		t.Fatalf("status %s, want pending", saved[0].Status)
	}
	if _, _, err := Triage(t.Context(), st, TriageRequest{ID: saved[0].ID, Status: model.AlertDismissed, By: "ana"}, fixedNow()); !errors.Is(err, ErrTransition) {
		t.Errorf("triage of a pending alert: %v", err)
	}
	for f, want := range map[*AlertFilter]int{{}: 0, {IncludePending: true}: 1, {Status: model.AlertPending}: 1} {
		n := 0
		if err := EachAlert(t.Context(), st, *f, func(model.Alert) error { n++; return nil }); err != nil || n != want {
			t.Errorf("EachAlert(%+v): %d alerts (%v), want %d", *f, n, err, want)
		}
	}
}

// racingStore updates an alert behind the back of the first conditional
// write to it, as a detectruntime instance merging new events would.
type racingStore struct {
	*faultstore.Store
	raced atomic.Bool
}

func (s *racingStore) Put(ctx context.Context, c store.Container, pk, id string, v any, cond store.Cond) (string, error) {
	if c == store.Alerts && cond.IfMatch != "" && s.raced.CompareAndSwap(false, true) {
		var a model.Alert
		if _, err := s.Store.Get(ctx, c, pk, id, &a); err != nil {
			return "", err
		}
		a.Count += 5
		if _, err := s.Store.Put(ctx, c, pk, id, a, store.Cond{}); err != nil {
			return "", err
		}
	}
	return s.Store.Put(ctx, c, pk, id, v, cond)
}

// TestTriageConcurrentUpdate: a triage racing detection keeps both the
// detection's count and the person's status.
func TestTriageConcurrentUpdate(t *testing.T) {
	st := &racingStore{Store: faultstore.Open(t)}
	d := newTestDetector(t)
	saved, err := NewSink(st.Store, d, SinkOptions{Now: fixedNow}).Save(t.Context(), batchOf(t, d, "netcat_rce").Folds())
	if err != nil {
		t.Fatal(err)
	}
	got, changed, err := Triage(t.Context(), st, TriageRequest{ID: saved[0].ID, Status: model.AlertResolved, By: "ana"}, fixedNow())
	if err != nil || !changed || !st.raced.Load() {
		t.Fatalf("changed %v raced %v err %v", changed, st.raced.Load(), err)
	}
	stored, err := GetAlert(t.Context(), st, saved[0].Cluster, saved[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != model.AlertResolved || stored.Count != saved[0].Count+5 || got.Count != stored.Count {
		t.Errorf("stored %s count %d (returned %d), want resolved %d", stored.Status, stored.Count, got.Count, saved[0].Count+5)
	}
}
