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
	"runtime"
	"sync"
	"time"

	"github.com/rs/zerolog"

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

// Intel loads the exploitation feeds findings are annotated with;
// *intel.Source is the implementation.
type Intel interface {
	Load(ctx context.Context) (*intel.Feeds, intel.Status, error)
}

// Options are the function's settings.
type Options struct {
	// Intel, when set, annotates findings with their exploitation data and
	// priority; nil leaves them as stored.
	Intel Intel
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
	// Workers re-match this many images at once; 0 means GOMAXPROCS.
	Workers int
	// Summaries, when set, receives a summary of each image rescanned
	// (PalisadeFindings_CL), a batch at a time.
	Summaries ImagePublisher
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ImagePublisher sends image scan summaries to Log Analytics;
// *sentinel.Client is the implementation.
type ImagePublisher interface {
	PublishImages(ctx context.Context, scans []sentinel.ImageScan) error
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
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
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
	if run.DBDownloadError != "" || run.WindowsDataStale || run.Failed > 0 || run.EventsFailed > 0 {
		e = log.Warn()
	}
	e.Str("run", run.ID).Bool("complete", run.Complete).Int("checked", run.Checked).Int("rescanned", run.Rescanned).
		Int("skipped", run.Skipped).Int("changed", run.Changed).Int("new", run.New).Int("fixed", run.Fixed).
		Int("no_inventory", run.NoInventory).Int("failed", run.Failed).Str("db_version", run.DBVersion).
		Bool("demo_data", run.DemoData).Str("db_download_error", run.DBDownloadError).Strs("missing_feeds", run.MissingFeeds).
		Str("windows_data", run.WindowsData).Bool("windows_data_stale", run.WindowsDataStale).
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
	if cur == nil || cur.Phase == model.RescanPhaseDone || cur.Run.DBVersion != db.Version || cur.Run.WindowsData != db.Windows.Version {
		if cur != nil && cur.Phase != model.RescanPhaseDone {
			log.Info().Str("run", cur.Run.ID).Msg("the vulnerability DB or the Windows advisory data changed during an unfinished rescan; starting a new run")
		}
		cur = &model.RescanCursor{
			Run:             model.RescanRun{ID: model.HashID("rescan-run", start.UTC().Format(time.RFC3339Nano)), StartedAt: start.UTC(), DBVersion: db.Version, DemoData: db.Demo},
			WindowStartUnix: start.Add(-time.Duration(f.opts.WindowDays) * 24 * time.Hour).Unix(),
			Phase:           model.RescanPhasePushed,
		}
	}
	cur.Run.Invocations++
	cur.Run.DBDownloadError = db.DownloadError
	cur.Run.WindowsData, cur.Run.WindowsDataStale, cur.Run.WindowsDataProblems = db.Windows.Version, db.Windows.Stale, db.Windows.Problems
	if db.Windows.Stale {
		log.Warn().Str("windows_data", db.Windows.Version).Strs("problems", db.Windows.Problems).
			Msg("the Windows advisory data is stale or incomplete; Windows images are matched against what is held")
	}
	if db.Demo {
		log.Warn().Bool("demo_data", true).Msg("rescanning against the built-in DEMO vulnerability DB: results are demo data")
	}
	w := &walk{f: f, cur: cur, etag: etag, db: db, start: start, log: log, rows: &summaryBatch{pub: f.opts.Summaries, log: log}}
	if f.opts.Intel != nil {
		feeds, _, err := f.opts.Intel.Load(ctx)
		if err != nil {
			return cur.Run, err
		}
		if w.where, err = vulnstore.ReadRunning(ctx, f.st); err != nil {
			return cur.Run, err
		}
		w.feeds = feeds
		cur.Run.MissingFeeds = feeds.Missing()
	}
	walkErr := w.run(ctx)
	cur.Run.SummariesFailed += w.rows.flush(context.WithoutCancel(ctx))
	cur.Run.DurationMs += f.opts.Now().Sub(start).Milliseconds()
	if walkErr == nil {
		cur.Phase, cur.Page, cur.Done = model.RescanPhaseDone, "", nil
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
	// feeds and where annotate the findings (nil feeds: none).
	feeds *intel.Feeds
	where vulnstore.Running
	rows  *summaryBatch

	mu sync.Mutex // guards cur while workers run
}

// summaryBatchSize is the summaries sent to Log Analytics in one upload.
const summaryBatchSize = 200

// summaryBatch gathers a run's image summaries and sends them a batch at a
// time. A failed upload is counted and logged, not retried: the findings
// are stored, and the next rescan with a new DB sends them again.
type summaryBatch struct {
	pub     ImagePublisher // nil: none sent
	log     *zerolog.Logger
	mu      sync.Mutex
	pending []sentinel.ImageScan
	failed  int
}

func (b *summaryBatch) add(ctx context.Context, s sentinel.ImageScan) {
	if b.pub == nil {
		return
	}
	b.mu.Lock()
	b.pending = append(b.pending, s)
	full := len(b.pending) >= summaryBatchSize
	b.mu.Unlock()
	if full {
		b.flush(ctx)
	}
}

// flush sends what is pending and returns the summaries not sent so far,
// resetting the count.
func (b *summaryBatch) flush(ctx context.Context) int {
	b.mu.Lock()
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(batch) > 0 {
		if err := b.pub.PublishImages(ctx, batch); err != nil {
			b.log.Error().Err(err).Int(logging.FieldCount, len(batch)).Msg("rescan summaries not sent to Log Analytics")
			b.mu.Lock()
			b.failed += len(batch)
			b.mu.Unlock()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.failed
	b.failed = 0
	return n
}

// count updates the run record from a worker.
func (w *walk) count(fn func(r *model.RescanRun)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fn(&w.cur.Run)
}

func (w *walk) run(ctx context.Context) error {
	if w.cur.Phase == model.RescanPhasePushed {
		if err := w.pushed(ctx); err != nil {
			return err
		}
		w.cur.Phase, w.cur.Page, w.cur.Done = model.RescanPhaseRunning, "", nil
		if err := w.save(ctx); err != nil {
			return err
		}
	}
	if w.cur.Phase == model.RescanPhaseRunning {
		return w.running(ctx)
	}
	return nil
}

// unit is one image to handle, under a key unique within its page.
type unit struct {
	key string
	do  func(ctx context.Context) error
}

// pushed walks the images pushed within the window that are not deleted.
func (w *walk) pushed(ctx context.Context) error {
	since := time.Unix(w.cur.WindowStartUnix, 0)
	return w.pages(ctx, func(ctx context.Context, cont string) ([]unit, string, error) {
		l, err := vulnstore.ActiveImages(ctx, w.f.st, since, store.Cursor{Limit: w.f.opts.PageSize, Continuation: cont})
		if err != nil {
			return nil, "", fmt.Errorf("rescan: %w", err)
		}
		units := make([]unit, 0, len(l.Items))
		for _, img := range l.Items {
			units = append(units, unit{key: img.Digest, do: func(ctx context.Context) error { return w.image(ctx, img) }})
		}
		return units, l.Continuation, nil
	})
}

// running walks the running-image inventories of the monitored clusters,
// one chunk (at most 1000 images) per page, leaving out images the pushed
// phase covered and deleted ones.
func (w *walk) running(ctx context.Context) error {
	q := store.Query{PartitionKey: model.KindRunningImages, Limit: 1}
	return w.pages(ctx, func(ctx context.Context, cont string) ([]unit, string, error) {
		q.Continuation = cont
		page, err := w.f.st.Query(ctx, store.State, q)
		if err != nil {
			return nil, "", fmt.Errorf("rescan: read running images: %w", err)
		}
		seen := map[string]bool{}
		var units []unit
		for _, raw := range page.Items {
			var s model.State
			var ri model.RunningImages
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, "", fmt.Errorf("decode running images: %w", err)
			}
			if err := json.Unmarshal(s.Data, &ri); err != nil {
				return nil, "", fmt.Errorf("decode running images %s: %w", s.ID, err)
			}
			for _, r := range ri.Images {
				if seen[r.Digest] || !model.ValidDigest(r.Digest) {
					continue
				}
				seen[r.Digest] = true
				units = append(units, unit{key: r.Digest, do: func(ctx context.Context) error { return w.runningImage(ctx, r.Digest) }})
			}
		}
		return units, page.Continuation, nil
	})
}

// pages handles every unit of every page that fetch returns, from the
// cursor on, with Workers at once. The cursor names the page and the units
// done in it; it is saved after each page and when the walk stops.
func (w *walk) pages(ctx context.Context, fetch func(ctx context.Context, continuation string) ([]unit, string, error)) error {
	cont := w.cur.Page
	for {
		units, next, err := fetch(ctx, cont)
		if err != nil {
			return err
		}
		done := map[string]bool{}
		for _, k := range w.cur.Done {
			done[k] = true
		}
		var todo []unit
		for _, u := range units {
			if !done[u.key] {
				todo = append(todo, u)
			}
		}
		if err := w.parallel(ctx, todo); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		w.cur.Page, w.cur.Done = next, nil
		cont = next
		if err := w.save(ctx); err != nil {
			return err
		}
	}
}

// parallel runs units on Workers goroutines, each checking the budget
// before it takes a unit, and records each finished unit in the cursor. It
// returns the first error (errBudget when the budget stopped it) once the
// units in flight are finished.
func (w *walk) parallel(ctx context.Context, units []unit) error {
	next := make(chan unit)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		stop  = make(chan struct{})
	)
	fail := func(err error) { once.Do(func() { first = err; close(stop) }) }
	for range min(w.f.opts.Workers, max(len(units), 1)) {
		wg.Go(func() {
			for u := range next {
				if err := u.do(ctx); err != nil {
					fail(err)
					continue
				}
				w.mu.Lock()
				w.cur.Done = append(w.cur.Done, u.key)
				w.mu.Unlock()
			}
		})
	}
feed:
	for _, u := range units {
		if err := w.budget(ctx); err != nil {
			fail(err)
			break
		}
		select {
		case next <- u:
		case <-stop:
			break feed
		}
	}
	close(next)
	wg.Wait()
	return first
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
	stored, err := vulnstore.Lookup(ctx, w.f.st, digest)
	if err != nil {
		return err
	}
	if !stored.Found {
		w.count(func(r *model.RescanRun) { r.Checked++; r.NoInventory++ })
		w.log.Info().Str(logging.FieldDigest, digest).Msg("running image was never scanned; nothing to re-match")
		return nil
	}
	img := stored.Image
	if img.Status == model.ImageDeleted || img.PushedUnix >= w.cur.WindowStartUnix {
		return nil
	}
	return w.image(ctx, img)
}

// outcome is what handling one image adds to the run record.
type outcome struct {
	skipped, noInventory, failed, rescanned bool
	changes                                 vulnstore.Changes
	published, unpublished                  int
}

// image re-matches one image's stored inventory and records the result.
// An image whose handling fails is not counted: it is done again on resume.
func (w *walk) image(ctx context.Context, img model.Image) error {
	o, err := w.rematch(ctx, img)
	if err != nil {
		return err
	}
	w.count(func(r *model.RescanRun) {
		r.Checked++
		switch {
		case o.skipped:
			r.Skipped++
		case o.noInventory:
			r.NoInventory++
		case o.failed:
			r.Failed++
		case o.rescanned:
			r.Rescanned++
			r.New += o.changes.New
			r.Fixed += o.changes.Resolved
			if o.changes.New > 0 || o.changes.Resolved > 0 {
				r.Changed++
			}
		}
		r.EventsPublished += o.published
		r.EventsFailed += o.unpublished
	})
	return nil
}

func (w *walk) rematch(ctx context.Context, img model.Image) (outcome, error) {
	l := w.log.With().Str(logging.FieldDigest, img.Digest).Str(logging.FieldRepository, img.Repository).Logger()
	if img.DBVersion == w.db.VersionFor(img) && (img.Status == model.ImageActive || img.Status == model.ImageUnsupported) {
		return outcome{skipped: true}, nil
	}
	if img.Status == model.ImageFailed {
		return outcome{noInventory: true}, nil
	}
	inv, err := vulnstore.Inventory(ctx, w.f.st, img.Digest)
	if err != nil {
		if ctx.Err() != nil {
			return outcome{}, ctx.Err()
		}
		l.Warn().Err(err).Msg("no stored inventory; image not rescanned")
		return outcome{noInventory: true}, nil
	}
	m, err := w.f.sc.Match(ctx, img, inv)
	if err != nil {
		if ctx.Err() != nil {
			return outcome{}, ctx.Err()
		}
		l.Error().Err(err).Msg("re-match failed; the next run tries again")
		return outcome{failed: true}, nil
	}
	// Every image of a run is stamped with the run's start, so a run cut
	// short and resumed stores exactly what an uninterrupted run would.
	now := w.cur.Run.StartedAt
	next := m.Image
	next.ScannedAt, next.ScannedUnix = now, now.Unix()
	sc := vulnstore.Scan{Image: next, Findings: m.Findings, SeenAt: now, Running: w.where.Has(img.Digest)}
	feeds := w.currentFeeds()
	if feeds != nil {
		sc.Intel = feeds
	}
	ch, err := vulnstore.Record(ctx, w.f.st, sc)
	if err != nil {
		return outcome{}, fmt.Errorf("rescan %s: %w", img.Digest, err)
	}
	if feeds != nil {
		if err := w.recheckFeeds(ctx, img.Digest, feeds, sc.Running); err != nil {
			return outcome{}, fmt.Errorf("rescan %s: %w", img.Digest, err)
		}
	}
	o := outcome{rescanned: true, changes: ch}
	if ch.New > 0 || ch.Resolved > 0 {
		l.Info().Int("new", ch.New).Int("fixed", ch.Resolved).Str("db_version", next.DBVersion).Msg("rescan changed findings")
	}
	if w.f.pub != nil {
		o.published, o.unpublished = w.publish(ctx, next, ch, now, l)
	}
	w.rows.add(ctx, sentinel.ImageScan{Image: ch.Image, Vulns: ch.Vulns, Trigger: "rescan", At: now})
	return o, nil
}

func (w *walk) currentFeeds() *intel.Feeds {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.feeds
}

// recheckFeeds annotates an image's findings again when the feeds changed
// since used was loaded: a refresh in between may have updated them before
// Record wrote them with the older feeds. The rest of the run uses the new
// feeds.
func (w *walk) recheckFeeds(ctx context.Context, digest string, used *intel.Feeds, running bool) error {
	feeds, _, err := w.f.opts.Intel.Load(ctx)
	if err != nil || feeds == used {
		return err
	}
	w.mu.Lock()
	w.feeds = feeds
	w.mu.Unlock()
	_, err = vulnstore.Reannotate(ctx, w.f.st, digest, feeds, running)
	return err
}

// publish sends the rescan's events; a failure is counted and logged, not
// retried: the findings are stored and the next scan reports again.
func (w *walk) publish(ctx context.Context, img model.Image, ch vulnstore.Changes, now time.Time, l zerolog.Logger) (published, failed int) {
	events := scanevents.ForScan(scanevents.TriggerRescan, img, ch.NewFindings, ch.Resolved, now)
	if err := w.f.pub.Publish(ctx, events); err != nil {
		l.Error().Err(err).Int(logging.FieldCount, len(events)).Msg("events not published")
		return 0, len(events)
	}
	return len(events), 0
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
