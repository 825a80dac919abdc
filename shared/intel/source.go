package intel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// Public locations of the feeds.
const (
	DefaultKEVURL  = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
	DefaultEPSSURL = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
)

// Defaults of Options.
const (
	DefaultMaxKEVBytes   = 32 << 20
	DefaultMaxEPSSBytes  = 256 << 20
	DefaultMinKEVEntries = 1000
	DefaultMinEPSSRows   = 100000
	DefaultMaxAge        = 48 * time.Hour
	DefaultTimeout       = 5 * time.Minute
)

// MinShare is the smallest share of the held copy's entries a new copy
// may have: a catalogue or score list that shrinks more than that at once
// is taken for a truncated or broken download and refused.
const MinShare = 0.9

// Options configure a Source.
type Options struct {
	// KEVURL and EPSSURL are where the feeds are downloaded from (an
	// http(s) URL or a local file path); "" leaves that feed out.
	KEVURL, EPSSURL string
	// Client makes the requests; nil means one with DefaultTimeout.
	Client *http.Client
	// MaxKEVBytes and MaxEPSSBytes bound a download (EPSS: uncompressed);
	// 0 means the defaults.
	MaxKEVBytes, MaxEPSSBytes int64
	// MinKEVEntries and MinEPSSRows are the fewest entries a download may
	// hold; 0 means the defaults (the real feeds hold over 1,400 and
	// 250,000).
	MinKEVEntries, MinEPSSRows int
	// MaxAge: a feed not confirmed current for this long (or EPSS scores
	// older than this) is reported stale; 0 means DefaultMaxAge.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: DefaultTimeout}
	}
	if o.MaxKEVBytes <= 0 {
		o.MaxKEVBytes = DefaultMaxKEVBytes
	}
	if o.MaxEPSSBytes <= 0 {
		o.MaxEPSSBytes = DefaultMaxEPSSBytes
	}
	if o.MinKEVEntries <= 0 {
		o.MinKEVEntries = DefaultMinKEVEntries
	}
	if o.MinEPSSRows <= 0 {
		o.MinEPSSRows = DefaultMinEPSSRows
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Source downloads, validates and keeps the feeds in the state container,
// and loads them for scans. Refresh is for the refreshintel timer; Load
// reads only the store. It is safe for concurrent use.
type Source struct {
	st   stateStore
	opts Options

	refreshing sync.Mutex // one Refresh at a time

	mu     sync.Mutex // guards the cache
	cached []byte     // the manifest the cached feeds were loaded from
	man    manifest   // that manifest
	feeds  *Feeds
	// unreadable says why the KEV ([0]) or EPSS ([1]) copy the manifest
	// names could not be loaded.
	unreadable [2]string
}

// NewSource returns a source keeping its data in st.
func NewSource(st store.Store, opts Options) *Source {
	opts.defaults()
	return &Source{st: stateStore{st: st, now: opts.Now}, opts: opts}
}

// Status is the state of both feeds.
type Status struct {
	KEV  FeedStatus `json:"kev"`
	EPSS FeedStatus `json:"epss"`
}

// FeedStatus is one feed's state with what it means now.
type FeedStatus struct {
	FeedState
	// Stale: there is no copy, or it was not confirmed current within
	// MaxAge (or its scores are older than that). Reasons says why, and
	// names any problem of the last download.
	Stale   bool     `json:"stale"`
	Reasons []string `json:"reasons,omitempty"`
}

// Problems lists what is wrong with either feed, one sentence each.
func (s Status) Problems() []string {
	var out []string
	for _, f := range []FeedStatus{s.KEV, s.EPSS} {
		for _, r := range f.Reasons {
			out = append(out, f.Feed+": "+r)
		}
	}
	return out
}

// Report is what a run record and the API say of the feed.
func (s FeedStatus) Report() model.FeedReport {
	return model.FeedReport{Feed: s.Feed, Held: s.Held(), Version: s.Version, Date: s.Date, Entries: s.Entries,
		FetchedAt: s.FetchedAt, CheckedAt: s.CheckedAt, Stale: s.Stale, Problems: s.Reasons}
}

// Stale reports whether either feed is stale.
func (s Status) Stale() bool { return s.KEV.Stale || s.EPSS.Stale }

// statusOf says what man means now; unreadable says why a copy it names
// could not be loaded.
func (s *Source) statusOf(man manifest, unreadable [2]string) Status {
	return Status{
		KEV:  s.feedStatus(man.KEV, s.opts.KEVURL, "PALISADE_KEV_URL", unreadable[0]),
		EPSS: s.feedStatus(man.EPSS, s.opts.EPSSURL, "PALISADE_EPSS_URL", unreadable[1]),
	}
}

func (s *Source) feedStatus(fs FeedState, url, setting, unreadable string) FeedStatus {
	now := s.opts.Now()
	st := FeedStatus{FeedState: fs}
	switch {
	case unreadable != "":
		st.Reasons = append(st.Reasons, "the stored copy cannot be read ("+unreadable+"); the next refresh downloads it again")
	case !fs.Held() && url == "":
		st.Reasons = append(st.Reasons, "no copy held and no download location set ("+setting+" is empty)")
	case !fs.Held():
		st.Reasons = append(st.Reasons, "never downloaded")
	case fs.CheckedAt.IsZero() || now.Sub(fs.CheckedAt) > s.opts.MaxAge:
		st.Reasons = append(st.Reasons, fmt.Sprintf("not confirmed current for more than %s; using the copy downloaded %s", s.opts.MaxAge, fs.FetchedAt.UTC().Format(time.RFC3339)))
	}
	if fs.Held() && fs.Feed == model.FeedEPSS && now.Sub(fs.Date) > s.opts.MaxAge {
		st.Reasons = append(st.Reasons, fmt.Sprintf("the scores are of %s, older than %s", fs.Date.UTC().Format(dateLayout), s.opts.MaxAge))
	}
	st.Stale = len(st.Reasons) > 0
	if fs.Problem != "" {
		st.Reasons = append(st.Reasons, "last download failed: "+fs.Problem)
	}
	return st
}

// Load returns the feeds held in the store (either may be nil when there
// is no copy, or its chunks cannot be read: Status then says so) and
// their status. It fails only when the store cannot be read. The feeds are
// cached until the stored manifest changes: until then Load returns the
// same *Feeds, so a caller can tell whether they changed since it loaded
// them.
func (s *Source) Load(ctx context.Context) (*Feeds, Status, error) {
	man, raw, err := s.manifest(ctx)
	if err != nil {
		return nil, Status{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.feeds != nil && bytes.Equal(raw, s.cached) {
		return s.feeds, s.statusOf(s.man, s.unreadable), nil // staleness moves with the clock
	}
	fs := &Feeds{}
	s.unreadable = [2]string{}
	if man.KEV.Held() {
		if fs.KEV, err = s.loadKEV(ctx, man.KEV); err != nil {
			fs.KEV, s.unreadable[0] = nil, err.Error()
		}
	}
	if man.EPSS.Held() {
		if fs.EPSS, err = s.loadEPSS(ctx, man.EPSS); err != nil {
			fs.EPSS, s.unreadable[1] = nil, err.Error()
		}
	}
	s.cached, s.man, s.feeds = raw, man, fs
	return fs, s.statusOf(man, s.unreadable), nil
}

// Status reads the state of both feeds without loading them. A copy that
// could not be read is reported only once Load has tried it.
func (s *Source) Status(ctx context.Context) (Status, error) {
	man, raw, err := s.manifest(ctx)
	if err != nil {
		return Status{}, err
	}
	var unreadable [2]string
	s.mu.Lock()
	if bytes.Equal(raw, s.cached) {
		unreadable = s.unreadable
	}
	s.mu.Unlock()
	return s.statusOf(man, unreadable), nil
}

// manifest reads the stored manifest, and its encoding to compare with the
// one the cached feeds came from. None (or one that cannot be decoded)
// is a manifest that holds nothing.
func (s *Source) manifest(ctx context.Context) (manifest, []byte, error) {
	var man manifest
	_, ok, err := s.st.get(ctx, ManifestID, &man)
	if err != nil && !ok {
		return manifest{}, nil, err
	}
	if !ok || err != nil {
		man = manifest{KEV: FeedState{Feed: model.FeedKEV}, EPSS: FeedState{Feed: model.FeedEPSS}}
	}
	raw, _ := json.Marshal(man)
	return man, raw, nil
}

func (s *Source) loadKEV(ctx context.Context, fs FeedState) (*KEV, error) {
	b, err := s.st.load(ctx, fs, s.opts.MaxKEVBytes)
	if err != nil {
		return nil, err
	}
	return decodeKEVContent(b)
}

func (s *Source) loadEPSS(ctx context.Context, fs FeedState) (*EPSS, error) {
	b, err := s.st.load(ctx, fs, s.opts.MaxEPSSBytes)
	if err != nil {
		return nil, err
	}
	return decodeEPSSContent(b)
}

// Refresh downloads each feed, validates it (its published shape, a
// sane number of entries, its dates) and, when its content changed,
// stores it and records what changed among the pending changes; a feed
// that cannot be downloaded or fails validation keeps its last good copy,
// and the failure is in the returned status (and stored, for Load). It
// fails only when the store fails. Refreshes of one Source run one at a
// time.
func (s *Source) Refresh(ctx context.Context) (Status, error) {
	s.refreshing.Lock()
	defer s.refreshing.Unlock()
	now := s.opts.Now().UTC()
	man := manifest{Format: manifestFormat, KEV: FeedState{Feed: model.FeedKEV}, EPSS: FeedState{Feed: model.FeedEPSS}}
	if _, ok, err := s.st.get(ctx, ManifestID, &man); err != nil && !ok {
		return Status{}, err
	}
	var (
		changes Changes
		garbage []string
	)
	refresh := func(fs *FeedState, url string, fetch func(held bool) (feedCopy, error)) {
		if url == "" {
			return
		}
		fs.LastAttempt = now
		c, err := fetch(fs.Held())
		if err != nil {
			fs.Problem = err.Error()
			return
		}
		fs.CheckedAt, fs.Problem = now, ""
		if contentHash(c.content) == fs.Hash && !c.resave {
			return
		}
		hash, ids, err := s.st.save(ctx, fs.Feed, c.content)
		if err != nil {
			fs.Problem = "store: " + err.Error()
			return
		}
		garbage = append(garbage, fs.Chunks...)
		fs.Hash, fs.Chunks, fs.FetchedAt, fs.URL = hash, ids, now, url
		fs.Version, fs.Date, fs.Entries = c.version, c.date, c.entries
		changes = changes.Merge(c.changes)
	}
	refresh(&man.KEV, s.opts.KEVURL, func(held bool) (feedCopy, error) {
		var old *KEV
		var lerr error
		if held {
			old, lerr = s.loadKEV(ctx, man.KEV) // unreadable: replaced as if none were held
		}
		k, err := s.fetchKEV(ctx, old, now)
		if err != nil {
			return feedCopy{}, err
		}
		content, err := kevContent(k)
		return feedCopy{content: content, changes: diffKEV(old, k), version: k.CatalogVersion, date: k.Released, entries: len(k.Entries), resave: lerr != nil}, err
	})
	refresh(&man.EPSS, s.opts.EPSSURL, func(held bool) (feedCopy, error) {
		var old *EPSS
		var lerr error
		if held {
			old, lerr = s.loadEPSS(ctx, man.EPSS)
		}
		e, err := s.fetchEPSS(ctx, old, now)
		if err != nil {
			return feedCopy{}, err
		}
		content, err := epssContent(e)
		return feedCopy{content: content, changes: diffEPSS(old, e), version: e.ModelVersion, date: e.ScoreDate, entries: e.Len(), resave: lerr != nil}, err
	})
	// The changes are recorded before the manifest names the new copies:
	// a crash in between leaves changes that re-apply the old data
	// (harmless), never new data whose changes are lost.
	if !changes.Empty() {
		changes.DetectedAt = now
		if err := s.AddPending(ctx, changes); err != nil {
			return s.statusOf(man, [2]string{}), err
		}
	}
	if _, err := s.st.put(ctx, ManifestID, man, store.Cond{}); err != nil {
		return s.statusOf(man, [2]string{}), err
	}
	for _, id := range garbage {
		if err := s.st.delete(ctx, id); err != nil {
			return s.statusOf(man, [2]string{}), err
		}
	}
	return s.statusOf(man, [2]string{}), nil
}

// feedCopy is a downloaded, validated feed: its stored form, what it
// changed and its metadata.
type feedCopy struct {
	content []byte
	changes Changes
	version string
	date    time.Time
	entries int
	resave  bool // the copy held cannot be read: store this one even if it is the same
}

func isPrecondition(err error) bool { return errors.Is(err, store.ErrPrecondition) }

// fetchKEV downloads and validates the catalogue against the copy held.
func (s *Source) fetchKEV(ctx context.Context, held *KEV, now time.Time) (*KEV, error) {
	var k *KEV
	err := Open(ctx, s.opts.Client, s.opts.KEVURL, func(r io.Reader) (err error) {
		k, err = DecodeKEV(r, s.opts.MaxKEVBytes)
		return err
	})
	if err != nil {
		return nil, err
	}
	prev := 0
	var prevDate time.Time
	if held != nil {
		prev, prevDate = len(held.Entries), held.Released
	}
	if err := sane("KEV catalogue", len(k.Entries), s.opts.MinKEVEntries, prev, k.Released, prevDate, now); err != nil {
		return nil, err
	}
	return k, nil
}

// fetchEPSS downloads and validates the scores against the copy held.
func (s *Source) fetchEPSS(ctx context.Context, held *EPSS, now time.Time) (*EPSS, error) {
	var e *EPSS
	err := Open(ctx, s.opts.Client, s.opts.EPSSURL, func(r io.Reader) (err error) {
		e, err = DecodeEPSS(r, s.opts.MaxEPSSBytes)
		return err
	})
	if err != nil {
		return nil, err
	}
	var prevDate time.Time
	if held != nil {
		prevDate = held.ScoreDate
	}
	if err := sane("EPSS scores", e.Len(), s.opts.MinEPSSRows, held.Len(), e.ScoreDate, prevDate, now); err != nil {
		return nil, err
	}
	return e, nil
}

// sane checks a download's size and date against the minimum and the
// copy held: not too few entries, not far fewer than held, not dated in
// the future, not older than the copy held.
func sane(what string, n, minimum, held int, date, heldDate, now time.Time) error {
	switch {
	case n < minimum:
		return fmt.Errorf("%w: %s has %d entries, fewer than the %d expected of a complete feed", ErrMalformed, what, n, minimum)
	case held > 0 && float64(n) < MinShare*float64(held):
		return fmt.Errorf("%w: %s has %d entries, far fewer than the %d of the copy held", ErrMalformed, what, n, held)
	case date.After(now.Add(24 * time.Hour)):
		return fmt.Errorf("%w: %s is dated %s, in the future", ErrMalformed, what, date.Format(time.RFC3339))
	case date.Before(heldDate):
		return fmt.Errorf("%w: %s is dated %s, older than the copy held (%s)", ErrMalformed, what, date.Format(time.RFC3339), heldDate.Format(time.RFC3339))
	}
	return nil
}

// Pending returns the changes not yet applied to stored findings and the
// ETag to clear them with.
func (s *Source) Pending(ctx context.Context) (Changes, string, error) {
	var c Changes
	etag, _, err := s.st.get(ctx, PendingID, &c)
	if err != nil {
		return Changes{}, "", err
	}
	return c, etag, nil
}

// ClearPending marks the pending changes applied, unless they changed
// since Pending read them (etag): a refresh in between added more, and
// the next run applies them all again.
func (s *Source) ClearPending(ctx context.Context, etag string) (bool, error) {
	if etag == "" {
		return true, nil
	}
	_, err := s.st.put(ctx, PendingID, Changes{}, store.Cond{IfMatch: etag})
	if err != nil {
		if isPrecondition(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// AddPending merges c into the stored pending changes, which the next
// refreshintel run applies to the stored findings: a change of VEX
// statements is recorded so.
func (s *Source) AddPending(ctx context.Context, c Changes) error {
	for range 8 {
		var cur Changes
		etag, ok, err := s.st.get(ctx, PendingID, &cur)
		if err != nil && !ok {
			return err
		}
		_, err = s.st.put(ctx, PendingID, cur.Merge(c), store.Cond{IfMatch: etag, IfNoneMatch: !ok})
		if isPrecondition(err) {
			continue
		}
		return err
	}
	return fmt.Errorf("record feed changes: %w", store.ErrPrecondition)
}

// Open fetches location (an http(s) URL or a local file path) and hands
// its body to read. A download that answers anything but 200 fails,
// naming the status.
func Open(ctx context.Context, client *http.Client, location string, read func(io.Reader) error) error {
	if !strings.HasPrefix(location, "http://") && !strings.HasPrefix(location, "https://") {
		f, err := os.Open(location)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := read(f); err != nil {
			return fmt.Errorf("%s: %w", location, err)
		}
		return nil
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, location, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", location, err)
	}
	req.Header.Set("User-Agent", "palisade")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", location, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("GET %s: HTTP %d: %s", location, resp.StatusCode, strings.TrimSpace(string(snippet)))
	}
	if err := read(resp.Body); err != nil {
		return fmt.Errorf("GET %s: %w", location, err)
	}
	return nil
}
