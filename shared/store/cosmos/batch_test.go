package cosmos_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/cosmos"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// requests counts the requests the client sends, batches apart.
type requests struct {
	rt              http.RoundTripper
	batches, others atomic.Int64
}

func (r *requests) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.EqualFold(req.Header.Get("x-ms-cosmos-is-batch-request"), "true") {
		r.batches.Add(1)
	} else {
		r.others.Add(1)
	}
	return r.rt.RoundTrip(req)
}

func countedStore(t *testing.T, endpoint string) (*cosmos.Store, *requests) {
	t.Helper()
	reqs := &requests{rt: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the loopback test server's self-signed certificate
	s, err := cosmos.New(t.Context(), cosmos.Options{Endpoint: endpoint, Key: testenv.CosmosKey, Database: fmt.Sprintf("test%d", dbSeq.Add(1)),
		HTTPClient: &http.Client{Transport: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, reqs
}

type alertDoc struct {
	ID      string `json:"id"`
	Cluster string `json:"cluster"`
	N       int    `json:"n"`
}

func creates(ids ...string) []store.Write {
	var ws []store.Write
	for _, id := range ids {
		ws = append(ws, store.Write{Container: store.Alerts, PK: "c1", ID: id, Value: alertDoc{ID: id, Cluster: "c1"}, Cond: store.Cond{IfNoneMatch: true}})
	}
	return ws
}

// TestTransactionalBatch runs the batch path against the loopback server,
// which runs the creates of a batch (one by one, not atomically, but
// reporting each operation's outcome as Cosmos DB does) and refuses
// replaces in a batch with a 500: WriteBatch sends one request for a
// group's items, sends again the operations that failed only as a
// dependency of another, and writes item by item where batches are
// refused.
func TestTransactionalBatch(t *testing.T) {
	endpoint := testenv.StartCosmos(t)
	s, reqs := countedStore(t, endpoint)
	ctx := t.Context()
	check := func(res [][]store.WriteResult, want ...error) {
		t.Helper()
		for j, w := range want {
			r := res[0][j]
			if (w == nil) != (r.Err == nil) || (w != nil && !errors.Is(r.Err, w)) {
				t.Errorf("write %d: err %v, want %v", j, r.Err, w)
			}
			if w == nil {
				var d alertDoc
				etag, err := s.Get(ctx, store.Alerts, "c1", fmt.Sprint("a", j), &d)
				if err != nil || etag != r.ETag {
					t.Errorf("write %d: ETag %q, the item has %q (%v)", j, r.ETag, etag, err)
				}
			}
		}
	}

	before := reqs.others.Load()
	res, err := s.WriteBatch(ctx, creates("a0", "a1", "a2"))
	if err != nil {
		t.Fatal(err)
	}
	if b, o := reqs.batches.Load(), reqs.others.Load()-before; b != 1 || o != 0 {
		t.Errorf("%d batch and %d other requests for three creates, want one batch", b, o)
	}
	check(res, nil, nil, nil)

	// a3 exists: its create fails, the two after it are sent again.
	if _, err := s.Put(ctx, store.Alerts, "c1", "a3", alertDoc{ID: "a3", Cluster: "c1", N: 7}, store.Cond{}); err != nil {
		t.Fatal(err)
	}
	res, err = s.WriteBatch(ctx, creates("a3", "a4", "a5"))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0][0].Err, store.ErrPrecondition) || res[0][1].Err != nil || res[0][2].Err != nil {
		t.Errorf("results %+v: want the existing item's create refused and the others written", res[0])
	}
	if b := reqs.batches.Load(); b != 3 {
		t.Errorf("%d batch requests so far, want 3 (the failed dependencies sent again)", b)
	}
	var a3 alertDoc
	if _, err := s.Get(ctx, store.Alerts, "c1", "a3", &a3); err != nil || a3.N != 7 {
		t.Errorf("existing item overwritten: %+v %v", a3, err)
	}

	// A replace in a batch: the server refuses the request; every item is
	// written on its own, and batches are not tried again for a while.
	var cur alertDoc
	etag, err := s.Get(ctx, store.Alerts, "c1", "a0", &cur)
	if err != nil {
		t.Fatal(err)
	}
	mixed := append([]store.Write{{Container: store.Alerts, PK: "c1", ID: "a0", Value: alertDoc{ID: "a0", Cluster: "c1", N: 1}, Cond: store.Cond{IfMatch: etag}}}, creates("a6")...)
	res, err = s.WriteBatch(ctx, mixed)
	if err != nil {
		t.Fatal(err)
	}
	if res[0][0].Err != nil || res[0][1].Err != nil {
		t.Fatalf("results %+v after a refused batch", res[0])
	}
	if _, err := s.Get(ctx, store.Alerts, "c1", "a0", &cur); err != nil || cur.N != 1 {
		t.Errorf("replaced item %+v %v", cur, err)
	}
	batches := reqs.batches.Load()
	res, err = s.WriteBatch(ctx, creates("a7", "a8"))
	if err != nil || res[0][0].Err != nil || res[0][1].Err != nil {
		t.Fatalf("creates after a refused batch: %v %+v", err, res)
	}
	if b := reqs.batches.Load(); b != batches {
		t.Errorf("a batch was tried again right after the server refused one")
	}
}
