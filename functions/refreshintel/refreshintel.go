// Package refreshintel is the daily update of the exploitation feeds: a
// timer function that downloads CISA's KEV catalogue and FIRST's EPSS
// scores (keeping the last good copies when a download fails or does not
// validate), then updates the stored findings of every CVE whose data
// changed, and of every image that started or stopped running, without
// matching anything again (vulnstore.ApplyIntel, through the CVE index).
// A CVE newly listed in KEV that is in an image running in a monitored
// cluster raises an ExploitedVulnerabilityRunning alert per cluster (to the
// store and Sentinel, through the detection pipeline) and a
// Palisade.ExploitedVulnerabilityRunning event. With a VEX folder
// (PALISADE_VEX_DIR), each run first stores its documents (vex.SyncDir:
// new and changed files, withdrawing those of files gone) and adds the
// vulnerabilities they change to the pending changes, so the findings they
// suppress or bring back are updated like those of a feed change. Each run
// stores a record with the feeds' state; a run cut short leaves the changes
// pending, and the next run applies them again (idempotently).
package refreshintel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanevents"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vex"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// Name is the function's folder name.
const Name = "refreshintel"

// AlertType is the alert raised for a newly listed CVE running in a
// cluster.
const AlertType = "ExploitedVulnerabilityRunning"

// Source keeps the feeds; *intel.Source is the implementation.
type Source interface {
	Refresh(ctx context.Context) (intel.Status, error)
	Load(ctx context.Context) (*intel.Feeds, intel.Status, error)
	Pending(ctx context.Context) (intel.Changes, string, error)
	ClearPending(ctx context.Context, etag string) (bool, error)
	AddPending(ctx context.Context, c intel.Changes) error
}

// VEXFolder stores the VEX documents of a folder; *vex.Store is the
// implementation.
type VEXFolder interface {
	SyncDir(ctx context.Context, dir string) (vex.DirResult, error)
}

// Alerts saves folded alerts and sends them on; *detection.Pipeline is the
// implementation.
type Alerts interface {
	Commit(ctx context.Context, folds []*detection.Fold) ([]model.Alert, int, error)
}

// Publisher sends events; *scanevents.Publisher is the implementation.
type Publisher interface {
	Publish(ctx context.Context, events []scanevents.Event) error
}

