// Package analyzeaudit is the analyzeaudit function: it receives batches of
// AKS kube-audit diagnostic bodies from the audit event hub, applies the
// Kubernetes audit rules, and saves and publishes the resulting alerts.
package analyzeaudit

import (
	"context"
	"fmt"
	"time"

	"github.com/palisade-sec/palisade/shared/audit"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// Name is the function's folder name.
const Name = "analyzeaudit"

// Function handles analyzeaudit invocations.
type Function struct {
	det   *detection.Detector
	rules audit.Analyzer
	pipe  *detection.Pipeline
	now   func() time.Time
}

// Options are the function's settings.
type Options struct {
	// Detection configures the alert folding (window, burst thresholds).
	Detection detection.Options
	// Rules are the audit rules as configured (audit.New: threat
	// intelligence, sensitive ports and names); the zero value has the
	// built-in lists and no threat intelligence.
	Rules audit.Analyzer
	// Retries of a failed store or Sentinel write inside one invocation
	// (0: none), the first after RetryDelay, doubling.
	Retries    int
	RetryDelay time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// New returns the function over st, publishing active alerts to pub (nil:
// store only).
func New(st store.Store, pub detection.Publisher, opts Options) (*Function, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	det, err := detection.NewDetector(opts.Detection)
	if err != nil {
		return nil, fmt.Errorf("analyzeaudit: %w", err)
	}
	return &Function{det: det, rules: opts.Rules, now: opts.Now,
		pipe: detection.NewPipeline(st, pub, det, detection.PipelineOptions{Function: Name, Retries: opts.Retries, RetryDelay: opts.RetryDelay, Now: opts.Now})}, nil
}

// Handle processes one batch of Event Hubs events, each a diagnostic body
// {"records":[…]} whose records hold an audit event as a JSON string. A body
// or record that cannot be decoded is parked and the rest processed.
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
	batch := f.det.NewBatch()
	var counts audit.Counts
	for i, item := range items {
		if positions != nil {
			batch.SetPosition(positions[i])
		}
		bad, err := f.rules.Analyze(batch, item, &counts)
		if err != nil {
			parked = append(parked, detection.NewParked(Name, fmt.Sprintf("event %d of %d: %v", i, len(items), err), string(item), f.now()))
			continue
		}
		for _, r := range bad {
			parked = append(parked, detection.NewParked(Name, fmt.Sprintf("event %d of %d, %s", i, len(items), r.Reason), r.Log, f.now()))
		}
	}
	saved, published, err := f.pipe.Run(ctx, detection.Invocation{Parked: parked, Folds: batch.Folds()})
	if err != nil {
		return nil, err
	}
	events := counts.Events
	msg := fmt.Sprintf("%d hub events, %d audit events, %d parked, %d alerts, %d published, %d records of other categories skipped %v",
		len(items), events, len(parked), len(saved), published, counts.SkippedTotal(), counts.Skipped)
	logging.Ctx(ctx).Info().Int(logging.FieldCount, events).Msg(msg)
	return &customhandler.Response{Outputs: map[string]any{}, Logs: []string{msg}}, nil
}
