package store

import (
	"context"
	"encoding/json"
	"errors"
)

// Write is one write of a batch: Put's arguments.
type Write struct {
	Container Container
	PK, ID    string
	Value     any
	Cond      Cond
}

// WriteResult is what became of one Write.
type WriteResult struct {
	ETag string // the item's new ETag, when written
	Err  error  // why it was not: ErrPrecondition, ErrTooLarge, ErrInvalid, ErrNotAttempted, …
}

// ErrNotAttempted marks a write of a batch stage that was not attempted
// because a write of an earlier stage failed.
var ErrNotAttempted = errors.New("not attempted: a write of an earlier stage failed")

// Batcher is implemented by stores that apply many writes in fewer round
// trips than one Put each (the embedded store: one transaction). Callers use
// WriteBatch, which falls back to Put for stores without it.
type Batcher interface {
	// WriteBatch has WriteBatch's contract.
	WriteBatch(ctx context.Context, stages ...[]Write) ([][]WriteResult, error)
}

// WriteBatch applies the writes of each stage in turn. Within a stage every
// write succeeds or fails on its own, and its WriteResult says which; the
// writes of a stage are attempted only when every write of the stages
// before it succeeded (the others report ErrNotAttempted), so that a later
// stage may depend on an earlier one. The error is for a failure of the
// call as a whole (I/O, a cancelled context), after which any write may or
// may not have been applied.
func WriteBatch(ctx context.Context, s Store, stages ...[]Write) ([][]WriteResult, error) {
	if b, ok := s.(Batcher); ok {
		return b.WriteBatch(ctx, stages...)
	}
	return PutEach(ctx, s, stages...)
}

// PutEach is WriteBatch with one Put a write: the fallback, and what a
// Batcher may use for what it cannot batch. Errors other than
// ErrPrecondition, ErrTooLarge and ErrInvalid fail the call.
func PutEach(ctx context.Context, s Store, stages ...[]Write) ([][]WriteResult, error) {
	out := make([][]WriteResult, len(stages))
	failed := false
	for i, stage := range stages {
		out[i] = make([]WriteResult, len(stage))
		for j, w := range stage {
			if failed {
				out[i][j].Err = ErrNotAttempted
				continue
			}
			etag, err := s.Put(ctx, w.Container, w.PK, w.ID, w.Value, w.Cond)
			if err != nil && !ItemError(err) {
				return nil, err
			}
			out[i][j] = WriteResult{ETag: etag, Err: err}
		}
		failed = failed || Failed(out[i])
	}
	return out, nil
}

// ItemError reports whether err concerns one item only (its condition,
// size or shape), so that the other writes of a batch stand.
func ItemError(err error) bool {
	return errors.Is(err, ErrPrecondition) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrInvalid)
}

// Failed reports whether any write of a stage failed.
func Failed(results []WriteResult) bool {
	for _, r := range results {
		if r.Err != nil {
			return true
		}
	}
	return false
}

// FirstError returns the first write error of a batch that is not a
// precondition failure or ErrNotAttempted: an item that cannot be written
// however often it is tried. The stores' errors name the item.
func FirstError(results [][]WriteResult) error {
	for _, rs := range results {
		for _, r := range rs {
			if r.Err != nil && !errors.Is(r.Err, ErrPrecondition) && !errors.Is(r.Err, ErrNotAttempted) {
				return r.Err
			}
		}
	}
	return nil
}

// Key names one item of a container.
type Key struct{ PK, ID string }

// Item is an item as GetMany read it.
type Item struct {
	Raw  json.RawMessage // the item's JSON; nil when there is no such item
	ETag string
}

// MultiGetter is implemented by stores that read many items of a container
// in fewer round trips than one Get each. Callers use GetMany, which falls
// back to Get for stores without it.
type MultiGetter interface {
	// GetMany has GetMany's contract.
	GetMany(ctx context.Context, c Container, keys []Key) ([]Item, error)
}

// GetMany reads the items of c at keys. The result is parallel to keys; an
// item that does not exist has a nil Raw.
func GetMany(ctx context.Context, s Store, c Container, keys []Key) ([]Item, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	if g, ok := s.(MultiGetter); ok {
		return g.GetMany(ctx, c, keys)
	}
	return GetEach(ctx, s, c, keys)
}

// GetEach is GetMany with one Get an item.
func GetEach(ctx context.Context, s Store, c Container, keys []Key) ([]Item, error) {
	out := make([]Item, len(keys))
	for i, k := range keys {
		var raw json.RawMessage
		etag, err := s.Get(ctx, c, k.PK, k.ID, &raw)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return nil, err
		default:
			out[i] = Item{Raw: raw, ETag: etag}
		}
	}
	return out, nil
}
