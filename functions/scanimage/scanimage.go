// Package scanimage is the scan-on-push function: an Event Grid trigger
// that takes Azure Container Registry ImagePushed and ImageDeleted events
// (Event Grid or CloudEvents schema), scans pushed images from allowed
// registries, and records the image summary, inventory and findings.
package scanimage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/eventgrid/azsystemevents"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/acrevent"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanevents"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/sentinel"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// Scanner scans one image; *scanner.Scanner is the implementation.
type Scanner interface {
	Scan(ctx context.Context, t scanner.Target) (*scanner.Result, error)
	// CurrentDB describes the vulnerability DB scans match against; it may
	// have to open it first, and fails while it cannot.
	CurrentDB(ctx context.Context) (scanner.DBInfo, error)
}

// Publisher sends events; *scanevents.Publisher is the implementation.
type Publisher interface {
	Publish(ctx context.Context, events []scanevents.Event) error
}

// Intel loads the exploitation feeds findings are annotated with;
// *intel.Source is the implementation.
type Intel interface {
	Load(ctx context.Context) (*intel.Feeds, intel.Status, error)
}

// ImagePublisher sends image scan summaries to Log Analytics;
// *sentinel.Client is the implementation.
type ImagePublisher interface {
	PublishImages(ctx context.Context, scans []sentinel.ImageScan) error
}

