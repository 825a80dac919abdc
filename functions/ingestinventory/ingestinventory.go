// Package ingestinventory is the ingestinventory function: it receives
// batches of palisade-agent messages from the inventory event hub
// (dataType binary: the agent compresses them), keeps each cluster's latest
// complete snapshot (shared/snapshots), its running-image set
// (shared/runningimages), the remediations the agent reports, and the
// decisions of its admission webhook (shared/gate), a denial also raising a
// Low GatedDeploymentDenied alert (stored, and sent to Sentinel when it is
// on).
//
// The host checkpoints a batch whether or not the invocation succeeds, so:
// a message that cannot be decoded, or a snapshot that cannot be
// assembled, is parked with the reason; a store failure fails the
// invocation, and the retry policy in function.json delivers the batch
// again, which is safe because every write is keyed by the message's
// content. A message lost even so is repaired by the agent's next full
// snapshot (every PALISADE_AGENT_RESYNC).
package ingestinventory

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/gatestore"
	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/runningimages"
	"github.com/palisade-sec/palisade/shared/snapshots"
	"github.com/palisade-sec/palisade/shared/store"
)

// Name is the function's folder name.
const Name = "ingestinventory"

// Options are the function's settings.
type Options struct {
	// HistoryDays is how long the remediation records agents report are
	// kept (PALISADE_POSTURE_HISTORY_DAYS); 0 keeps them forever.
	HistoryDays int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Detection configures the alerts denied admissions raise (window,
	// TTL); Publisher sends them to Sentinel (nil: not sent).
	Detection detection.Options
	Publisher detection.Publisher
}

// Function handles ingestinventory invocations.
type Function struct {
	st     store.Store
	snaps  *snapshots.Store
	now    func() time.Time
	det    *detection.Detector
	alerts *detection.Pipeline
	detErr error
	days   int
}

// New returns the function over st.
func New(st store.Store, opts Options) *Function {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f := &Function{st: st, snaps: snapshots.New(st, snapshots.Options{Now: opts.Now}), now: opts.Now, days: opts.HistoryDays}
	// The same options already passed detectruntime's check; an error is
	// reported by the first denial that needs an alert.
	f.det, f.detErr = detection.NewDetector(opts.Detection)
	if f.detErr == nil {
		f.alerts = detection.NewPipeline(st, opts.Publisher, f.det, detection.PipelineOptions{Function: Name, Retries: 2, RetryDelay: 200 * time.Millisecond, Now: opts.Now})
	}
	return f
}

// Summary counts what one invocation did, by outcome.
type Summary struct {
	Messages  int            `json:"messages"`
	Outcomes  map[string]int `json:"outcomes"`
	Completed []string       `json:"completed,omitempty"` // cluster@generation
	NewImages int            `json:"newImages"`
	Parked    int            `json:"parked"`
}

// Handle processes one batch, in the order the partition delivered it.
func (f *Function) Handle(ctx context.Context, req *customhandler.Request) (*customhandler.Response, error) {
	bodies, err := req.DataBinaries("events")
	if err != nil {
		return nil, err
	}
	sum := Summary{Messages: len(bodies), Outcomes: map[string]int{}}
	for i, body := range bodies {
		reason, err := f.take(ctx, body, &sum)
		if err != nil {
			return nil, fmt.Errorf("message %d of %d: %w", i+1, len(bodies), err)
		}
		if reason != "" {
			if err := f.park(ctx, fmt.Sprintf("message %d of %d: %s", i+1, len(bodies), reason), body); err != nil {
				return nil, err
			}
			sum.Parked++
		}
	}
	outcomes := slices.Sorted(maps.Keys(sum.Outcomes))
	var parts []string
	for _, o := range outcomes {
		parts = append(parts, fmt.Sprintf("%d %s", sum.Outcomes[o], o))
	}
	msg := fmt.Sprintf("%d inventory messages: %s; %d parked, %d new running images", len(bodies), strings.Join(parts, ", "), sum.Parked, sum.NewImages)
	logging.Ctx(ctx).Info().Int(logging.FieldCount, len(bodies)).Strs("completed", sum.Completed).Msg(msg)
	return &customhandler.Response{Outputs: map[string]any{}, Logs: []string{msg}, ReturnValue: sum}, nil
}

// take handles one message. It returns a reason to park it, or an error
// that must fail the invocation (the store failed).
func (f *Function) take(ctx context.Context, body []byte, sum *Summary) (park string, err error) {
	e, err := inventory.Decode(body)
	if err != nil {
		return err.Error(), nil
	}
	log := logging.Ctx(ctx).With().Str(logging.FieldCluster, e.Cluster).Logger()
	switch e.Kind {
	case inventory.KindSnapshot, inventory.KindChanges, inventory.KindHeartbeat:
	case inventory.KindRemediation:
		for _, rec := range e.Remediations {
			rec.Cluster = e.Cluster // an agent speaks for its own cluster only
			if err := posture.RecordRemediation(ctx, f.st, rec, f.days); err != nil {
				return "", err
			}
		}
		sum.Outcomes[inventory.KindRemediation] += len(e.Remediations)
		return "", nil
	case inventory.KindAdmission:
		return "", f.admissions(ctx, e, sum)
	default:
		return fmt.Sprintf("%s message %s: this version of ingestinventory does not handle kind %q", e.Kind, e.ID, e.Kind), nil
	}
	res, err := f.snaps.Take(ctx, e, body)
	if errors.Is(err, snapshots.ErrBroken) {
		return err.Error(), nil
	}
	if err != nil {
		return "", err
	}
	sum.Outcomes[res.Outcome]++
	now := f.now().UTC()
	switch res.Outcome {
	case snapshots.Completed:
		imgs := inventory.RunningImages(&res.Snapshot.Objects)
		if _, err := runningimages.Write(ctx, f.st, e.Cluster, imgs, now); err != nil {
			return "", err
		}
		sum.Completed = append(sum.Completed, fmt.Sprintf("%s@%d", e.Cluster, e.Generation))
		log.Info().Int64("generation", e.Generation).Int("parts", res.Snapshot.Head.Parts).
			Int(logging.FieldCount, res.Snapshot.Head.Objects).Int("images", len(imgs)).Msg("snapshot complete")
	case snapshots.Applied:
		if len(res.Changed.Pods) > 0 {
			n, err := runningimages.Add(ctx, f.st, e.Cluster, inventory.RunningImages(res.Changed), now)
			if err != nil {
				return "", err
			}
			sum.NewImages += n
		}
	}
	return "", nil
}

// admissions stores an agent's admission decisions and raises an alert
// for each denial.
func (f *Function) admissions(ctx context.Context, e *inventory.Envelope, sum *Summary) error {
	var b *detection.Batch
	for _, a := range e.Admissions {
		a.Cluster = e.Cluster // an agent speaks for its own cluster only
		a.ID = model.HashID(a.Cluster, a.UID)
		if err := gatestore.RecordAdmission(ctx, f.st, a); err != nil {
			return err
		}
		h, ok := detection.AdmissionHit(a)
		if !ok {
			continue
		}
		if f.detErr != nil {
			return fmt.Errorf("alert for a denied admission: %w", f.detErr)
		}
		if b == nil {
			b = f.det.NewBatch()
		}
		b.Add(h)
	}
	sum.Outcomes[inventory.KindAdmission] += len(e.Admissions)
	if b == nil {
		return nil
	}
	saved, _, err := f.alerts.Commit(ctx, b.Folds())
	sum.Outcomes["admission-alerts"] += len(saved)
	return err
}

// park sets an unusable message aside with the reason: its body, base64
// when compressed, truncated.
func (f *Function) park(ctx context.Context, reason string, body []byte) error {
	sample := string(body)
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
		sample = "base64:" + base64.StdEncoding.EncodeToString(body[:min(len(body), 1500)])
	}
	pk := detection.NewParked(Name, reason, sample, f.now().UTC())
	if _, err := f.st.Put(ctx, store.State, model.KindParked, pk.ID, pk, store.Cond{}); err != nil {
		return fmt.Errorf("park message: %w", err)
	}
	logging.Ctx(ctx).Warn().Str(logging.FieldReason, reason).Msg("inventory message parked")
	return nil
}
