package statecache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/statecache"
	"github.com/palisade-sec/palisade/shared/store/storetest"
	"github.com/palisade-sec/palisade/tests/faultstore"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// tally is a document that counts the events it has seen, once each.
type tally struct {
	ID     string   `json:"id"`
	Kind   string   `json:"kind"`
	Events []string `json:"events"`
}

// add is a delta that can be applied twice: an event already counted
// changes nothing.
func add(id string, events ...string) func(cur tally, ok bool) (tally, bool) {
	return func(cur tally, ok bool) (tally, bool) {
		if !ok {
			cur = tally{ID: id, Kind: "tally"}
		}
		next, changed := cur, false
		next.Events = slices.Clone(cur.Events)
		for _, e := range events {
			if !slices.Contains(next.Events, e) {
				next.Events, changed = append(next.Events, e), true
			}
		}
		return next, changed
	}
}

func newCache(opts statecache.Options) *statecache.Cache[tally] {
	return statecache.New(store.State, statecache.JSON[tally](), opts)
}

func stored(t *testing.T, st store.Store, id string) tally {
	t.Helper()
	var v tally
	if _, err := st.Get(t.Context(), store.State, "tally", id, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOneReadThenCached: a document is read once, then served from the
// cache; each attempt writes it once, in one batch.
func TestOneReadThenCached(t *testing.T) {
	ctx := t.Context()
	st := storetest.NewCounting(testenv.Store(t))
	c := newCache(statecache.Options{})
	for i, events := range [][]string{{"e1", "e2"}, {"e3"}, {"e3"}} {
		err := statecache.Run(ctx, st, 3, func(tx *statecache.Tx) error {
			for _, id := range []string{"a", "b"} {
				if _, err := statecache.Update(ctx, tx, c, "tally", id, add(id, events...)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	ops := st.Ops()
	// Two reads (a and b, missing), two batches of two writes; the third
	// run changed nothing and wrote nothing.
	if ops.Gets != 2 || ops.Batches != 2 || ops.Puts != 4 {
		t.Errorf("store operations %+v, want 2 reads and 2 batches of 2 writes", ops)
	}
	if got := stored(t, st, "a").Events; !slices.Equal(got, []string{"e1", "e2", "e3"}) {
		t.Errorf("stored events %v", got)
	}
	if c.Len() != 2 {
		t.Errorf("cache holds %d documents, want 2", c.Len())
	}
}

// TestTwoInstances: two caches over one store (two instances of the
// function) update the same document; the one whose copy is stale meets
// the conflict, reads again and applies its delta to the other's result.
func TestTwoInstances(t *testing.T) {
	ctx := t.Context()
	st := storetest.NewCounting(testenv.Store(t))
	one, two := newCache(statecache.Options{}), newCache(statecache.Options{})
	update := func(c *statecache.Cache[tally], events ...string) {
		t.Helper()
		err := statecache.Run(ctx, st, 3, func(tx *statecache.Tx) error {
			_, err := statecache.Update(ctx, tx, c, "tally", "x", add("x", events...))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	update(one, "e1")
	update(two, "e2") // reads e1, writes e1 e2
	before := st.Ops()
	update(one, "e3") // its copy holds e1 only: conflict, read, write
	ops := st.Ops().Sub(before)
	if ops.Gets != 1 || ops.Batches != 2 {
		t.Errorf("stale copy: %+v, want one read and two batches (the conflict and the retry)", ops)
	}
	if got := stored(t, st, "x").Events; !slices.Equal(got, []string{"e1", "e2", "e3"}) {
		t.Errorf("stored events %v, want every instance's", got)
	}
}

// TestConcurrent: many invocations of two instances at once lose no event.
func TestConcurrent(t *testing.T) {
	ctx := t.Context()
	st := testenv.Store(t)
	caches := []*statecache.Cache[tally]{newCache(statecache.Options{}), newCache(statecache.Options{})}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			errs <- statecache.Run(ctx, st, 100, func(tx *statecache.Tx) error {
				_, err := statecache.Update(ctx, tx, caches[i%2], "tally", "x", add("x", fmt.Sprint("e", i)))
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := stored(t, st, "x").Events; len(got) != 40 {
		t.Errorf("%d events stored, want 40", len(got))
	}
}

// TestStages: when a document of an earlier stage conflicts, nothing of a
// later stage is written in that attempt.
func TestStages(t *testing.T) {
	ctx := t.Context()
	st := testenv.Store(t)
	first, second := newCache(statecache.Options{Stage: 0}), newCache(statecache.Options{Stage: 1})
	other := newCache(statecache.Options{})
	run := func(c *statecache.Cache[tally], id string, events ...string) {
		t.Helper()
		if err := statecache.Run(ctx, st, 1, func(tx *statecache.Tx) error {
			_, err := statecache.Update(ctx, tx, c, "tally", id, add(id, events...))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	run(first, "base", "e1")
	run(other, "base", "e2") // first's copy is now stale
	tx := statecache.Begin(st)
	if _, err := statecache.Update(ctx, tx, first, "tally", "base", add("base", "e3")); err != nil {
		t.Fatal(err)
	}
	if _, err := statecache.Update(ctx, tx, second, "tally", "derived", add("derived", "e3")); err != nil {
		t.Fatal(err)
	}
	tx.Write(0, store.Write{Container: store.State, PK: "tally", ID: "extra", Value: tally{ID: "extra", Kind: "tally"}})
	if err := tx.Commit(ctx); !errors.Is(err, statecache.ErrConflict) {
		t.Fatalf("Commit = %v, want ErrConflict", err)
	}
	var v tally
	if _, err := st.Get(ctx, store.State, "tally", "derived", &v); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the later stage was written after the earlier one conflicted: %v %+v", err, v)
	}
	if got := stored(t, st, "extra"); got.ID != "extra" {
		t.Errorf("extra write of the first stage: %+v", got)
	}
	// Run again: the conflicted document is read afresh, both are written.
	run(first, "base", "e3")
	run(second, "derived", "e3")
	if got := stored(t, st, "base").Events; !slices.Equal(got, []string{"e1", "e2", "e3"}) {
		t.Errorf("base events %v", got)
	}
}

// TestEviction: the cache holds at most MaxEntries documents.
func TestEviction(t *testing.T) {
	ctx := t.Context()
	st := storetest.NewCounting(testenv.Store(t))
	c := newCache(statecache.Options{MaxEntries: 2})
	for _, id := range []string{"a", "b", "c", "a"} {
		if err := statecache.Run(ctx, st, 1, func(tx *statecache.Tx) error {
			_, err := statecache.Update(ctx, tx, c, "tally", id, add(id, "e"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 2 || st.Ops().Gets != 4 {
		t.Errorf("cache %d, reads %d; want 2 entries and a read again of the evicted a", c.Len(), st.Ops().Gets)
	}
}

// TestStoreFailure: a failed batch drops what it tried to write, so the
// next attempt reads it again; an invalid item is reported.
func TestStoreFailure(t *testing.T) {
	ctx := t.Context()
	st := faultstore.Open(t)
	c := newCache(statecache.Options{})
	run := func(events ...string) error {
		return statecache.Run(ctx, st, 2, func(tx *statecache.Tx) error {
			_, err := statecache.Update(ctx, tx, c, "tally", "x", add("x", events...))
			return err
		})
	}
	if err := run("e1"); err != nil {
		t.Fatal(err)
	}
	st.SetFail(func(op string, _ store.Container) error {
		if op == "put" {
			return errors.New("connection reset")
		}
		return nil
	})
	if err := run("e2"); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("run with the store down: %v", err)
	}
	if c.Len() != 0 {
		t.Errorf("the document whose write failed is still cached")
	}
	st.SetFail(nil)
	if err := run("e2"); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, st, "x").Events; !slices.Equal(got, []string{"e1", "e2"}) {
		t.Errorf("events %v", got)
	}
	// A document whose body names another id cannot be written.
	tx := statecache.Begin(st)
	if _, err := statecache.Update(ctx, tx, c, "tally", "y", add("other", "e")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Commit of an invalid document = %v, want ErrInvalid", err)
	}
}

// TestPrefetch: the documents a batch will touch are read in one round
// trip, present or not, and not read again by Update.
func TestPrefetch(t *testing.T) {
	ctx := t.Context()
	st := storetest.NewCounting(testenv.Store(t))
	c := newCache(statecache.Options{})
	if err := statecache.Run(ctx, st, 1, func(tx *statecache.Tx) error {
		_, err := statecache.Update(ctx, tx, c, "tally", "a", add("a", "e1"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c.Forget("tally", "a")
	before := st.Ops()
	keys := []store.Key{{PK: "tally", ID: "a"}, {PK: "tally", ID: "b"}, {PK: "tally", ID: "a"}}
	if err := statecache.Run(ctx, st, 1, func(tx *statecache.Tx) error {
		if err := statecache.Prefetch(ctx, tx, c, keys); err != nil {
			return err
		}
		for _, id := range []string{"a", "b"} {
			if _, err := statecache.Update(ctx, tx, c, "tally", id, add(id, "e2")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if ops := st.Ops().Sub(before); ops.Gets != 1 || ops.Batches != 1 {
		t.Errorf("store operations %+v, want one read round trip and one batch", ops)
	}
	if got := stored(t, st, "a").Events; !slices.Equal(got, []string{"e1", "e2"}) {
		t.Errorf("prefetched document lost its stored events: %v", got)
	}
}

// TestGet: Get sees the document as the attempt has staged it.
func TestGet(t *testing.T) {
	ctx := t.Context()
	st := testenv.Store(t)
	c := newCache(statecache.Options{})
	tx := statecache.Begin(st)
	if _, ok, err := statecache.Get(ctx, tx, c, "tally", "x"); ok || err != nil {
		t.Fatalf("missing document: ok %v, %v", ok, err)
	}
	if _, err := statecache.Update(ctx, tx, c, "tally", "x", add("x", "e1")); err != nil {
		t.Fatal(err)
	}
	got, ok, err := statecache.Get(ctx, tx, c, "tally", "x")
	if !ok || err != nil || !slices.Equal(got.Events, []string{"e1"}) {
		t.Errorf("staged document: %+v %v %v", got, ok, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := statecache.Get(ctx, statecache.Begin(st), c, "tally", "x"); !ok || err != nil || !slices.Equal(got.Events, []string{"e1"}) {
		t.Errorf("committed document: %+v %v %v", got, ok, err)
	}
}

// heldStore holds each batch until the test releases it, so that callers
// can be made to arrive while a commit is under way.
type heldStore struct {
	*storetest.Counting
	entered chan struct{}
	release chan struct{}
}

func (h *heldStore) WriteBatch(ctx context.Context, stages ...[]store.Write) ([][]store.WriteResult, error) {
	h.entered <- struct{}{}
	<-h.release
	return h.Counting.WriteBatch(ctx, stages...)
}

// waitQueued waits until n callers wait in g.
func waitQueued(t *testing.T, g *statecache.Group, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for statecache.Queued(g) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d callers queued, want %d", statecache.Queued(g), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroup: callers that arrive while a commit is under way are committed
// together, in one batch that writes a document they share once, and each
// gets its own result.
func TestGroup(t *testing.T) {
	ctx := t.Context()
	st := &heldStore{Counting: storetest.NewCounting(testenv.Store(t)), entered: make(chan struct{}, 10), release: make(chan struct{}, 10)}
	g := statecache.NewGroup(st)
	c := newCache(statecache.Options{})
	errs := make(chan error, 5)
	run := func(event string) {
		errs <- g.Run(ctx, 3, func(tx *statecache.Tx) error {
			_, err := statecache.Update(ctx, tx, c, "tally", "x", add("x", event))
			return err
		})
	}
	go run("e0")
	<-st.entered // e0 commits alone…
	for i := 1; i <= 4; i++ {
		go run(fmt.Sprint("e", i))
	}
	waitQueued(t, g, 4) // …while the others wait
	st.release <- struct{}{}
	<-st.entered
	st.release <- struct{}{}
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := stored(t, st, "x").Events; len(got) != 5 {
		t.Errorf("events %v, want e0 to e4", got)
	}
	if ops := st.Ops(); ops.Batches != 2 || ops.Puts != 2 {
		t.Errorf("store operations %+v, want 2 batches of one write", ops)
	}
}

// TestGroupFailureIsOwn: a group whose commit fails is run again one caller
// at a time: only the caller with the invalid document gets the error.
func TestGroupFailureIsOwn(t *testing.T) {
	ctx := t.Context()
	st := &heldStore{Counting: storetest.NewCounting(testenv.Store(t)), entered: make(chan struct{}, 10), release: make(chan struct{})}
	g := statecache.NewGroup(st)
	c := newCache(statecache.Options{})
	errs := make(map[string]chan error)
	run := func(id, body string) {
		done := make(chan error, 1)
		errs[id] = done
		go func() {
			done <- g.Run(ctx, 3, func(tx *statecache.Tx) error {
				_, err := statecache.Update(ctx, tx, c, "tally", id, add(body, "e"))
				return err
			})
		}()
	}
	run("first", "first")
	<-st.entered
	run("good", "good")
	run("bad", "other") // its body names another id
	run("also-good", "also-good")
	waitQueued(t, g, 3)
	close(st.release)
	for id, want := range map[string]error{"first": nil, "good": nil, "bad": store.ErrInvalid, "also-good": nil} {
		if err := <-errs[id]; !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", id, err, want)
		}
	}
	for _, id := range []string{"first", "good", "also-good"} {
		if got := stored(t, st, id).Events; !slices.Equal(got, []string{"e"}) {
			t.Errorf("%s: events %v", id, got)
		}
	}
}

// TestGroupPanic: an attempt that panics fails the callers committed with
// it rather than leaving them waiting, and the group goes on.
func TestGroupPanic(t *testing.T) {
	ctx := t.Context()
	st := &heldStore{Counting: storetest.NewCounting(testenv.Store(t)), entered: make(chan struct{}, 10), release: make(chan struct{})}
	g := statecache.NewGroup(st)
	c := newCache(statecache.Options{})
	update := func(id string) func(tx *statecache.Tx) error {
		return func(tx *statecache.Tx) error {
			_, err := statecache.Update(ctx, tx, c, "tally", id, add(id, "e"))
			return err
		}
	}
	first := make(chan error, 1)
	go func() { first <- g.Run(ctx, 3, update("a")) }()
	<-st.entered
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_ = g.Run(ctx, 3, func(*statecache.Tx) error { panic("attempt failed") })
	}()
	waitQueued(t, g, 1)
	other := make(chan error, 1)
	go func() { other <- g.Run(ctx, 3, update("b")) }()
	waitQueued(t, g, 2)
	close(st.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if p := <-panicked; p == nil {
		t.Error("the attempt's panic did not reach its caller")
	}
	if err := <-other; err == nil {
		t.Error("a caller committed with a panicking attempt got no error")
	}
	if err := g.Run(ctx, 3, update("c")); err != nil {
		t.Fatalf("the group after a panic: %v", err)
	}
	if got := stored(t, st, "c").Events; !slices.Equal(got, []string{"e"}) {
		t.Errorf("c: events %v", got)
	}
}
