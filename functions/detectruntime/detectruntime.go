// Package detectruntime is the detectruntime function: it receives batches
// of sensor envelopes from the runtime event hub, applies the runtime rules
// and network baselines, and saves and publishes the resulting alerts.
package detectruntime

import (
	"context"
	"fmt"
	"time"

	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/statecache"
)

// Name is the function's folder name.
const Name = "detectruntime"

// Options are the function's settings.
type Options struct {
	// Detection configures the rules and alert folding.
	Detection detection.Options
	// BaselineLearning is how long a workload's outbound destinations are
	// learned before others raise an alert; default 24h.
	BaselineLearning time.Duration
	// BaselineMaxDestinations bounds one workload's baseline; default 2000.
	BaselineMaxDestinations int
	// Retries of a failed store or Sentinel write inside one invocation
	// (0: none), the first after RetryDelay, doubling.
	Retries    int
	RetryDelay time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.BaselineLearning == 0 {
		o.BaselineLearning = 24 * time.Hour
	}
	if o.BaselineMaxDestinations <= 0 {
		o.BaselineMaxDestinations = 2000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Function handles detectruntime invocations. It keeps the alerts and
// baselines it touches in memory between invocations (statecache), so one
// Function must serve every invocation of the process; it is safe for
// concurrent invocations (the host runs one a partition at a time).
type Function struct {
	det     *detection.Detector
	base    *detection.Baselines
	sensors *detection.Sensors
	pipe    *detection.Pipeline
	now     func() time.Time
}

// New returns the function over st, publishing active alerts to pub (nil:
// store only).
func New(st store.Store, pub detection.Publisher, opts Options) (*Function, error) {
	opts.defaults()
	det, err := detection.NewDetector(opts.Detection)
	if err != nil {
		return nil, fmt.Errorf("detectruntime: %w", err)
	}
	return &Function{
		det: det,
		base: detection.NewBaselines(st, det, detection.BaselineOptions{
			Learning: opts.BaselineLearning, MaxDestinations: opts.BaselineMaxDestinations, Now: opts.Now,
		}),
		sensors: detection.NewSensors(st, opts.Now),
		pipe:    detection.NewPipeline(st, pub, det, detection.PipelineOptions{Function: Name, Retries: opts.Retries, RetryDelay: opts.RetryDelay, Now: opts.Now}),
		now:     opts.Now,
	}, nil
}

// Handle processes one batch. Undecodable events are parked and the rest
// processed; store and Sentinel failures are retried, then fail the
// invocation so that the retry policy redelivers the batch (safe: alert ids
// are deterministic, and an event already counted, known by its Event Hubs
// position or its id, is not counted again).
func (f *Function) Handle(ctx context.Context, req *customhandler.Request) (*customhandler.Response, error) {
	items, err := req.DataItems("events")
	if err != nil {
		return nil, err
	}
	var positions []detection.Position // nil: unknown, events known by id alone
	if b, ok := req.EventHubBatch(); ok {
		positions = detection.Positions(b.Source(), b.Sequence, b.EnqueuedMs(), len(items))
		if positions == nil {
			logging.Ctx(ctx).Warn().Int(logging.FieldCount, len(items)).
				Msg("the batch's sequence numbers do not fit its events: redeliveries are recognised by event id alone")
		}
	}
	var parked []model.Parked
	envs := make([]*model.Envelope, 0, len(items))
	pos := make([]detection.Position, 0, len(items))
	batch := f.det.NewBatch()
	for i, item := range items {
		e, err := detection.DecodeEnvelope(item)
		if err != nil {
			parked = append(parked, detection.NewParked(Name, fmt.Sprintf("event %d of %d: %v", i, len(items), err), string(item), f.now()))
			continue
		}
		var p detection.Position
		if positions != nil {
			p = positions[i]
		}
		envs, pos = append(envs, &e), append(pos, p)
		batch.SetPosition(p)
		batch.AddEnvelope(&e)
	}
	saved, published, err := f.pipe.Run(ctx, detection.Invocation{
		Parked: parked,
		Folds:  batch.Folds(),
		State: func(ctx context.Context, tx *statecache.Tx) ([]*detection.Fold, error) {
			if err := f.sensors.Stage(ctx, tx, envs); err != nil {
				return nil, err
			}
			hits, err := f.base.Stage(ctx, tx, envs, pos)
			if err != nil || len(hits) == 0 {
				return nil, err
			}
			b := f.det.NewBatch()
			for _, h := range hits {
				b.Add(h)
			}
			return b.Folds(), nil
		},
	})
	if err != nil {
		return nil, err
	}
	msg := fmt.Sprintf("%d events, %d parked, %d alerts, %d published", len(items), len(parked), len(saved), published)
	logging.Ctx(ctx).Info().Int(logging.FieldCount, len(items)).Msg(msg)
	return &customhandler.Response{Outputs: map[string]any{}, Logs: []string{msg}}, nil
}
