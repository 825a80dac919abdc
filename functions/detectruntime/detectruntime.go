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

// Function handles detectruntime invocations.
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
		det:     det,
		base:    detection.NewBaselines(st, det, opts.BaselineLearning, opts.BaselineMaxDestinations, opts.Now),
		sensors: detection.NewSensors(st, opts.Now),
		pipe:    detection.NewPipeline(st, pub, det, detection.PipelineOptions{Function: Name, Retries: opts.Retries, RetryDelay: opts.RetryDelay, Now: opts.Now}),
		now:     opts.Now,
	}, nil
}

// Handle processes one batch. Undecodable events are parked and the rest
// processed; store and Sentinel failures are retried, then fail the
// invocation so that the retry policy redelivers the batch (safe: alert ids
// are deterministic and redelivered events are not counted twice).
func (f *Function) Handle(ctx context.Context, req *customhandler.Request) (*customhandler.Response, error) {
	items, err := req.DataStrings("events")
	if err != nil {
		return nil, err
	}
	var parked []model.Parked
	envs := make([]*model.Envelope, 0, len(items))
	for i, s := range items {
		e, err := detection.DecodeEnvelope([]byte(s))
		if err != nil {
			parked = append(parked, detection.NewParked(Name, fmt.Sprintf("event %d of %d: %v", i, len(items), err), s, f.now()))
			continue
		}
		envs = append(envs, &e)
	}
	if err := f.pipe.Park(ctx, parked); err != nil {
		return nil, err
	}
	if err := f.pipe.Retry(ctx, "record sensor health", func() error { return f.sensors.Observe(ctx, envs) }); err != nil {
		return nil, err
	}
	batch := f.det.NewBatch()
	for _, e := range envs {
		batch.AddEnvelope(e)
	}
	var hits []detection.Hit
	err = f.pipe.Retry(ctx, "update network baselines", func() error {
		var err error
		hits, err = f.base.Observe(ctx, envs)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, h := range hits {
		batch.Add(h)
	}
	saved, published, err := f.pipe.Commit(ctx, batch.Folds())
	if err != nil {
		return nil, err
	}
	msg := fmt.Sprintf("%d events, %d parked, %d alerts, %d published", len(items), len(parked), len(saved), published)
	logging.Ctx(ctx).Info().Int(logging.FieldCount, len(items)).Msg(msg)
	return &customhandler.Response{Outputs: map[string]any{}, Logs: []string{msg}}, nil
}