// Options are the function's settings.
type Options struct {
	// MaxDuration bounds the update of stored findings; 0 means 8m.
	MaxDuration time.Duration
	// DeadlineMargin: the update stops this close to the invocation's
	// deadline; 0 means 30s.
	DeadlineMargin time.Duration
	// Workers update this many images at once; 0 means 4.
	Workers int
	// VEXDir is the folder of VEX documents read on every run, "" for
	// none; VEX stores them (needed with VEXDir).
	VEXDir string
	VEX    VEXFolder
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.MaxDuration <= 0 {
		o.MaxDuration = 8 * time.Minute
	}
	if o.DeadlineMargin <= 0 {
		o.DeadlineMargin = 30 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Function handles refreshintel invocations.
type Function struct {
	st     store.Store
	src    Source
	det    *detection.Detector
	alerts Alerts
	pub    Publisher // nil: no events
	opts   Options

	running sync.Mutex // one run per process; the host runs timers as singletons
}

// New returns the function. pub may be nil.
func New(st store.Store, src Source, det *detection.Detector, alerts Alerts, pub Publisher, opts Options) *Function {
	opts.defaults()
	return &Function{st: st, src: src, det: det, alerts: alerts, pub: pub, opts: opts}
}

// Handle runs one refresh.
func (f *Function) Handle(ctx context.Context, _ *customhandler.Request) (*customhandler.Response, error) {
	log := logging.Ctx(ctx)
	if !f.running.TryLock() {
		log.Info().Msg("a refresh is already running in this instance; this invocation does nothing")
		return &customhandler.Response{}, nil
	}
	defer f.running.Unlock()
	run, err := f.Run(ctx)
	if err != nil {
		return nil, err
	}
	e := log.Info()
	if run.EventsFailed > 0 || !run.Complete {
		e = log.Warn()
	}
	e.Str("run", run.ID).Bool("complete", run.Complete).Bool("all", run.All).Int("changed", run.Changed).
		Int("kev_added", run.KEVAdded).Int("images", run.Images).Int("checked", run.Checked).Int("updated", run.Updated).
		Int("running_changed", run.RunningChanged).Int("alerts", run.Alerts).Int("events_failed", run.EventsFailed).
		Int64(logging.FieldDuration, run.DurationMs).Msg("exploitation feeds refreshed")
	return &customhandler.Response{}, nil
}

// Run refreshes the feeds, applies what changed to the stored findings,
// raises the alerts and events of newly listed CVEs running in a cluster,
// and stores the run's record.
func (f *Function) Run(ctx context.Context) (model.IntelRun, error) {
	log := logging.Ctx(ctx)
	start := f.opts.Now()
	run := model.IntelRun{ID: model.HashID(model.KindIntelRun, start.UTC().Format(time.RFC3339Nano)), StartedAt: start.UTC()}
	if _, err := f.src.Refresh(ctx); err != nil {
		return run, fmt.Errorf("refresh the exploitation feeds: %w", err)
	}
	if err := f.syncVEX(ctx, &run); err != nil {
		return run, err
	}
	feeds, status, err := f.src.Load(ctx)
	if err != nil {
		return run, fmt.Errorf("load the exploitation feeds: %w", err)
	}
	run.Feeds = []model.FeedReport{status.KEV.Report(), status.EPSS.Report()}
	reportFeeds(log, feeds, status)
	pending, etag, err := f.src.Pending(ctx)
	if err != nil {
		return run, fmt.Errorf("read the feed changes: %w", err)
	}
	run.All, run.Changed, run.KEVAdded = pending.All, len(pending.CVEs), len(pending.KEVAdded)
	where, err := vulnstore.ReadRunning(ctx, f.st)
	if err != nil {
		return run, err
	}

	hits := &kevHits{added: map[string]bool{}, found: map[hitKey][]model.Finding{}}
	for _, c := range pending.KEVAdded {
		hits.added[c] = true
	}
	applyCtx, cancel := f.budget(ctx)
	defer cancel()
	res, err := vulnstore.ApplyIntel(applyCtx, f.st, vulnstore.IntelUpdate{
		Intel: feeds, Running: where.Has, All: pending.All, CVEs: pending.CVEs, Visit: hits.visit, Workers: f.opts.Workers, Now: f.opts.Now,
	})
	run.Images, run.Checked, run.Updated, run.Conflicts, run.RunningChanged = res.Images, res.Checked, res.Updated, res.Conflicts, res.RunningChanged
	cut := err != nil && applyCtx.Err() != nil && ctx.Err() == nil
	if err != nil && !cut {
		return run, err
	}
	detected := pending.DetectedAt
	if detected.IsZero() {
		detected = start.UTC()
	}
	alerts, events := f.raise(hits, where, feeds, detected)
	if len(alerts) > 0 {
		saved, _, err := f.alerts.Commit(ctx, alerts)
		if err != nil {
			return run, fmt.Errorf("save exploited-vulnerability alerts: %w", err)
		}
		run.Alerts = len(saved)
	}
	if f.pub != nil && len(events) > 0 {
		if err := f.pub.Publish(ctx, events); err != nil {
			run.EventsFailed = len(events)
			log.Error().Err(err).Int(logging.FieldCount, len(events)).Msg("exploited-vulnerability events not published")
		} else {
			run.EventsPublished = len(events)
		}
	}
	if cut {
		log.Warn().Int("updated", run.Updated).Msg("the update of stored findings stopped at its time budget; the next run applies the changes again")
	} else {
		cleared, err := f.src.ClearPending(ctx, etag)
		if err != nil {
			return run, err
		}
		run.Complete = cleared
		if !cleared {
			log.Info().Msg("the feeds changed again during this run; the next run applies those changes")
		}
	}
	run.FinishedAt = f.opts.Now().UTC()
	run.DurationMs = run.FinishedAt.Sub(start).Milliseconds()
	return run, f.putRun(ctx, run)
}

// syncVEX stores the documents of the VEX folder and records the
// vulnerabilities they changed as pending. A folder that cannot be read
// is logged and changes nothing: no statement is withdrawn for it.
func (f *Function) syncVEX(ctx context.Context, run *model.IntelRun) error {
	if f.opts.VEXDir == "" || f.opts.VEX == nil {
		return nil
	}
	log := logging.Ctx(ctx)
	res, err := f.opts.VEX.SyncDir(ctx, f.opts.VEXDir)
	run.VEXStored, run.VEXRemoved, run.VEXBad = res.Stored, res.Removed, len(res.Bad)
	for _, bad := range res.Bad {
		log.Error().Str("vex_dir", f.opts.VEXDir).Str(logging.FieldReason, bad).Msg("VEX document refused; the copy stored before, if any, stays in force")
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			log.Error().Err(err).Str("vex_dir", f.opts.VEXDir).Msg("the VEX folder cannot be read; the stored statements stay in force")
			return nil
		}
		return fmt.Errorf("store the VEX folder's documents: %w", err)
	}
	cves, others := res.CVEs()
	if len(cves) == 0 && !others {
		return nil
	}
	if err := f.src.AddPending(ctx, intel.Changes{CVEs: cves, All: others}); err != nil {
		return fmt.Errorf("record the VEX changes: %w", err)
	}
	log.Info().Int("stored", res.Stored).Int("removed", res.Removed).Strs("vulnerabilities", res.Vulnerabilities).Msg("VEX statements changed")
	return nil
}

// budget is the context of the update of stored findings: MaxDuration,
// and no closer than DeadlineMargin to the invocation's deadline.
func (f *Function) budget(ctx context.Context) (context.Context, context.CancelFunc) {
	limit := f.opts.MaxDuration
	if dl, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(dl)-f.opts.DeadlineMargin)
	}
	return context.WithTimeout(ctx, max(limit, time.Second))
}

