// Package faultstore opens a real embedded store for a test and wraps it
// with failure injection, so that tests of retries and parking run against
// the real store.
package faultstore

import (
	"context"
	"sync"
	"testing"

	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// Store is a store.Store whose operations can be made to fail.
type Store struct {
	store.Store
	mu   sync.Mutex
	fail func(op string, c store.Container) error
}

var _ store.Store = (*Store)(nil)

// Open opens an embedded store in t's temporary directory, closed when the
// test ends.
func Open(t testing.TB) *Store {
	t.Helper()
	return &Store{Store: testenv.Store(t)}
}

// SetFail makes every operation call fn first; a non-nil error is returned
// instead of performing the operation. nil clears it.
func (s *Store) SetFail(fn func(op string, c store.Container) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fn
}

func (s *Store) check(op string, c store.Container) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail(op, c)
	}
	return nil
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, c store.Container, pk, id string, v any, cond store.Cond) (string, error) {
	if err := s.check("put", c); err != nil {
		return "", err
	}
	return s.Store.Put(ctx, c, pk, id, v, cond)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, c store.Container, pk, id string, v any) (string, error) {
	if err := s.check("get", c); err != nil {
		return "", err
	}
	return s.Store.Get(ctx, c, pk, id, v)
}

// Query implements store.Store.
func (s *Store) Query(ctx context.Context, c store.Container, q store.Query) (store.Page, error) {
	if err := s.check("query", c); err != nil {
		return store.Page{}, err
	}
	return s.Store.Query(ctx, c, q)
}

// Len counts the items of container c.
func (s *Store) Len(t testing.TB, c store.Container) int {
	t.Helper()
	n := 0
	err := store.Each(context.Background(), s.Store, c, store.Query{}, func(map[string]any) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}
