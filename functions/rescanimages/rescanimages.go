// Package rescanimages is the scheduled rescan: a timer function that keeps
// the findings of every active image current as new vulnerabilities are
// published. It refreshes the vulnerability DB (at most every DBMaxAge),
// then re-matches the stored package inventory of each active image (pushed
// within the window, or running in a monitored cluster, and not deleted)
// against it, without pulling any layer, and records what appeared and what
// was fixed. It works page by page with a cursor in the state container, so
// a run cut short by the Functions timeout resumes where it stopped.
package rescanimages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanevents"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// Name is the function's folder name.
const Name = "rescanimages"

// Scanner re-matches inventories and manages the DB; *scanner.Scanner and
// *scanner.Lazy are implementations.
type Scanner interface {
	Match(ctx context.Context, img model.Image, inv model.Inventory) (*scanner.Match, error)
	RefreshDB(ctx context.Context) (scanner.DBInfo, error)
	CurrentDB(ctx context.Context) (scanner.DBInfo, error)
}

// Publisher sends events; *scanevents.Publisher is the implementation.
type Publisher interface {
	Publish(ctx context.Context, events []scanevents.Event) error
}

// Options are the function's settings (from config.Rescan).
type Options struct {
	// WindowDays: images pushed within this many days are active; 0 means 30.
	WindowDays int
	// DBMaxAge: the DB is refreshed at most this often; 0 means 12h.
	DBMaxAge time.Duration
	// PageSize is the images read per page; 0 means 100.
	PageSize int
	// MaxDuration: no new image is taken after this long; 0 means 8m.
	MaxDuration time.Duration
	// DeadlineMargin: no new image is taken this close to the invocation's
	// deadline; 0 means 30s.
	DeadlineMargin time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// OptionsFromConfig maps the settings.
func OptionsFromConfig(c config.Rescan, now func() time.Time) Options {
	return Options{WindowDays: c.WindowDays, DBMaxAge: c.DBMaxAge, PageSize: c.PageSize, MaxDuration: c.MaxDuration, Now: now}
}

func (o *Options) defaults() {
	if o.WindowDays <= 0 {
		o.WindowDays = 30
	}
	if o.DBMaxAge <= 0 {
		o.DBMaxAge = 12 * time.Hour
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 8 * time.Minute
	}
	if o.DeadlineMargin <= 0 {
		o.DeadlineMargin = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Function handles rescanimages invocations.
type Function struct {
	st   store.Store
	sc   Scanner
	pub  Publisher // nil: no events
	opts Options

	// running admits one run per process; the host runs timers as
	// singletons across instances, and the cursor's ETag catches the rest.
	running sync.Mutex

	refreshMu   sync.Mutex
	lastRefresh time.Time
}

// New returns the function. pub may be nil.
func New(st store.Store, sc Scanner, pub Publisher, opts Options) *Function {
	opts.defaults()
	return &Function{st: st, sc: sc, pub: pub, opts: opts}
}

// errBudget stops a run that has used its time; the cursor is kept.
var errBudget = errors.New("time budget used")

// Handle runs (or resumes) a rescan.
func (f *Function) Handle(ctx context.Context, req *customhandler.Request) (*customhandler.Response, error) {
	log := logging.Ctx(ctx)
	if !f.running.TryLock() {
		log.Info().Msg("a rescan is already running in this instance; this invocation does nothing")
		return &customhandler.Response{}, nil
	}
	defer f.running.Unlock()
	run, err := f.Run(ctx)
	if err != nil {
		return nil, err
	}
	e := log.Info()
	if run.DBDownloadError != "" || run.Failed > 0 || run.EventsFailed > 0 {
		e = log.Warn()
	}
	e.Str("run", run.ID).Bool("complete", run.Complete).Int("checked", run.Checked).Int("rescanned", run.Rescanned).
		Int("skipped", run.Skipped).Int("changed", run.Changed).Int("new", run.New).Int("fixed", run.Fixed).
		Int("no_inventory", run.NoInventory).Int("failed", run.Failed).Str("db_version", run.DBVersion).
		Bool("demo_data", run.DemoData).Str("db_download_error", run.DBDownloadError).
		Int64(logging.FieldDuration, run.DurationMs).Msg("rescan")
	return &customhandler.Response{}, nil
}

// Run does one invocation's share of the current rescan run and returns
// the run's record as it stands.
func (f *Function) Run(ctx context.Context) (model.RescanRun, error) {
	log := logging.Ctx(ctx)
	start := f.opts.Now()
	db, err := f.refreshDB(ctx)
	if err != nil {
		return model.RescanRun{}, err
	}
	cur, etag, err := f.loadCursor(ctx)
	if err != nil {
		return model.RescanRun{}, err
	}
	if cur == nil || cur.Phase == model.RescanPhaseDone || cur.Run.DBVersion != db.Version {
		if cur != nil && cur.Phase != model.RescanPhaseDone {
			log.Info().Str("run", cur.Run.ID).Msg("the vulnerability DB changed during an unfinished rescan; starting a new run")
		}
		cur = &model.RescanCursor{
			Run:             model.RescanRun{ID: model.HashID("rescan-run", start.UTC().Format(time.RFC3339Nano)), StartedAt: start.UTC(), DBVersion: db.Version, DemoData: db.Demo},
			WindowStartUnix: start.Add(-time.Duration(f.opts.WindowDays) * 24 * time.Hour).Unix(),
			Phase:           model.RescanPhasePushed,
		}
	}
	cur.Run.Invocations++
	cur.Run.DBDownloadError = db.DownloadError
	if db.Demo {
		log.Warn().Bool("demo_data", true).Msg("rescanning against the built-in DEMO vulnerability DB: results are demo data")
	}
	w := &walk{f: f, cur: cur, etag: etag, db: db, start: start, log: log}
	walkErr := w.run(ctx)
	cur.Run.DurationMs += f.opts.Now().Sub(start).Milliseconds()
	if walkErr == nil {
		cur.Phase, cur.Page, cur.After = model.RescanPhaseDone, "", ""
		cur.Run.Complete, cur.Run.FinishedAt = true, f.opts.Now().UTC()
	}
	if walkErr != nil && !errors.Is(walkErr, errBudget) {
		// Keep what was done; the store may be what failed, so this is
		// best effort and the walk's error is the one returned.
		_ = w.save(context.WithoutCancel(ctx))
		_ = f.putRun(context.WithoutCancel(ctx), cur.Run)
		return cur.Run, walkErr
	}
	if err := w.save(ctx); err != nil {
		return cur.Run, err
	}
	if err := f.putRun(ctx, cur.Run); err != nil {
		return cur.Run, err
	}
	if errors.Is(walkErr, errBudget) {
		log.Info().Str("run", cur.Run.ID).Str("phase", cur.Phase).Msg("rescan stopped at its time budget; the next run resumes from the cursor")
	}
	return cur.Run, nil
}

// refreshDB refreshes the DB when the last refresh in this instance is at
// least DBMaxAge old; concurrent invocations wait for one refresh.
func (f *Function) refreshDB(ctx context.Context) (scanner.DBInfo, error) {
	f.refreshMu.Lock()
	defer f.refreshMu.Unlock()
	now := f.opts.Now()
	if !f.lastRefresh.IsZero() && now.Sub(f.lastRefresh) < f.opts.DBMaxAge {
		db, err := f.sc.CurrentDB(ctx)
		if err != nil {
			return db, fmt.Errorf("vulnerability DB not ready: %w", err)
		}
		return db, nil
	}
	db, err := f.sc.RefreshDB(ctx)
	if err != nil {
		// Nothing usable was prepared; the DB in use (if any) stays.
		cur, cerr := f.sc.CurrentDB(ctx)
		if cerr != nil {
			return cur, fmt.Errorf("vulnerability DB not ready: %w", errors.Join(err, cerr))
		}
		db = cur
		db.DownloadError = err.Error()
	}
	f.lastRefresh = now
	if db.DownloadError != "" {
		logging.Ctx(ctx).Warn().Str("db_version", db.Version).Str("error", db.DownloadError).
			Msg("vulnerability DB refresh failed; rescanning with the last good DB")
	}
	return db, nil
}

func (f *Function) loadCursor(ctx context.Context) (*model.RescanCursor, string, error) {
	var s model.State
	etag, err := f.st.Get(ctx, store.State, model.KindRescanCursor, model.RescanCursorID, &s)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read rescan cursor: %w", err)
	}
	var c model.RescanCursor
	if err := json.Unmarshal(s.Data, &c); err != nil {
		// A cursor this code cannot read starts a new run rather than
		// stopping every rescan; its ETag still guards the overwrite.
		logging.Ctx(ctx).Warn().Err(err).Msg("rescan cursor unreadable; starting a new run")
		return nil, etag, nil
	}
	return &c, etag, nil
}

func (f *Function) putRun(ctx context.Context, run model.RescanRun) error {
	raw, err := json.Marshal(run)
	if err != nil {
		return fmt.Errorf("encode rescan run: %w", err)
	}
	id := model.HashID(model.KindRescanRun, run.ID)
	s := model.State{ID: id, Kind: model.KindRescanRun, UpdatedAt: f.opts.Now().UTC(), Data: raw}
	if _, err := f.st.Put(ctx, store.State, model.KindRescanRun, id, s, store.Cond{}); err != nil {
		return fmt.Errorf("store rescan run %s: %w", run.ID, err)
	}
	return nil
}

// walk is one invocation's pass over the active set.
type walk struct {
	f     *Function
	cur   *model.RescanCursor
	etag  string
	db    scanner.DBInfo
	start time.Time
	log   *zerolog.Logger
}

func (w *walk) run(ctx context.Context) error {
	if w.cur.Phase == model.RescanPhasePushed {
		if err := w.pushed(ctx); err != nil {
			return err
		}
		w.cur.Phase, w.cur.Page, w.cur.After = model.RescanPhaseRunning, "", ""
		if err := w.save(ctx); err != nil {
			return err
		}
	}
	if w.cur.Phase == model.RescanPhaseRunning {
		return w.running(ctx)
	}
	return nil
}

// pushed walks the images pushed within the window that are not deleted.
func (w *walk) pushed(ctx context.Context) error {
	q := store.Query{
		Filters: []store.Filter{
			{Field: "pushedUnix", Op: store.Ge, Value: w.cur.WindowStartUnix},
			{Field: "status", Op: store.Ne, Value: model.ImageDeleted},
		},
		Limit: w.f.opts.PageSize,
	}
	return w.pages(ctx, store.Images, q, func(raw json.RawMessage) (string, error) {
		var img model.Image
		if err := json.Unmarshal(raw, &img); err != nil {
			return "", fmt.Errorf("decode image: %w", err)
		}
		return img.Digest, w.image(ctx, img)
	})
}

// running walks the running-image inventories of the monitored clusters,
// one chunk (at most 1000 images) per page, leaving out images the pushed
// phase covered and deleted ones.
func (w *walk) running(ctx context.Context) error {
	q := store.Query{PartitionKey: model.KindRunningImages, Limit: 1}
	return w.pages(ctx, store.State, q, func(raw json.RawMessage) (string, error) {
		var s model.State
		var ri model.RunningImages
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("decode running images: %w", err)
		}
		if err := json.Unmarshal(s.Data, &ri); err != nil {
			return "", fmt.Errorf("decode running images %s: %w", s.ID, err)
		}
		// Resuming inside a chunk: skip the images done before.
		images := ri.Images
		if w.cur.After != "" {
			if i := slices.IndexFunc(images, func(r model.RunningImage) bool { return s.ID+"/"+r.Digest == w.cur.After }); i >= 0 {
				images = images[i+1:]
			}
		}
		for _, r := range images {
			if err := w.budget(ctx); err != nil {
				return "", err
			}
			if err := w.runningImage(ctx, r.Digest); err != nil {
				return "", err
			}
			w.cur.After = s.ID + "/" + r.Digest
		}
		return s.ID + "/", nil
	})
}

// pages runs fn on each item of q from the cursor on; fn returns the
// item's position key. The cursor is saved after each page.
func (w *walk) pages(ctx context.Context, c store.Container, q store.Query, fn func(json.RawMessage) (string, error)) error {
	q.Continuation = w.cur.Page
	for {
		page, err := w.f.st.Query(ctx, c, q)
		if err != nil {
			return fmt.Errorf("rescan: read %s: %w", c, err)
		}
		items := page.Items
		after := w.cur.After
		for i, raw := range items {
			if after != "" {
				key, ok := itemKey(raw, c)
				if ok && key == after {
					items, after = items[i+1:], ""
					break
				}
			}
		}
		if after != "" {
			// The last image done is gone from the page (or is inside
			// a running-images chunk, which fn resumes): take it all.
			items = page.Items
		}
		for _, raw := range items {
			if c == store.Images {
				if err := w.budget(ctx); err != nil {
					return err
				}
			}
			key, err := fn(raw)
			if err != nil {
				return err
			}
			w.cur.After = key
		}
		if page.Continuation == "" {
			return nil
		}
		w.cur.Page, w.cur.After = page.Continuation, ""
		q.Continuation = page.Continuation
		if err := w.save(ctx); err != nil {
			return err
		}
	}
}

// itemKey is the position key of an item: an image's digest; for a
// running-images chunk the key of having finished it ("<id>/").
func itemKey(raw json.RawMessage, c store.Container) (string, bool) {
	var head struct {
		ID     string `json:"id"`
		Digest string `json:"digest"`
	}
	if json.Unmarshal(raw, &head) != nil {
		return "", false
	}
	if c == store.Images {
		return head.Digest, true
	}
	return head.ID + "/", true
}

// budget stops the walk when MaxDuration is used or the invocation's
// deadline is near.
func (w *walk) budget(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.f.opts.Now().Sub(w.start) >= w.f.opts.MaxDuration {
		return errBudget
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < w.f.opts.DeadlineMargin {
		return errBudget
	}
	return nil
}

// runningImage rescans an image running in a cluster unless the pushed
// phase covered it or it is deleted.
func (w *walk) runningImage(ctx context.Context, digest string) error {
	if !model.ValidDigest(digest) {
		return nil
	}
	img, err := vulnstore.GetImage(ctx, w.f.st, digest)
	if errors.Is(err, store.ErrNotFound) {
		w.cur.Run.Checked++
		w.cur.Run.NoInventory++
		w.log.Info().Str(logging.FieldDigest, digest).Msg("running image was never scanned; nothing to re-match")
		return nil
	}
	if err != nil {
		return err
	}
	if img.Status == model.ImageDeleted || img.PushedUnix >= w.cur.WindowStartUnix {
		return nil
	}
	return w.image(ctx, img)
}

// image re-matches one image's stored inventory and records the result.
// An image whose handling fails is not counted: it is done again on resume.
func (w *walk) image(ctx context.Context, img model.Image) error {
	if err := w.rematch(ctx, img); err != nil {
		return err
	}
	w.cur.Run.Checked++
	return nil
}

func (w *walk) rematch(ctx context.Context, img model.Image) error {
	run := &w.cur.Run
	l := w.log.With().Str(logging.FieldDigest, img.Digest).Str(logging.FieldRepository, img.Repository).Logger()
	if img.DBVersion == w.db.Version && (img.Status == model.ImageActive || img.Status == model.ImageUnsupported) {
		run.Skipped++
		return nil
	}
	if img.Status == model.ImageFailed {
		run.NoInventory++
		return nil
	}
	inv, err := vulnstore.Inventory(ctx, w.f.st, img.Digest)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		run.NoInventory++
		l.Warn().Err(err).Msg("no stored inventory; image not rescanned")
		return nil
	}
	m, err := w.f.sc.Match(ctx, img, inv)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		run.Failed++
		l.Error().Err(err).Msg("re-match failed; the next run tries again")
		return nil
	}
	// Every image of a run is stamped with the run's start, so a run cut
	// short and resumed stores exactly what an uninterrupted run would.
	now := w.cur.Run.StartedAt
	next := m.Image
	next.ScannedAt, next.ScannedUnix = now, now.Unix()
	ch, err := vulnstore.Record(ctx, w.f.st, vulnstore.Scan{Image: next, Findings: m.Findings, SeenAt: now})
	if err != nil {
		return fmt.Errorf("rescan %s: %w", img.Digest, err)
	}
	run.Rescanned++
	run.New += ch.New
	run.Fixed += ch.Resolved
	if ch.New > 0 || ch.Resolved > 0 {
		run.Changed++
		l.Info().Int("new", ch.New).Int("fixed", ch.Resolved).Str("db_version", next.DBVersion).Msg("rescan changed findings")
	}
	if w.f.pub != nil {
		w.publish(ctx, next, m.Findings, ch, now, l)
	}
	return nil
}