// reportFeeds says plainly what the findings are prioritised with.
func reportFeeds(log *zerolog.Logger, feeds *intel.Feeds, status intel.Status) {
	if missing := feeds.Missing(); len(missing) > 0 {
		names := make([]string, len(missing))
		for i, m := range missing {
			names[i] = strings.ToUpper(m)
		}
		log.Warn().Strs("missing_feeds", missing).Strs("problems", status.Problems()).
			Msg("NO EXPLOITATION FEED for " + strings.Join(names, " and ") + ": findings are prioritised without it (severity, fix and running state only); see the feed problems")
		return
	}
	if status.Stale() {
		log.Warn().Strs("problems", status.Problems()).Msg("exploitation feeds are STALE: the last good copies are in use")
	}
}

// hitKey is one newly listed CVE in one image.
type hitKey struct{ digest, cve string }

// kevHits collects the open findings of newly listed CVEs in running
// images, as the update visits them.
type kevHits struct {
	added map[string]bool
	mu    sync.Mutex
	found map[hitKey][]model.Finding
}

func (h *kevHits) visit(_ context.Context, f model.Finding, running bool) error {
	cve := f.CVE()
	if !running || f.KEV == nil || f.Suppressed != nil || !h.added[cve] {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	k := hitKey{f.Digest, cve}
	if !slices.ContainsFunc(h.found[k], func(o model.Finding) bool { return o.ID == f.ID }) {
		h.found[k] = append(h.found[k], f)
	}
	return nil
}

// raise makes one alert (fold) and one event per (cluster, image, CVE).
// Event ids are the same for the same listing, so a run repeated after a
// cut adds nothing to the alert and subscribers can drop the event.
func (f *Function) raise(h *kevHits, where vulnstore.Running, feeds *intel.Feeds, detected time.Time) ([]*detection.Fold, []scanevents.Event) {
	keys := make([]hitKey, 0, len(h.found))
	for k := range h.found {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b hitKey) int { return strings.Compare(a.digest+a.cve, b.digest+b.cve) })
	batch := f.det.NewBatch()
	var events []scanevents.Event
	for _, k := range keys {
		fs := h.found[k]
		slices.SortFunc(fs, func(a, b model.Finding) int { return strings.Compare(a.ID, b.ID) })
		first := fs[0]
		entry, _ := feeds.KEV.Lookup(k.cve)
		var pkgs, ids []string
		fixed := ""
		for _, fd := range fs {
			pkgs = append(pkgs, fd.PkgName+" "+fd.InstalledVersion)
			ids = append(ids, fd.ID)
			if fixed == "" {
				fixed = fd.FixedVersion
			}
		}
		ref := first.Registry + "/" + first.Repository + "@" + k.digest
		if first.Registry == "" {
			ref = k.digest
		}
		for _, in := range where[k.digest] {
			ev := map[string]string{
				"cve": k.cve, "vulnerabilityName": entry.Name, "kevDateAdded": first.KEV.DateAdded, "kevDueDate": first.KEV.DueDate,
				"knownRansomwareCampaignUse": first.KEV.KnownRansomwareCampaignUse, "requiredAction": entry.RequiredAction,
				"packages": strings.Join(pkgs, ", "), "workloads": strings.Join(in.Workloads, ", "), "priority": string(first.Priority),
				"summary": fmt.Sprintf("%s is exploited in the wild (CISA KEV since %s) and is running in cluster %s: image %s, workloads %s.",
					k.cve, first.KEV.DateAdded, in.Cluster, ref, strings.Join(in.Workloads, ", ")),
			}
			if fixed != "" {
				ev["fixedVersion"] = fixed
			}
			if first.EPSS != nil {
				ev["epss"] = fmt.Sprintf("%.5f (percentile %.5f, %s)", first.EPSS.Score, first.EPSS.Percentile, first.EPSS.Date)
			}
			sev := model.SeverityHigh
			if first.KEV.Ransomware() || first.Severity == model.SeverityCritical {
				sev = model.SeverityCritical
			}
			hit := detection.Hit{
				Type: AlertType, Key: k.cve, Cluster: in.Cluster, Entity: ref, Image: in.Image, ImageDigest: k.digest,
				EventID: model.HashID(AlertType, in.Cluster, k.digest, k.cve, first.KEV.DateAdded), Time: detected.UnixNano(),
				Severity: sev, Evidence: ev,
			}
			if len(in.Workloads) > 0 {
				hit.Workload = in.Workloads[0]
				if parts := strings.SplitN(in.Workloads[0], "/", 3); len(parts) == 3 {
					hit.Namespace = parts[1]
				}
			}
			batch.Add(hit)
			events = append(events, scanevents.ForExploited(scanevents.ExploitedRunning{
				Cluster: in.Cluster, Digest: k.digest, Registry: first.Registry, Repository: first.Repository, Image: in.Image,
				Workloads: in.Workloads, CVE: k.cve, Name: entry.Name, KEV: *first.KEV, EPSS: first.EPSS, Findings: ids,
				Packages: pkgs, FixedVersion: fixed, Priority: first.Priority, DetectedAt: detected,
			}))
		}
	}
	return batch.Folds(), events
}

