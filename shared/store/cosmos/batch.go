package cosmos

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/palisade-sec/palisade/shared/store"
)

// Limits of one Cosmos DB transactional batch: 100 operations and a 2 MB
// request; a little is kept back for the request's own framing.
const (
	maxBatchOps   = 100
	maxBatchBytes = 2*1024*1024 - 64*1024
)

// batchRetryAfter is how long WriteBatch writes item by item after the
// service refused a transactional batch as a request.
const batchRetryAfter = 10 * time.Minute

// WriteBatch writes each stage's items that share a container and a
// partition key with transactional batches (one request for up to 100 of
// them), keeping store.WriteBatch's per-item outcome: a batch is atomic in
// Cosmos DB, so when one operation fails the others come back as "failed
// dependency" (424) and are sent again without it.
//
// A server that refuses a batch as a whole (a 400, 404, 405, 500 or 501 for
// the request rather than per-operation results, as an emulator without
// transactional batches does) gets the group's items one Put each, and no
// batch for batchRetryAfter. A server that applies a batch's operations one
// by one and stops at a failure, rather than atomically, reports which it
// applied, which is all WriteBatch reads.
func (s *Store) WriteBatch(ctx context.Context, stages ...[]store.Write) ([][]store.WriteResult, error) {
	out := make([][]store.WriteResult, len(stages))
	failed := false
	for i, stage := range stages {
		out[i] = make([]store.WriteResult, len(stage))
		if failed {
			for j := range out[i] {
				out[i][j].Err = store.ErrNotAttempted
			}
			continue
		}
		type group struct {
			c  store.Container
			pk string
		}
		groups := map[group][]int{}
		var order []group
		for j, w := range stage {
			g := group{w.Container, w.PK}
			if _, ok := groups[g]; !ok {
				order = append(order, g)
			}
			groups[g] = append(groups[g], j)
		}
		for _, g := range order {
			if err := s.writeGroup(ctx, stage, groups[g], out[i]); err != nil {
				return nil, err
			}
		}
		failed = store.Failed(out[i])
	}
	return out, nil
}

// batchState holds the Unix time until which transactional batches are not
// tried (0: they are).
type batchState struct{ offUntil atomic.Int64 }

// writeGroup writes the items of stage at idx, which share a container and
// a partition key, into results.
func (s *Store) writeGroup(ctx context.Context, stage []store.Write, idx []int, results []store.WriteResult) error {
	bodies := map[int][]byte{}
	put := func(j int) error {
		w := stage[j]
		etag, err := s.putBody(ctx, w.Container, w.PK, w.ID, bodies[j], w.Cond)
		if err != nil && !store.ItemError(err) {
			return err
		}
		results[j] = store.WriteResult{ETag: etag, Err: err}
		return nil
	}
	var pending []int
	for _, j := range idx {
		w := stage[j]
		body, _, err := store.Validate(w.Container, w.PK, w.ID, w.Value)
		if err != nil {
			results[j].Err = err
			continue
		}
		bodies[j] = body
		pending = append(pending, j)
	}
	for len(pending) > 0 {
		if len(pending) == 1 || time.Now().Unix() < s.batches.offUntil.Load() {
			for _, j := range pending {
				if err := put(j); err != nil {
					return err
				}
			}
			return nil
		}
		// The next chunk: up to maxBatchOps operations and maxBatchBytes.
		n, size := 0, 0
		for n < len(pending) && n < maxBatchOps && (n == 0 || size+len(bodies[pending[n]]) <= maxBatchBytes) {
			size += len(bodies[pending[n]])
			n++
		}
		chunk := pending[:n]
		retry, err := s.execBatch(ctx, stage, chunk, bodies, results)
		switch {
		case err == errBatchRefused:
			s.batches.offUntil.Store(time.Now().Add(batchRetryAfter).Unix())
			continue // the same items, one Put each
		case err != nil:
			return err
		case len(retry) == len(chunk):
			return fmt.Errorf("transactional batch in partition %q: every operation failed as a dependency of another", stage[chunk[0]].PK)
		}
		pending = append(retry, pending[n:]...)
	}
	return nil
}

// errBatchRefused: the service answered a batch request as a whole with an
// error that says it cannot run it.
var errBatchRefused = fmt.Errorf("transactional batch refused")

// execBatch runs one transactional batch of the writes at chunk and records
// each operation's outcome; it returns the writes that failed only as a
// dependency of another (424), to be sent again.
func (s *Store) execBatch(ctx context.Context, stage []store.Write, chunk []int, bodies map[int][]byte, results []store.WriteResult) (retry []int, err error) {
	first := stage[chunk[0]]
	cc, err := s.container(first.Container)
	if err != nil {
		return nil, err
	}
	b := cc.NewTransactionalBatch(azcosmos.NewPartitionKeyString(first.PK))
	for _, j := range chunk {
		w := stage[j]
		switch {
		case w.Cond.IfMatch != "":
			etag := azcore.ETag(w.Cond.IfMatch)
			b.ReplaceItem(w.ID, bodies[j], &azcosmos.TransactionalBatchItemOptions{IfMatchETag: &etag})
		case w.Cond.IfNoneMatch:
			b.CreateItem(bodies[j], nil)
		default:
			b.UpsertItem(bodies[j], nil)
		}
	}
	resp, err := cc.ExecuteTransactionalBatch(ctx, b, nil)
	if err != nil {
		switch statusOf(err) {
		case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusInternalServerError, http.StatusNotImplemented:
			return nil, errBatchRefused
		}
		return nil, fmt.Errorf("transactional batch of %d %s items in partition %q: %w", len(chunk), first.Container, first.PK, err)
	}
	if len(resp.OperationResults) != len(chunk) {
		return nil, fmt.Errorf("transactional batch of %d %s items in partition %q: %d results", len(chunk), first.Container, first.PK, len(resp.OperationResults))
	}
	for k, r := range resp.OperationResults {
		j, w := chunk[k], stage[chunk[k]]
		code := int(r.StatusCode)
		switch {
		case code >= 200 && code < 300:
			results[j] = store.WriteResult{ETag: string(r.ETag)}
		case code == http.StatusFailedDependency:
			retry = append(retry, j)
		case code == http.StatusConflict || code == http.StatusPreconditionFailed || code == http.StatusNotFound:
			results[j].Err = fmt.Errorf("write %s item %q in partition %q: item changed, exists or gone (HTTP %d): %w", w.Container, w.ID, w.PK, code, store.ErrPrecondition)
		case code == http.StatusRequestEntityTooLarge:
			results[j].Err = fmt.Errorf("write %s item %q in partition %q: refused by Cosmos DB as too large: %w", w.Container, w.ID, w.PK, store.ErrTooLarge)
		case code == http.StatusBadRequest:
			results[j].Err = fmt.Errorf("write %s item %q in partition %q: refused by Cosmos DB (HTTP 400): %w", w.Container, w.ID, w.PK, store.ErrInvalid)
		default:
			return nil, fmt.Errorf("transactional batch in partition %q: %s item %q failed with HTTP %d", w.PK, w.Container, w.ID, code)
		}
	}
	return retry, nil
}
