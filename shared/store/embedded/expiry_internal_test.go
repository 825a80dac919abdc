package embedded

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/palisade-sec/palisade/shared/store"
)

// indexKeys lists the expiry index.
func indexKeys(t *testing.T, s *Store) []string {
	t.Helper()
	var keys []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(expiryBucket).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestExpirySlots: an item rewritten within its expiry's slot keeps its one
// index entry; one whose entry is older than slots (its exact expiry) is
// indexed again under its slot when the sweep meets the entry, and swept
// when it expires.
func TestExpirySlots(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := OpenWith(filepath.Join(t.TempDir(), "palisade.db"), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(id string) {
		t.Helper()
		if _, err := s.Put(ctx, store.State, "k", id, map[string]any{"id": id, "kind": "k", "ttl": 90}, store.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	put("a")
	before := indexKeys(t, s)
	for range 5 {
		now = now.Add(time.Second)
		put("a")
	}
	if after := indexKeys(t, s); len(after) != 1 || after[0] != before[0] {
		t.Errorf("index after rewrites in one slot: %q, want %q", after, before)
	}

	// b has an entry as the store wrote them before slots, at its exact
	// expiry (00:01:40), and is rewritten within that slot (00:01:50): its
	// only entry is the old one.
	now = time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	put("b")
	k, _ := key(store.State, "k", "b")
	exact := now.Add(90 * time.Second).UnixNano()
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := reindex(tx, store.State, k, exact, 0); err != nil {
			return err
		}
		old := binary.BigEndian.AppendUint64(nil, uint64(exact))
		old = append(append(append(old, store.State...), 0), k...)
		return tx.Bucket(expiryBucket).Put(old, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Second)
	put("b")
	now = time.Unix(0, exact).Add(time.Second)
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if _, err := s.Get(ctx, store.State, "k", "b", &v); err != nil {
		t.Fatalf("b, rewritten to live longer, is gone: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if n, err := s.Sweep(ctx); err != nil || n != 2 {
		t.Errorf("Sweep = %d, %v; want a and b", n, err)
	}
	if keys := indexKeys(t, s); len(keys) != 0 {
		t.Errorf("index after every item expired: %q", keys)
	}
	if _, err := s.Get(ctx, store.State, "k", "b", &v); err == nil {
		t.Error("b is there after it expired")
	}
}
