// Package statecache keeps documents of the store in memory, per instance
// of a function, and writes each one that an invocation changes once, in
// one batch, conditionally on the ETag it was read with. It is for state
// that every invocation reads and updates: the alerts of the current window,
// network baselines, per-identity baselines.
//
// An invocation runs in a Tx:
//
//	err := statecache.Run(ctx, st, maxAttempts, func(tx *statecache.Tx) error {
//		_, err := statecache.Update(ctx, tx, alerts, cluster, id, func(cur model.Alert, ok bool) (model.Alert, bool) {
//			… return the changed copy, and whether it changed
//		})
//		return err
//	})
//
// Update gives the document as this instance last read or wrote it (one
// read from the store when it has none), and stages the changed copy. Commit
// writes every staged document in one store.WriteBatch, with If-Match on the
// ETag it was based on (If-None-Match for a new one). A write that finds
// the document changed by another instance, or a redelivered batch's
// earlier attempt, drops it from the cache; Run then runs the attempt again
// on a new Tx, which reads it afresh. So an update function must be a
// delta that can be applied again: applying it to a document that already
// holds it must change nothing (alerts count an event once by its id and
// Event Hubs position; baselines learn a destination once).
//
// Update functions must not modify the document they are given: it is
// shared with concurrent invocations of the same instance. They return a
// copy with their changes.
//
// Concurrent invocations of one instance (the Functions host runs one per
// Event Hubs partition at a time) commit through a Group: an invocation
// that finds another's commit under way queues its attempt, and the queued
// attempts run in turn on one Tx and go to the store in one batch. They
// then never conflict with each other, a document several of them touch is
// written once, and the embedded store pays for one file sync.
//
// Each Cache has a stage (Options.Stage); the writes of a Tx go to the store
// stage by stage (store.WriteBatch), and a stage is written only when every
// write of the stages before it was. State that decides what later writes
// say (a baseline whose learning raises an alert) goes in an earlier stage
// than what depends on it, so an attempt whose baseline conflicted writes no
// alert from a stale baseline.
package statecache

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/palisade-sec/palisade/shared/store"
)

// ErrConflict is returned by Commit when a staged document was changed by
// someone else since it was read (or was not written because an earlier
// stage conflicted): the attempt must be run again on a new Tx.
var ErrConflict = fmt.Errorf("statecache: %w", store.ErrPrecondition)

// Codec turns a stored item into the cached value and back.
type Codec[T any] struct {
	// Decode decodes a stored item (its JSON, as the store returns it).
	Decode func(raw []byte) (T, error)
	// Encode returns the item to store for v under pk and id.
	Encode func(pk, id string, v T) (any, error)
}

// JSON is the Codec of a type stored as itself.
func JSON[T any]() Codec[T] {
	return Codec[T]{
		Decode: func(raw []byte) (T, error) {
			var v T
			err := json.Unmarshal(raw, &v)
			return v, err
		},
		Encode: func(_, _ string, v T) (any, error) { return v, nil },
	}
}

// Options configure a Cache.
type Options struct {
	// MaxEntries bounds the documents kept; the least recently used go
	// first. Default 10,000.
	MaxEntries int
	// Stage is the store.WriteBatch stage of this cache's writes; stages
	// are written in increasing order.
	Stage int
}

// Cache holds one instance's copies of the documents of one container (or
// one kind of them). It is safe for concurrent use.
type Cache[T any] struct {
	container store.Container
	codec     Codec[T]
	max       int
	stage     int

	mu    sync.Mutex
	lru   *list.List // of *entry[T], most recent first
	items map[key]*list.Element
}

type key struct{ pk, id string }

// entry is a document as last read or written: never modified once cached.
type entry[T any] struct {
	key    key
	doc    T
	etag   string // "" when the document does not exist
	exists bool
}

// New returns an empty cache of documents of container c.
func New[T any](c store.Container, codec Codec[T], opts Options) *Cache[T] {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 10_000
	}
	return &Cache[T]{container: c, codec: codec, max: opts.MaxEntries, stage: opts.Stage, lru: list.New(), items: map[key]*list.Element{}}
}

