package storetest

import (
	"context"
	"sync/atomic"

	"github.com/palisade-sec/palisade/shared/store"
)

// Counting wraps a store.Store and counts the operations that reach it, for
// tests and benchmarks that hold a path to a number of store round trips.
// It is safe for concurrent use.
type Counting struct {
	store.Store
	gets, puts, queries, deletes, batches atomic.Int64
}

var (
	_ store.Store       = (*Counting)(nil)
	_ store.Batcher     = (*Counting)(nil)
	_ store.MultiGetter = (*Counting)(nil)
)

// NewCounting wraps s.
func NewCounting(s store.Store) *Counting { return &Counting{Store: s} }

// Ops counts store operations by kind. Gets counts read round trips: a
// GetMany the wrapped store does itself counts one. A batch written by the
// store's own Batcher counts once in Batches and each of its writes in
// Puts; a batch the wrapped store cannot write itself counts as one Put a
// write.
type Ops struct {
	Gets, Puts, Queries, Deletes, Batches int64
}

// Add is o plus p.
func (o Ops) Add(p Ops) Ops {
	return Ops{Gets: o.Gets + p.Gets, Puts: o.Puts + p.Puts, Queries: o.Queries + p.Queries, Deletes: o.Deletes + p.Deletes, Batches: o.Batches + p.Batches}
}

// Sub is o less p, the operations between two readings.
func (o Ops) Sub(p Ops) Ops {
	return Ops{Gets: o.Gets - p.Gets, Puts: o.Puts - p.Puts, Queries: o.Queries - p.Queries, Deletes: o.Deletes - p.Deletes, Batches: o.Batches - p.Batches}
}

// Ops returns the operations so far.
func (c *Counting) Ops() Ops {
	return Ops{Gets: c.gets.Load(), Puts: c.puts.Load(), Queries: c.queries.Load(), Deletes: c.deletes.Load(), Batches: c.batches.Load()}
}

// WriteBatch implements store.Batcher: the wrapped store's batch when it
// has one, else one Put a write (through c, so each is counted).
func (c *Counting) WriteBatch(ctx context.Context, stages ...[]store.Write) ([][]store.WriteResult, error) {
	b, ok := c.Store.(store.Batcher)
	if !ok {
		return store.PutEach(ctx, c, stages...)
	}
	c.batches.Add(1)
	for _, s := range stages {
		c.puts.Add(int64(len(s)))
	}
	return b.WriteBatch(ctx, stages...)
}

// GetMany implements store.MultiGetter: the wrapped store's when it has
// one, else one Get an item (through c, so each is counted).
func (c *Counting) GetMany(ctx context.Context, ct store.Container, keys []store.Key) ([]store.Item, error) {
	g, ok := c.Store.(store.MultiGetter)
	if !ok {
		return store.GetEach(ctx, c, ct, keys)
	}
	c.gets.Add(1)
	return g.GetMany(ctx, ct, keys)
}

// Put implements store.Store.
func (c *Counting) Put(ctx context.Context, ct store.Container, pk, id string, v any, cond store.Cond) (string, error) {
	c.puts.Add(1)
	return c.Store.Put(ctx, ct, pk, id, v, cond)
}

// Get implements store.Store.
func (c *Counting) Get(ctx context.Context, ct store.Container, pk, id string, v any) (string, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, ct, pk, id, v)
}

// Query implements store.Store.
func (c *Counting) Query(ctx context.Context, ct store.Container, q store.Query) (store.Page, error) {
	c.queries.Add(1)
	return c.Store.Query(ctx, ct, q)
}

// Delete implements store.Store.
func (c *Counting) Delete(ctx context.Context, ct store.Container, pk, id string) error {
	c.deletes.Add(1)
	return c.Store.Delete(ctx, ct, pk, id)
}
