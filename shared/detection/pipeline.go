package detection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
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
}

// Pipeline is the write side shared by detectruntime and analyzeaudit: park
// undecodable inputs, save alerts, publish them. Every step is retried inside
// the invocation; when retries run out the error is returned so that the
// invocation fails and the function's retry policy redelivers the batch,
// which is safe because every write is idempotent.
type Pipeline struct {
	st   store.Store
	pub  Publisher
	sink *Sink
	opt  PipelineOptions
}

// NewPipeline returns a pipeline over st; pub may be nil (no Sentinel).
func NewPipeline(st store.Store, pub Publisher, d *Detector, opt PipelineOptions) *Pipeline {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Sleep == nil {
		opt.Sleep = sleep
	}
	return &Pipeline{st: st, pub: pub, sink: NewSink(st, d, opt.Now), opt: opt}
}

// Result counts what one invocation did.
type Result struct {
	Events    int
	Parked    int
	Alerts    int // alerts touched (created, updated or unchanged on redelivery)
	Published int
}

// Park stores undecodable inputs in the state container.
func (p *Pipeline) Park(ctx context.Context, parked []model.Parked) error {
	for _, pk := range parked {
		err := p.Retry(ctx, "park input", func() error {
			_, err := p.st.Put(ctx, store.State, model.KindParked, pk.ID, pk, store.Cond{})
			return err
		})
		if err != nil {
			return err
		}
		logging.Ctx(ctx).Warn().Str(logging.FieldReason, pk.Reason).Msg("input parked")
	}
	return nil
}

// Commit saves the folds and publishes the open (new or active) alerts
// among them: pending, resolved and dismissed ones are not sent.
func (p *Pipeline) Commit(ctx context.Context, folds []*Fold) (saved []model.Alert, published int, err error) {
	if len(folds) == 0 {
		return nil, 0, nil
	}
	err = p.Retry(ctx, "save alerts", func() error {
		var err error
		saved, err = p.sink.Save(ctx, folds)
		return err
	})
	if err != nil {
		return nil, 0, err
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