// Len is the number of documents held.
func (c *Cache[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *Cache[T]) lookup(k key) (*entry[T], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*entry[T]), true
}

func (c *Cache[T]) put(e *entry[T]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[e.key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.items[e.key] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.items, old.Value.(*entry[T]).key)
	}
}

// Forget drops a document, so that it is read again on next use.
func (c *Cache[T]) Forget(pk, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key{pk, id}]; ok {
		c.lru.Remove(el)
		delete(c.items, el.Value.(*entry[T]).key)
	}
}

// load returns the cached document, reading it from the store (and caching
// it, present or not) when there is none.
func (c *Cache[T]) load(ctx context.Context, st store.Store, k key) (*entry[T], error) {
	if e, ok := c.lookup(k); ok {
		return e, nil
	}
	var raw json.RawMessage
	etag, err := st.Get(ctx, c.container, k.pk, k.id, &raw)
	e := &entry[T]{key: k}
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		doc, err := c.codec.Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("decode %s item %q: %w", c.container, k.id, err)
		}
		e.doc, e.etag, e.exists = doc, etag, true
	}
	c.put(e)
	return e, nil
}

// Prefetch reads the documents at keys that the cache does not hold, in one
// round trip where the store can (store.GetMany), so that the Updates that
// follow find them; documents that do not exist are remembered as such.
func Prefetch[T any](ctx context.Context, tx *Tx, c *Cache[T], keys []store.Key) error {
	var missing []store.Key
	seen := map[key]bool{}
	for _, k := range keys {
		kk := key{k.PK, k.ID}
		if seen[kk] {
			continue
		}
		seen[kk] = true
		if _, ok := tx.byKey[txKey[T]{c, kk}]; ok {
			continue
		}
		if _, ok := c.lookup(kk); !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	items, err := store.GetMany(ctx, tx.st, c.container, missing)
	if err != nil {
		return err
	}
	for i, it := range items {
		e := &entry[T]{key: key{missing[i].PK, missing[i].ID}}
		if it.Raw != nil {
			doc, err := c.codec.Decode(it.Raw)
			if err != nil {
				return fmt.Errorf("decode %s item %q: %w", c.container, e.key.id, err)
			}
			e.doc, e.etag, e.exists = doc, it.ETag, true
		}
		c.put(e)
	}
	return nil
}

// Tx is one attempt of one invocation: the documents it read and the
// changes it staged. Not safe for concurrent use.
type Tx struct {
	st      store.Store
	staged  []staged
	byKey   map[any]int // cache and key → index in staged
	extra   []extraWrite
	touched int
}

// staged is one document's change, typed by its cache.
type staged interface {
	stage() int
	changed() bool
	write() (store.Write, error)
	written(etag string) // the write succeeded
	forget()             // the write failed or its outcome is unknown
}

type extraWrite struct {
	stage int
	w     store.Write
}

// Begin starts an attempt over st.
func Begin(st store.Store) *Tx { return &Tx{st: st, byKey: map[any]int{}} }

// Write adds a write to the batch that is not a cached document (an
// upsert of a parked input, say), in the given stage.
func (tx *Tx) Write(stage int, w store.Write) { tx.extra = append(tx.extra, extraWrite{stage, w}) }

type txKey[T any] struct {
	c *Cache[T]
	k key
}

// change is a staged change of one document of Cache[T].
type change[T any] struct {
	c     *Cache[T]
	base  *entry[T]
	next  T
	dirty bool
}

func (ch *change[T]) stage() int    { return ch.c.stage }
func (ch *change[T]) changed() bool { return ch.dirty }

func (ch *change[T]) write() (store.Write, error) {
	item, err := ch.c.codec.Encode(ch.base.key.pk, ch.base.key.id, ch.next)
	if err != nil {
		return store.Write{}, fmt.Errorf("encode %s item %q: %w", ch.c.container, ch.base.key.id, err)
	}
	cond := store.Cond{IfMatch: ch.base.etag}
	if !ch.base.exists {
		cond = store.Cond{IfNoneMatch: true}
	}
	return store.Write{Container: ch.c.container, PK: ch.base.key.pk, ID: ch.base.key.id, Value: item, Cond: cond}, nil
}

func (ch *change[T]) written(etag string) {
	if etag == "" {
		// A store that did not say the new ETag: read it again next time
		// rather than write without a condition.
		ch.forget()
		return
	}
	ch.c.put(&entry[T]{key: ch.base.key, doc: ch.next, etag: etag, exists: true})
}

func (ch *change[T]) forget() { ch.c.Forget(ch.base.key.pk, ch.base.key.id) }

// Get returns the document at pk and id as this attempt sees it (with its
// staged changes), and whether it exists.
func Get[T any](ctx context.Context, tx *Tx, c *Cache[T], pk, id string) (T, bool, error) {
	k := key{pk, id}
	if i, ok := tx.byKey[txKey[T]{c, k}]; ok {
		ch := tx.staged[i].(*change[T])
		return ch.next, ch.base.exists || ch.dirty, nil
	}
	e, err := c.load(ctx, tx.st, k)
	if err != nil {
		return *new(T), false, err
	}
	return e.doc, e.exists, nil
}

// Update applies fn to the document at pk and id (the zero T and false
// when there is none) and stages what fn returns when it reports a change.
// Several Updates of one document in one Tx apply in turn. It returns the
// document as staged.
func Update[T any](ctx context.Context, tx *Tx, c *Cache[T], pk, id string, fn func(cur T, exists bool) (next T, changed bool)) (T, error) {
	k := key{pk, id}
	tk := txKey[T]{c, k}
	if i, ok := tx.byKey[tk]; ok {
		ch := tx.staged[i].(*change[T])
		if next, changed := fn(ch.next, ch.base.exists || ch.dirty); changed {
			ch.next, ch.dirty = next, true
		}
		return ch.next, nil
	}
	e, err := c.load(ctx, tx.st, k)
	if err != nil {
		return *new(T), err
	}
	ch := &change[T]{c: c, base: e, next: e.doc}
	if next, changed := fn(e.doc, e.exists); changed {
		ch.next, ch.dirty = next, true
	}
	tx.byKey[tk] = len(tx.staged)
	tx.staged = append(tx.staged, ch)
	return ch.next, nil
}

// Commit writes the staged documents and extra writes in one
// store.WriteBatch, stage by stage. It returns ErrConflict when a document
// had changed (or was not written because an earlier stage conflicted):
// run the attempt again on a new Tx. Other item errors (too large,
// invalid) and store failures are returned as they are; the documents
// concerned are dropped from the caches.
func (tx *Tx) Commit(ctx context.Context) error {
	type ref struct{ staged, extra int } // one of them is -1
	var order []int
	byStage := map[int][]ref{}
	for i, s := range tx.staged {
		if s.changed() {
			byStage[s.stage()] = append(byStage[s.stage()], ref{i, -1})
		}
	}
	for i, x := range tx.extra {
		byStage[x.stage] = append(byStage[x.stage], ref{-1, i})
	}
	for s := range byStage {
		order = append(order, s)
	}
	slices.Sort(order)
	stages := make([][]store.Write, len(order))
	refs := make([][]ref, len(order))
	for i, s := range order {
		refs[i] = byStage[s]
		for _, r := range refs[i] {
			if r.extra >= 0 {
				stages[i] = append(stages[i], tx.extra[r.extra].w)
				continue
			}
			w, err := tx.staged[r.staged].write()
			if err != nil {
				return err
			}
			stages[i] = append(stages[i], w)
		}
	}
	tx.touched = 0
	for _, s := range stages {
		tx.touched += len(s)
	}
	if tx.touched == 0 {
		return nil
	}
	results, err := store.WriteBatch(ctx, tx.st, stages...)
	if err != nil {
		for _, s := range tx.staged {
			if s.changed() {
				s.forget()
			}
		}
		return err
	}
	conflict := false
	for i := range refs {
		for j, r := range refs[i] {
			res := results[i][j]
			if r.extra >= 0 {
				conflict = conflict || errors.Is(res.Err, store.ErrNotAttempted) || errors.Is(res.Err, store.ErrPrecondition)
				continue
			}
			s := tx.staged[r.staged]
			switch {
			case res.Err == nil:
				s.written(res.ETag)
			case errors.Is(res.Err, store.ErrNotAttempted):
				conflict = true
			default:
				s.forget()
				conflict = conflict || errors.Is(res.Err, store.ErrPrecondition)
			}
		}
	}
	if err := store.FirstError(results); err != nil {
		return err
	}
	if conflict {
		return ErrConflict
	}
	return nil
}

// Writes is the number of items the last Commit wrote or tried to write.
func (tx *Tx) Writes() int { return tx.touched }

// Run runs attempt on a new Tx and commits it, again while the commit
// meets a conflict, at most maxAttempts times.
func Run(ctx context.Context, st store.Store, maxAttempts int, attempt func(tx *Tx) error) error {
	for range maxAttempts {
		tx := Begin(st)
		if err := attempt(tx); err != nil {
			return err
		}
		if err := tx.Commit(ctx); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("%d conflicting updates in a row: %w", maxAttempts, ErrConflict)
}

// Group commits the attempts of concurrent callers together (see the
// package doc). It is safe for concurrent use.
type Group struct {
	st store.Store

	mu    sync.Mutex
	queue []*call
	busy  bool // a caller is committing
}

// call is one caller's attempt, waiting in a Group.
type call struct {
	attempt func(tx *Tx) error
	ready   chan struct{} // closed when err is set or the call is to lead
	lead    bool
	err     error
}

// NewGroup returns a Group writing to st.
func NewGroup(st store.Store) *Group { return &Group{st: st} }

// Run is Run for one caller of g. When no commit is under way, the caller
// commits its attempt with those queued meanwhile; otherwise it waits for a
// caller that is committing to take it. A group whose commit fails for
// another reason than a conflict is run again one attempt at a time, so
// that one caller's invalid document or failure is its own. The attempts
// of a group run on the Tx in turn, each seeing what those before staged.
// The store is written under the context of the caller that commits.
func (g *Group) Run(ctx context.Context, maxAttempts int, attempt func(tx *Tx) error) error {
	c := &call{attempt: attempt, ready: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if !lead {
		<-c.ready
		if !c.lead {
			return c.err
		}
	}
	g.mu.Lock()
	calls := g.queue
	g.queue = nil
	g.mu.Unlock()
	committed := false
	defer func() {
		if !committed { // an attempt panicked: the others fail, and are redelivered
			for _, other := range calls {
				other.err = errAbandoned
			}
		}
		g.handOver(c, calls)
	}()
	g.commit(ctx, maxAttempts, calls)
	committed = true
	return c.err
}

// errAbandoned is the error of the callers whose group's commit panicked.
var errAbandoned = errors.New("statecache: the commit of concurrent writes was abandoned")

// handOver makes the first caller that queued during c's commit the next
// to commit, or leaves g idle, and releases the callers of c's group.
func (g *Group) handOver(c *call, calls []*call) {
	g.mu.Lock()
	if len(g.queue) > 0 {
		next := g.queue[0]
		next.lead = true
		close(next.ready)
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	for _, other := range calls {
		if other != c {
			close(other.ready)
		}
	}
}

// commit runs calls on one Tx, or one by one when that fails.
func (g *Group) commit(ctx context.Context, maxAttempts int, calls []*call) {
	if len(calls) > 1 {
		err := Run(ctx, g.st, maxAttempts, func(tx *Tx) error {
			for _, c := range calls {
				if err := c.attempt(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			return
		}
	}
	for _, c := range calls {
		c.err = Run(ctx, g.st, maxAttempts, c.attempt)
	}
}