// putRun stores the run's record, and a copy as the latest.
func (f *Function) putRun(ctx context.Context, run model.IntelRun) error {
	raw, err := json.Marshal(run)
	if err != nil {
		return fmt.Errorf("encode intel run: %w", err)
	}
	for _, id := range []string{model.HashID(model.KindIntelRun, run.ID), model.IntelRunLatestID} {
		s := model.State{ID: id, Kind: model.KindIntelRun, UpdatedAt: run.FinishedAt, Data: raw}
		if _, err := f.st.Put(ctx, store.State, model.KindIntelRun, id, s, store.Cond{}); err != nil {
			return fmt.Errorf("store intel run %s: %w", run.ID, err)
		}
	}
	return nil
}

// LatestRun reads the latest run's record; found is false before the
// first run.
func LatestRun(ctx context.Context, st store.Store) (run model.IntelRun, found bool, err error) {
	var s model.State
	_, err = st.Get(ctx, store.State, model.KindIntelRun, model.IntelRunLatestID, &s)
	if errors.Is(err, store.ErrNotFound) {
		return run, false, nil
	}
	if err != nil {
		return run, false, fmt.Errorf("read the latest intel run: %w", err)
	}
	if err := json.Unmarshal(s.Data, &run); err != nil {
		return run, false, fmt.Errorf("decode the latest intel run: %w", err)
	}
	return run, true, nil
}