// publish sends the rescan's events; a failure is counted and logged, not
// retried: the findings are stored and the next scan reports again.
func (w *walk) publish(ctx context.Context, img model.Image, findings []model.Finding, ch vulnstore.Changes, now time.Time, l zerolog.Logger) {
	var fresh []model.Finding
	for _, f := range findings {
		if slices.Contains(ch.NewIDs, f.ID) {
			f.FirstSeen = now
			fresh = append(fresh, f)
		}
	}
	events := scanevents.ForScan(scanevents.TriggerRescan, img, fresh, ch.Resolved, now)
	if err := w.f.pub.Publish(ctx, events); err != nil {
		w.cur.Run.EventsFailed += len(events)
		l.Error().Err(err).Int(logging.FieldCount, len(events)).Msg("events not published")
		return
	}
	w.cur.Run.EventsPublished += len(events)
}

// save writes the cursor, guarded by its ETag: a concurrent run elsewhere
// makes this one stop instead of both walking the same images.
func (w *walk) save(ctx context.Context) error {
	raw, err := json.Marshal(w.cur)
	if err != nil {
		return fmt.Errorf("encode rescan cursor: %w", err)
	}
	s := model.State{ID: model.RescanCursorID, Kind: model.KindRescanCursor, UpdatedAt: w.f.opts.Now().UTC(), Data: raw}
	cond := store.Cond{IfMatch: w.etag, IfNoneMatch: w.etag == ""}
	etag, err := w.f.st.Put(ctx, store.State, model.KindRescanCursor, model.RescanCursorID, s, cond)
	if errors.Is(err, store.ErrPrecondition) {
		return fmt.Errorf("rescan cursor moved by another run; stopping this one: %w", err)
	}
	if err != nil {
		return fmt.Errorf("store rescan cursor: %w", err)
	}
	w.etag = etag
	return nil
}
