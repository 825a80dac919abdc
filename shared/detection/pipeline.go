package detection

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/statecache"
)

// Publisher sends alerts downstream (Sentinel). Implementations batch and
// honour throttling themselves; an error means the alerts were not all sent.
type Publisher interface {
	Publish(ctx context.Context, alerts []model.Alert) error
}

// PipelineOptions configure a Pipeline.
type PipelineOptions struct {
	Function   string        // for parked records and logs
	Retries    int           // retries of a failed write inside one invocation
	RetryDelay time.Duration // first delay; doubles
	Now        func() time.Time
	// Sleep waits between retries; nil uses a timer that honours ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	// Sink configures the alerts kept in memory and the enrichment cache;
	// its clock is Now.
	Sink SinkOptions
}

// Pipeline is the write side shared by detectruntime and analyzeaudit: park
// undecodable inputs, update state, save alerts, publish them. One
// invocation's writes go to the store in one batch (statecache), run again
// when another instance changed the same documents; store failures are
// retried inside the invocation, and when retries run out the error is
// returned so that the invocation fails and the function's retry policy
// redelivers the batch, which is safe because every write is idempotent.
// A Pipeline is safe for concurrent invocations, whose writes are
// committed together when they meet (statecache.Group).
type Pipeline struct {
	st    store.Store
	pub   Publisher
	sink  *Sink
	group *statecache.Group
	opt   PipelineOptions
}

// NewPipeline returns a pipeline over st; pub may be nil (no Sentinel).
func NewPipeline(st store.Store, pub Publisher, d *Detector, opt PipelineOptions) *Pipeline {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Sleep == nil {
		opt.Sleep = sleep
	}
	opt.Sink.Now = opt.Now
	return &Pipeline{st: st, pub: pub, sink: NewSink(st, d, opt.Sink), group: statecache.NewGroup(st), opt: opt}
}

// Invocation is what one invocation of a detection function writes.
type Invocation struct {
	// Parked are inputs that could not be decoded.
	Parked []model.Parked
	// Folds are the alerts the rules raised.
	Folds []*Fold
	// State, when set, stages the invocation's state updates (baselines)
	// in each attempt, ahead of the alerts, and returns the alerts they
	// raise.
	State func(ctx context.Context, tx *statecache.Tx) ([]*Fold, error)
}

// Run writes an invocation: parked inputs, state and alerts in one store
// batch an attempt, and then publishes the open (new or active) alerts
// among those touched (re-sending those a redelivery left unchanged, which
// Sentinel de-duplicates by id, as they are in the store: see Refresh).
func (p *Pipeline) Run(ctx context.Context, inv Invocation) (saved []model.Alert, published int, err error) {
	if len(inv.Parked) == 0 && len(inv.Folds) == 0 && inv.State == nil {
		return nil, 0, nil
	}
	var unchanged []int
	err = p.Retry(ctx, "save alerts", func() error {
		err := p.group.Run(ctx, maxConflicts, func(tx *statecache.Tx) error {
			for _, pk := range inv.Parked {
				tx.Write(StateStage, store.Write{Container: store.State, PK: model.KindParked, ID: pk.ID, Value: pk})
			}
			folds := inv.Folds
			if inv.State != nil {
				more, err := inv.State(ctx, tx)
				if err != nil {
					return err
				}
				folds = append(slices.Clip(folds), more...)
			}
			var err error
			saved, unchanged, err = p.sink.Stage(ctx, tx, folds)
			return err
		})
		if err != nil {
			return err
		}
		return p.sink.Refresh(ctx, saved, unchanged)
	})
	if err != nil {
		return nil, 0, err
	}
	for _, pk := range inv.Parked {
		logging.Ctx(ctx).Warn().Str(logging.FieldReason, pk.Reason).Msg("input parked")
	}
	var open []model.Alert
	for _, a := range saved {
		if model.AlertOpen(a.Status) {
			open = append(open, a)
		}
	}
	if p.pub == nil || len(open) == 0 {
		return saved, 0, nil
	}
	err = p.Retry(ctx, "publish alerts", func() error { return p.pub.Publish(ctx, open) })
	if err != nil {
		return saved, 0, err
	}
	return saved, len(open), nil
}

// Park stores undecodable inputs in the state container.
func (p *Pipeline) Park(ctx context.Context, parked []model.Parked) error {
	_, _, err := p.Run(ctx, Invocation{Parked: parked})
	return err
}

// Commit saves the folds and publishes the open alerts among them.
func (p *Pipeline) Commit(ctx context.Context, folds []*Fold) (saved []model.Alert, published int, err error) {
	return p.Run(ctx, Invocation{Folds: folds})
}

// Retry runs fn until it succeeds, up to 1+Retries times with doubling
// delays. Errors that retrying cannot fix (invalid or too large items, a
// cancelled context) are returned at once.
func (p *Pipeline) Retry(ctx context.Context, what string, fn func() error) error {
	delay := p.opt.RetryDelay
	var err error
	for attempt := 0; ; attempt++ {
		if err = fn(); err == nil {
			return nil
		}
		if attempt >= p.opt.Retries || errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrTooLarge) || ctx.Err() != nil {
			break
		}
		logging.Ctx(ctx).Warn().Err(err).Int(logging.FieldCount, attempt+1).Msg(what + " failed; retrying")
		if serr := p.opt.Sleep(ctx, delay); serr != nil {
			break
		}
		delay *= 2
	}
	return fmt.Errorf("%s: %w", what, err)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
