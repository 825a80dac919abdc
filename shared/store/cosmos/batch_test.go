package cosmos_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/cosmos"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// requests counts the requests the client sends, batches apart; with
// refuse set, batch requests are answered 500 as by a server without
// transactional batches.
type requests struct {
	rt              http.RoundTripper
	batches, others atomic.Int64
	refuse          atomic.Bool
}

func (r *requests) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.EqualFold(req.Header.Get("x-ms-cosmos-is-batch-request"), "true") {
		r.batches.Add(1)
		if r.refuse.Load() {
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return &http.Response{StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(`{"code":"InternalServerError","message":"batch not supported"}`)), Request: req}, nil
		}
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
// which commits a batch whole or not at all and reports each operation's
// outcome as Cosmos DB does: WriteBatch sends one request for a group's
// items, sends again the operations that failed only as a dependency of
// another, and writes item by item where batches are refused.
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

	// a9 before a failing create and a10 after it: nothing of the batch is
	// committed, and both are sent again without it.
	res, err = s.WriteBatch(ctx, creates("a9", "a3", "a10"))
	if err != nil {
		t.Fatal(err)
	}
	if res[0][0].Err != nil || !errors.Is(res[0][1].Err, store.ErrPrecondition) || res[0][2].Err != nil {
		t.Errorf("results %+v: want the existing item's create refused and the others written", res[0])
	}
	for _, id := range []string{"a9", "a10"} {
		var d alertDoc
		if etag, err := s.Get(ctx, store.Alerts, "c1", id, &d); err != nil || (id == "a9" && etag != res[0][0].ETag) || (id == "a10" && etag != res[0][2].ETag) {
			t.Errorf("%s: ETag %q, %v; the batch said %+v", id, etag, err, res[0])
		}
	}

	// A replace and a create in a batch.
	var cur alertDoc
	etag, err := s.Get(ctx, store.Alerts, "c1", "a0", &cur)
	if err != nil {
		t.Fatal(err)
	}
	before = reqs.others.Load()
	mixed := append([]store.Write{{Container: store.Alerts, PK: "c1", ID: "a0", Value: alertDoc{ID: "a0", Cluster: "c1", N: 1}, Cond: store.Cond{IfMatch: etag}}}, creates("a6")...)
	res, err = s.WriteBatch(ctx, mixed)
	if err != nil {
		t.Fatal(err)
	}
	if res[0][0].Err != nil || res[0][1].Err != nil {
		t.Fatalf("results %+v of a replace and a create", res[0])
	}
	if o := reqs.others.Load() - before; o != 0 {
		t.Errorf("%d requests besides the batch for a replace and a create", o)
	}
	if _, err := s.Get(ctx, store.Alerts, "c1", "a0", &cur); err != nil || cur.N != 1 {
		t.Errorf("replaced item %+v %v", cur, err)
	}

	// A server that refuses batches: every item is written on its own, and
	// batches are not tried again for a while.
	reqs.refuse.Store(true)
	res, err = s.WriteBatch(ctx, creates("a11", "a12"))
	if err != nil || res[0][0].Err != nil || res[0][1].Err != nil {
		t.Fatalf("creates when batches are refused: %v %+v", err, res)
	}
	for _, id := range []string{"a11", "a12"} {
		var d alertDoc
		if _, err := s.Get(ctx, store.Alerts, "c1", id, &d); err != nil {
			t.Errorf("%s not written after a refused batch: %v", id, err)
		}
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

// TestLoopbackBatchIsAtomic holds the loopback server to Cosmos DB's
// transactional batch: a batch whose condition fails (a stale ETag, an
// existing item's create) writes nothing, the failing operation reports
// its status and the others 424, and a batch that holds commits whole,
// replaces included.
func TestLoopbackBatchIsAtomic(t *testing.T) {
	endpoint := testenv.StartCosmos(t)
	ctx := t.Context()
	db := fmt.Sprintf("test%d", dbSeq.Add(1))
	s, err := cosmos.New(ctx, cosmos.Options{Endpoint: endpoint, Key: testenv.CosmosKey, Database: db, InsecureLoopbackTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cred, err := azcosmos.NewKeyCredential(testenv.CosmosKey)
	if err != nil {
		t.Fatal(err)
	}
	client, err := azcosmos.NewClientWithKey(endpoint, cred, &azcosmos.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}, //nolint:gosec // the loopback test server's self-signed certificate
	}})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := client.NewContainer(db, string(store.Alerts))
	if err != nil {
		t.Fatal(err)
	}
	etag, err := s.Put(ctx, store.Alerts, "c1", "x", alertDoc{ID: "x", Cluster: "c1", N: 1}, store.Cond{})
	if err != nil {
		t.Fatal(err)
	}
	body := func(id string, n int) []byte { return fmt.Appendf(nil, `{"id":%q,"cluster":"c1","n":%d}`, id, n) }
	stale := azcore.ETag(`"stale"`)
	pk := azcosmos.NewPartitionKeyString("c1")

	for name, fail := range map[string]func(b *azcosmos.TransactionalBatch){
		"stale ETag": func(b *azcosmos.TransactionalBatch) {
			b.ReplaceItem("x", body("x", 2), &azcosmos.TransactionalBatchItemOptions{IfMatchETag: &stale})
		},
		"existing create": func(b *azcosmos.TransactionalBatch) { b.CreateItem(body("x", 3), nil) },
	} {
		b := cc.NewTransactionalBatch(pk)
		b.UpsertItem(body("y", 1), nil)
		fail(&b)
		b.CreateItem(body("z", 1), nil)
		resp, err := cc.ExecuteTransactionalBatch(ctx, b, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var codes []int32
		for _, r := range resp.OperationResults {
			codes = append(codes, r.StatusCode)
		}
		if resp.Success || len(codes) != 3 || codes[0] != http.StatusFailedDependency || codes[2] != http.StatusFailedDependency ||
			(codes[1] != http.StatusPreconditionFailed && codes[1] != http.StatusConflict) {
			t.Errorf("%s: success %v, statuses %v; want 424, the failure, 424", name, resp.Success, codes)
		}
		for _, id := range []string{"y", "z"} {
			var d alertDoc
			if _, err := s.Get(ctx, store.Alerts, "c1", id, &d); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: a failed batch wrote %s (%v)", name, id, err)
			}
		}
	}

	b := cc.NewTransactionalBatch(pk)
	b.UpsertItem(body("y", 1), nil)
	cur := azcore.ETag(etag)
	b.ReplaceItem("x", body("x", 4), &azcosmos.TransactionalBatchItemOptions{IfMatchETag: &cur})
	resp, err := cc.ExecuteTransactionalBatch(ctx, b, nil)
	if err != nil || !resp.Success {
		t.Fatalf("batch that holds: %v %+v", err, resp)
	}
	var d alertDoc
	if _, err := s.Get(ctx, store.Alerts, "c1", "x", &d); err != nil || d.N != 4 {
		t.Errorf("x = %+v %v after a replace in a batch", d, err)
	}
	if _, err := s.Get(ctx, store.Alerts, "c1", "y", &d); err != nil {
		t.Errorf("y not written by a batch that holds: %v", err)
	}
	// Writes are answered without their documents unless asked for (the
	// SDK prefers a minimal answer, unless the batch reads too).
	for _, content := range []bool{false, true} {
		b := cc.NewTransactionalBatch(pk)
		b.UpsertItem(body("y", 5), nil)
		resp, err := cc.ExecuteTransactionalBatch(ctx, b, &azcosmos.TransactionalBatchOptions{EnableContentResponseOnWrite: content})
		if err != nil || !resp.Success || len(resp.OperationResults) != 1 {
			t.Fatalf("batch with content %v: %v %+v", content, err, resp)
		}
		if r := resp.OperationResults[0]; (len(r.ResourceBody) > 0) != content || r.ETag == "" {
			t.Errorf("content %v: the write answered %q (ETag %s)", content, r.ResourceBody, r.ETag)
		}
	}
}
