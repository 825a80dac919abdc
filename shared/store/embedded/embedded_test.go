package embedded_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/embedded"
	"github.com/palisade-sec/palisade/shared/store/storetest"
)

func open(t *testing.T) store.Store {
	s, err := embedded.Open(filepath.Join(t.TempDir(), "palisade.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, open)
}

func TestOpenCreatesFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "palisade.db")
	s, err := embedded.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReopenKeepsItemsAndETags(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "palisade.db")
	s, err := embedded.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	item := map[string]any{"id": "x", "kind": "k"}
	etag, err := s.Put(ctx, store.State, "k", "x", item, store.Cond{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = embedded.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got map[string]any
	if tag, err := s.Get(ctx, store.State, "k", "x", &got); err != nil || tag != etag {
		t.Fatalf("after reopen Get = %q, %v; want ETag %q", tag, err, etag)
	}
	// A revision is never reused, so an old ETag cannot match a new write.
	next, err := s.Put(ctx, store.State, "k", "x", item, store.Cond{})
	if err != nil {
		t.Fatal(err)
	}
	if next == etag {
		t.Errorf("write after reopen reused ETag %s", etag)
	}
}

func TestSecondOpenerGetsClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "palisade.db")
	s, err := embedded.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// bbolt's flock is per open file description, so a second open in the
	// same process contends exactly like another process would.
	_, err = embedded.OpenWith(path, embedded.Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		t.Fatal("second Open of a file in use succeeded")
	}
	if want := fmt.Sprintf("store file %s is in use by another process", path); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestBadContinuation(t *testing.T) {
	s := open(t)
	for _, tc := range []struct{ name, token, pk string }{
		{"NotBase64", "!!!", ""},
		// A token from partition "a" used on partition "b".
		{"OtherPartition", "YQBpZA", "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Query(t.Context(), store.State, store.Query{PartitionKey: tc.pk, Continuation: tc.token})
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	s := open(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Put(ctx, store.State, "k", "x", map[string]any{"id": "x", "kind": "k"}, store.Cond{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context: err = %v", err)
	}
}

func openBench(b *testing.B) store.Store {
	s, err := embedded.Open(filepath.Join(b.TempDir(), "palisade.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkPut(b *testing.B)   { storetest.BenchPut(b, openBench(b)) }
func BenchmarkGet(b *testing.B)   { storetest.BenchGet(b, openBench(b)) }
func BenchmarkQuery(b *testing.B) { storetest.BenchQuery(b, openBench(b)) }

// FuzzQueryContinuation feeds arbitrary continuation tokens, which come
// back from API clients, to Query: it must answer a page or ErrInvalid,
// never panic, and never return an item outside the asked partition.
func FuzzQueryContinuation(f *testing.F) {
	for _, seed := range []string{"", "YQBpZA", "YgB4", "!!!", "AA", "YQ", "YQA"} {
		f.Add(seed, "a")
	}
	s, err := embedded.Open(filepath.Join(f.TempDir(), "palisade.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	for _, pk := range []string{"a", "b"} {
		for _, id := range []string{"id", "x", "y"} {
			if _, err := s.Put(context.Background(), store.State, pk, id, map[string]any{"id": id, "kind": pk}, store.Cond{}); err != nil {
				f.Fatal(err)
			}
		}
	}
	f.Fuzz(func(t *testing.T, token, pk string) {
		page, err := s.Query(t.Context(), store.State, store.Query{PartitionKey: pk, Continuation: token, Limit: 2})
		if err != nil {
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("Query: %v, want a page or ErrInvalid", err)
			}
			return
		}
		for _, raw := range page.Items {
			var d struct{ Kind string }
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Fatal(err)
			}
			if pk != "" && d.Kind != pk {
				t.Fatalf("query of partition %q returned an item of %q", pk, d.Kind)
			}
		}
	})
}

// TestExpiryByClock: items expire by the store's clock; writes and Sweep
// delete them, and a rewrite without ttl keeps an item for good.
func TestExpiryByClock(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "palisade.db")
	s, err := embedded.OpenWith(path, embedded.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(id string, ttl int) {
		t.Helper()
		it := map[string]any{"id": id, "kind": "k"}
		if ttl != 0 {
			it["ttl"] = ttl
		}
		if _, err := s.Put(ctx, store.State, "k", id, it, store.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", 60)
	put("b", 120)
	put("c", 60)
	put("c", 0) // rewritten without ttl: kept
	now = now.Add(61 * time.Second)
	var v map[string]any
	if _, err := s.Get(ctx, store.State, "k", "a", &v); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a after 61s: %v, want not found", err)
	}
	if _, err := s.Get(ctx, store.State, "k", "b", &v); err != nil {
		t.Errorf("b after 61s: %v", err)
	}
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Errorf("Sweep = %d, %v; want 1 (a)", n, err)
	}
	now = now.Add(time.Hour)
	put("d", 0) // a write deletes what has expired (b)
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("Sweep after a write = %d, %v; want 0", n, err)
	}
	page, err := s.Query(ctx, store.State, store.Query{PartitionKey: "k"})
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("query: %d items, %v; want c and d", len(page.Items), err)
	}
}

// TestExpiredOnReopen: Open deletes the items that expired while the file
// was closed.
func TestExpiredOnReopen(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "palisade.db")
	s, err := embedded.OpenWith(path, embedded.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, store.Alerts, "aks", "x", map[string]any{"id": "x", "cluster": "aks", "ttl": 10}, store.Cond{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Minute)
	s, err = embedded.OpenWith(path, embedded.Options{Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("Sweep after reopen = %d, %v; want 0: Open swept", n, err)
	}
	// Back in time the item would be there, were it not deleted.
	page, err := s.Query(ctx, store.Alerts, store.Query{})
	if err != nil || len(page.Items) != 0 {
		t.Errorf("query after reopen: %d items, %v", len(page.Items), err)
	}
}

// TestFilterOnEscapedString: an item whose JSON writes a string with
// escapes still matches a filter on that string (the query passes items
// over by their text only when they cannot hold it).
func TestFilterOnEscapedString(t *testing.T) {
	s := open(t)
	items := map[string]map[string]json.RawMessage{
		"escaped": {"id": json.RawMessage(`"escaped"`), "cluster": json.RawMessage(`"c1"`), "name": json.RawMessage(`"\u0041bc"`)},
		"plain":   {"id": json.RawMessage(`"plain"`), "cluster": json.RawMessage(`"c1"`), "name": json.RawMessage(`"Abc"`)},
		"other":   {"id": json.RawMessage(`"other"`), "cluster": json.RawMessage(`"c1"`), "name": json.RawMessage(`"Abd"`)},
	}
	for id, it := range items {
		if _, err := s.Put(t.Context(), store.Alerts, "c1", id, it, store.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := s.Query(t.Context(), store.Alerts, store.Query{Filters: []store.Filter{{Field: "name", Op: store.Eq, Value: "Abc"}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, raw := range page.Items {
		var d struct{ ID string }
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		got = append(got, d.ID)
	}
	if slices.Sort(got); !slices.Equal(got, []string{"escaped", "plain"}) {
		t.Errorf("matched %q, want escaped and plain", got)
	}
}