// Options are the function's settings (from config.Scan).
type Options struct {
	// Intel, when set, annotates findings with their exploitation data and
	// priority; nil leaves them as the scanner made them.
	Intel Intel
	// Registries is the allowlist of login servers, lower case.
	Registries []string
	// Publisher, when set, receives an ImageScanCompleted event per scan
	// and a CriticalVulnerabilityFound event per new critical finding.
	Publisher Publisher
	// Summaries, when set, receives a summary of each scan, failed scan
	// and deletion (PalisadeFindings_CL).
	Summaries ImagePublisher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Stats counts what the function did since it started.
type Stats struct {
	Scanned, Skipped, Deleted, Ignored, Refused, Failed int64
	// EventsFailed counts events that could not be published.
	EventsFailed int64
	// SummariesFailed counts scan summaries that could not be sent.
	SummariesFailed int64
}

// Name is the function's folder name.
const Name = "scanimage"

// Function handles scanimage invocations.
type Function struct {
	st   store.Store
	sc   Scanner
	opts Options

	scanned, skipped, deleted, ignored, refused, failed, eventsFailed, summariesFailed atomic.Int64
}

// New returns the function.
func New(st store.Store, sc Scanner, opts Options) *Function {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Function{st: st, sc: sc, opts: opts}
}

// Stats returns the counters.
func (f *Function) Stats() Stats {
	return Stats{f.scanned.Load(), f.skipped.Load(), f.deleted.Load(), f.ignored.Load(), f.refused.Load(), f.failed.Load(), f.eventsFailed.Load(), f.summariesFailed.Load()}
}

// permanent are scan failures a retry cannot cure: the image is recorded as
// failed and the event acknowledged, so a hostile image cannot keep the
// function busy through Event Grid's retries.
var permanent = []error{
	scanner.ErrImageNotFound, scanner.ErrNoPlatform, scanner.ErrNotImage, scanner.ErrCorruptLayer,
	scanner.ErrPathTraversal, scanner.ErrTooLarge, scanner.ErrTimeout, scanner.ErrBadTarget,
}

// Handle processes one event.
func (f *Function) Handle(ctx context.Context, req *customhandler.Request) (*customhandler.Response, error) {
	log := logging.Ctx(ctx)
	var raw json.RawMessage
	if err := req.DataJSON("event", &raw); err != nil {
		return nil, err
	}
	ev, err := acrevent.Decode(raw)
	if err != nil {
		return nil, customhandler.BadRequest("%v", err)
	}
	if !ev.IsRegistryImageEvent() {
		f.ignored.Add(1)
		log.Info().Str("event_type", ev.Type).Str("event_id", ev.ID).Msg("event ignored: not an image push or delete")
		return &customhandler.Response{}, nil
	}
	l := log.With().Str(logging.FieldRegistry, ev.Registry).Str(logging.FieldRepository, ev.Repository).
		Str(logging.FieldDigest, ev.Digest).Str("event_id", ev.ID).Logger()
	if !slices.Contains(f.opts.Registries, ev.Registry) {
		f.refused.Add(1)
		l.Warn().Str(logging.FieldReason, "registry not allowed").
			Msgf("event refused: registry %q is not in PALISADE_REGISTRIES; nothing pulled", ev.Registry)
		return &customhandler.Response{}, nil
	}
	if ev.Type == azsystemevents.TypeContainerRegistryImageDeleted {
		gone := model.Image{Digest: ev.Digest, Registry: ev.Registry, Repository: ev.Repository}
		n, err := vulnstore.MarkDeleted(ctx, f.st, gone, ev.Time)
		if err != nil {
			return nil, err
		}
		f.deleted.Add(1)
		gone.Status = model.ImageDeleted
		if stored, err := vulnstore.GetImage(ctx, f.st, ev.Digest); err == nil {
			gone = stored
		}
		f.summarize(ctx, sentinel.ImageScan{Image: gone, Trigger: "delete", At: ev.Time}, l)
		l.Info().Int(logging.FieldCount, n).Msg("image deleted; its findings resolved")
		return &customhandler.Response{}, nil
	}
	return f.push(ctx, ev, l)
}

func (f *Function) push(ctx context.Context, ev acrevent.Event, l zerolog.Logger) (*customhandler.Response, error) {
	db, err := f.sc.CurrentDB(ctx)
	if err != nil {
		return nil, fmt.Errorf("vulnerability DB not ready: %w", err)
	}
	prev, err := vulnstore.Lookup(ctx, f.st, ev.Digest)
	if err != nil {
		return nil, err
	}
	if prev.Found && prev.Image.DBVersion == db.VersionFor(prev.Image) && (prev.Image.Status == model.ImageActive || prev.Image.Status == model.ImageUnsupported) {
		if err := vulnstore.AddTag(ctx, f.st, prev, ev.Tag); err != nil {
			return nil, err
		}
		f.skipped.Add(1)
		l.Info().Str("db_version", prev.Image.DBVersion).Msg("already scanned with this vulnerability DB; skipped")
		return &customhandler.Response{}, nil
	}
	start := f.opts.Now()
	res, err := f.sc.Scan(ctx, scanner.Target{Registry: ev.Registry, Repository: ev.Repository, Digest: ev.Digest, Tag: ev.Tag})
	if err != nil {
		if !isPermanent(err) {
			return nil, err
		}
		f.failed.Add(1)
		ch, rerr := vulnstore.RecordFailed(ctx, f.st, vulnstore.Failure{
			Digest: ev.Digest, Registry: ev.Registry, Repository: ev.Repository, MediaType: ev.MediaType, Tag: ev.Tag,
			Err: err, DBVersion: db.Version, PushedAt: ev.Time, ScannedAt: f.opts.Now(), EventID: ev.ID, Stored: &prev,
		})
		if rerr != nil {
			return nil, rerr
		}
		f.summarize(ctx, sentinel.ImageScan{Image: ch.Image, Trigger: "push", At: ch.Image.ScannedAt}, l)
		l.Error().Err(err).Msg("scan failed; image recorded as failed")
		return &customhandler.Response{}, nil
	}
	img := res.Image
	img.PushedAt, img.PushedUnix, img.LastEventID = ev.Time, ev.Time.Unix(), ev.ID
	img.ScannedAt = f.opts.Now().UTC()
	img.ScannedUnix = img.ScannedAt.Unix()
	if img.MediaType == "" {
		img.MediaType = ev.MediaType
	}
	sc := vulnstore.Scan{Image: img, Inventory: &res.Inventory, Findings: res.Findings, SeenAt: ev.Time, Stored: &prev}
	var status intel.Status
	if f.opts.Intel != nil {
		var feeds *intel.Feeds
		if feeds, status, err = f.opts.Intel.Load(ctx); err != nil {
			return nil, err
		}
		where, err := vulnstore.ReadRunning(ctx, f.st)
		if err != nil {
			return nil, err
		}
		sc.Intel, sc.Running = feeds, where.Has(img.Digest)
		if missing := feeds.Missing(); len(missing) > 0 {
			l = l.With().Strs("missing_feeds", missing).Logger()
		}
	}
	ch, err := vulnstore.Record(ctx, f.st, sc)
	if err != nil {
		return nil, err
	}
	if sc.Intel != nil {
		// A refresh that stored new feeds while this scan recorded the
		// findings with the older ones may have updated them in between.
		feeds, _, err := f.opts.Intel.Load(ctx)
		if err != nil {
			return nil, err
		}
		if sc.Intel != vulnstore.Annotator(feeds) {
			if _, err := vulnstore.Reannotate(ctx, f.st, img.Digest, feeds, sc.Running); err != nil {
				return nil, err
			}
		}
	}
	f.scanned.Add(1)
	if f.opts.Publisher != nil {
		f.publish(ctx, img, ch, ev.Time, l)
	}
	f.summarize(ctx, sentinel.ImageScan{Image: ch.Image, Vulns: ch.Vulns, Trigger: "push", At: img.ScannedAt}, l)
	e := l.Info()
	switch {
	case img.DemoData:
		e = l.Warn().Bool("demo_data", true)
	case scanner.IsWindows(img) && db.Windows.Stale:
		e = l.Warn().Bool("windows_data_stale", true).Strs("windows_data_problems", db.Windows.Problems)
	}
	if status.Stale() {
		e = e.Bool("intel_stale", true)
	}
	e.Str("status", img.Status).Str("os", img.OS).Int("packages", img.Packages).Int(logging.FieldCount, len(res.Findings)).
		Int("new", ch.New).Int("resolved", ch.Resolved).Str("db_version", img.DBVersion).
		Dur(logging.FieldDuration, f.opts.Now().Sub(start)).Msg("image scanned")
	return &customhandler.Response{}, nil
}

// publish sends the scan's events. A failure is counted and logged: the
// findings are stored, and failing the invocation would not help, as the
// redelivered event is skipped as already scanned.
func (f *Function) publish(ctx context.Context, img model.Image, ch vulnstore.Changes, at time.Time, l zerolog.Logger) {
	events := scanevents.ForScan(scanevents.TriggerPush, img, ch.NewFindings, ch.Resolved, at)
	if err := f.opts.Publisher.Publish(ctx, events); err != nil {
		f.eventsFailed.Add(int64(len(events)))
		l.Error().Err(err).Int(logging.FieldCount, len(events)).Msg("events not published")
	}
}

// summarize sends a scan's summary to Log Analytics. As with events, a
// failure is counted and logged: the scan is stored, and a redelivery
// would be skipped as already scanned; the next rescan sends it again.
func (f *Function) summarize(ctx context.Context, s sentinel.ImageScan, l zerolog.Logger) {
	if f.opts.Summaries == nil {
		return
	}
	if err := f.opts.Summaries.PublishImages(ctx, []sentinel.ImageScan{s}); err != nil {
		f.summariesFailed.Add(1)
		l.Error().Err(err).Msg("scan summary not sent to Log Analytics")
	}
}

func isPermanent(err error) bool {
	for _, p := range permanent {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}
