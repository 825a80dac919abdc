package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/palisade-sec/palisade/shared/store"
)

// testWriteBatch: through store.WriteBatch (the store's own batch, or one
// Put a write), each write of a stage succeeds or fails on its own, a later
// stage is written only when every write before it was, and the ETags
// returned are the items' ETags.
func testWriteBatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	stale := mustPut(t, s, store.Alerts, "c1", "changed", doc{"id": "changed", "cluster": "c1", "n": 1})
	current := mustPut(t, s, store.Alerts, "c1", "changed", doc{"id": "changed", "cluster": "c1", "n": 2})
	mustPut(t, s, store.Alerts, "c1", "exists", doc{"id": "exists", "cluster": "c1"})

	stages := [][]store.Write{
		{
			{Container: store.State, PK: "k", ID: "s1", Value: doc{"id": "s1", "kind": "k"}},
			{Container: store.Alerts, PK: "c1", ID: "new", Value: doc{"id": "new", "cluster": "c1"}, Cond: store.Cond{IfNoneMatch: true}},
			{Container: store.Alerts, PK: "c1", ID: "exists", Value: doc{"id": "exists", "cluster": "c1", "n": 9}, Cond: store.Cond{IfNoneMatch: true}},
			{Container: store.Alerts, PK: "c1", ID: "changed", Value: doc{"id": "changed", "cluster": "c1", "n": 3}, Cond: store.Cond{IfMatch: stale}},
			{Container: store.Alerts, PK: "c2", ID: "bad", Value: doc{"id": "bad", "cluster": "c1"}},
		},
		{{Container: store.Alerts, PK: "c1", ID: "later", Value: doc{"id": "later", "cluster": "c1"}}},
	}
	res, err := store.WriteBatch(ctx, s, stages...)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]error{{nil, nil, store.ErrPrecondition, store.ErrPrecondition, store.ErrInvalid}, {store.ErrNotAttempted}}
	for i := range want {
		for j, w := range want[i] {
			r := res[i][j]
			if (w == nil) != (r.Err == nil) || (w != nil && !errors.Is(r.Err, w)) {
				t.Errorf("stage %d write %d: err %v, want %v", i, j, r.Err, w)
			}
			if w == nil {
				var d doc
				etag, err := s.Get(ctx, stages[i][j].Container, stages[i][j].PK, stages[i][j].ID, &d)
				if err != nil || etag != r.ETag {
					t.Errorf("stage %d write %d: ETag %q, the item has %q (%v)", i, j, r.ETag, etag, err)
				}
			}
		}
	}
	if err := store.FirstError(res); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("FirstError = %v, want the invalid item's error", err)
	}
	if got := ids(t, s, store.Alerts, store.Query{PartitionKey: "c1"}); !slices.Equal(got, []string{"changed", "exists", "new"}) {
		t.Errorf("alerts %q: want the failed and later writes missing", got)
	}
	var d doc
	if _, err := s.Get(ctx, store.Alerts, "c1", "changed", &d); err != nil || d["n"] != 2.0 {
		t.Errorf("item written with a stale ETag: %v %v", d, err)
	}

	// Every write standing: both stages are written.
	res, err = store.WriteBatch(ctx, s,
		[]store.Write{{Container: store.Alerts, PK: "c1", ID: "changed", Value: doc{"id": "changed", "cluster": "c1", "n": 4}, Cond: store.Cond{IfMatch: current}}},
		[]store.Write{{Container: store.Alerts, PK: "c1", ID: "later", Value: doc{"id": "later", "cluster": "c1"}}})
	if err != nil || res[0][0].Err != nil || res[1][0].Err != nil {
		t.Fatalf("batch of valid writes: %v %+v", err, res)
	}
	if got := ids(t, s, store.Alerts, store.Query{PartitionKey: "c1"}); !slices.Equal(got, []string{"changed", "exists", "later", "new"}) {
		t.Errorf("alerts %q after the second batch", got)
	}
	if res, err := store.WriteBatch(ctx, s); err != nil || len(res) != 0 {
		t.Errorf("empty batch: %v %v", res, err)
	}
}

// testGetMany: store.GetMany returns each item with its ETag, in the order
// asked, and nothing for a missing one.
func testGetMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	ea := mustPut(t, s, store.Alerts, "c1", "a", doc{"id": "a", "cluster": "c1", "n": 1})
	eb := mustPut(t, s, store.Alerts, "c2", "b", doc{"id": "b", "cluster": "c2", "n": 2})
	mustPut(t, s, store.Alerts, "c1", "x", doc{"id": "x", "cluster": "c1"})
	keys := []store.Key{{PK: "c2", ID: "b"}, {PK: "c1", ID: "missing"}, {PK: "c1", ID: "a"}, {PK: "c2", ID: "a"}}
	items, err := store.GetMany(ctx, s, store.Alerts, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != len(keys) {
		t.Fatalf("%d items for %d keys", len(items), len(keys))
	}
	for i, want := range []struct {
		etag string
		n    float64
	}{{eb, 2}, {"", 0}, {ea, 1}, {"", 0}} {
		it := items[i]
		if want.etag == "" {
			if it.Raw != nil || it.ETag != "" {
				t.Errorf("key %v: got %s %q, want nothing", keys[i], it.Raw, it.ETag)
			}
			continue
		}
		var d doc
		if err := json.Unmarshal(it.Raw, &d); err != nil || d["n"] != want.n || it.ETag != want.etag {
			t.Errorf("key %v: %s ETag %q (%v), want n=%v ETag %q", keys[i], it.Raw, it.ETag, err, want.n, want.etag)
		}
	}
	if items, err := store.GetMany(ctx, s, store.Alerts, nil); err != nil || len(items) != 0 {
		t.Errorf("no keys: %v %v", items, err)
	}
	if _, err := store.GetMany(ctx, s, store.Alerts, []store.Key{{PK: "", ID: "a"}}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("key without a partition key: %v, want ErrInvalid", err)
	}
}
