package msrc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultBaseURL is the public MSRC CVRF API.
const DefaultBaseURL = "https://api.msrc.microsoft.com/cvrf/v3.0"

// Defaults of Options.
const (
	DefaultMonths           = 12
	DefaultMaxDocumentBytes = 128 << 20
	DefaultMaxAge           = 48 * time.Hour
	DefaultTimeout          = 5 * time.Minute
)

// Options configure a Source.
type Options struct {
	// BaseURL is the CVRF API root (PALISADE_MSRC_URL): the updates index
	// is BaseURL/updates and a month's document BaseURL/cvrf/2024-Mar.
	BaseURL string
	// Client makes the requests; nil means one with DefaultTimeout.
	Client *http.Client
	// Months is how many monthly documents are held, ending with the
	// newest published; 0 means DefaultMonths.
	Months int
	// MaxDocumentBytes bounds one response; 0 means DefaultMaxDocumentBytes.
	MaxDocumentBytes int64
	// ChunkBytes is the target size of a stored chunk; 0 means DefaultChunkBytes.
	ChunkBytes int
	// MaxAge: data not refreshed for this long is reported stale; 0 means
	// DefaultMaxAge.
	MaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	if o.Client == nil {
		o.Client = &http.Client{Timeout: DefaultTimeout}
	}
	if o.Months <= 0 {
		o.Months = DefaultMonths
	}
	if o.MaxDocumentBytes <= 0 {
		o.MaxDocumentBytes = DefaultMaxDocumentBytes
	}
	if o.ChunkBytes <= 0 || o.ChunkBytes > MaxChunkBytes/2 {
		o.ChunkBytes = DefaultChunkBytes
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Source downloads, validates and keeps the monthly documents, and builds
// the index from what it keeps. Refresh is for the DB lifecycle timer; Load,
// for scans and rescans, reads only the store. It is safe for concurrent use.
type Source struct {
	st   Store
	opts Options

	refreshing sync.Mutex // one Refresh at a time

	mu     sync.Mutex // guards the cache
	cached []byte     // the manifest the cached index was built from
	index  *Index
	status Status
}

// NewSource returns a source keeping its data in st.
func NewSource(st Store, opts Options) *Source {
	opts.defaults()
	return &Source{st: st, opts: opts}
}

// Status is the state of the data: what is held, how fresh, what is wrong.
type Status struct {
	// RefreshedAt is when the updates index was last read; zero if never.
	RefreshedAt time.Time
	// Months are the months known, newest first.
	Months []MonthStatus
	// Downloaded and Unchanged are what a refresh fetched and what it found
	// unchanged; Dropped, what left the window.
	Downloaded, Unchanged, Dropped []string
	// Problems are what is wrong now, one sentence each.
	Problems []string
	// Stale: the data is older than MaxAge, a month of the window has no
	// data, or its last download failed.
	Stale bool
}

// Err joins the problems, or is nil when there are none.
func (s Status) Err() error {
	if len(s.Problems) == 0 {
		return nil
	}
	return errors.New("advisory data for Windows images: " + strings.Join(s.Problems, "; "))
}

// Load builds the index from the store alone. A month whose stored chunks
// cannot be read is left out and reported. It fails with ErrNoData when no
// month is held. The index is cached until the stored manifest changes.
func (s *Source) Load(ctx context.Context) (*Index, Status, error) {
	raw, ok, err := s.st.Load(ctx, ManifestID)
	if err != nil {
		return nil, Status{}, fmt.Errorf("load %s: %w", ManifestID, err)
	}
	if !ok {
		return nil, Status{Stale: true, Problems: []string{"never refreshed"}}, fmt.Errorf("%w: never refreshed", ErrNoData)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index != nil && bytes.Equal(raw, s.cached) {
		return s.index, s.status, nil
	}
	var man manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return nil, Status{Stale: true}, fmt.Errorf("%w: stored manifest: %w", ErrNoData, err)
	}
	months, problems := s.loadMonths(ctx, man.Months)
	ix := NewIndex(months)
	st := s.statusOf(man, problems)
	if len(months) == 0 {
		return nil, st, fmt.Errorf("%w: %v", ErrNoData, st.Err())
	}
	s.cached, s.index, s.status = raw, ix, st
	return ix, st, nil
}

func (s *Source) loadMonths(ctx context.Context, sts []MonthStatus) ([]Month, []string) {
	var months []Month
	var problems []string
	for _, ms := range sts {
		if !ms.Held() {
			continue
		}
		m, err := loadMonth(ctx, s.st, ms)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: stored data unreadable: %v", ms.ID, err))
			continue
		}
		months = append(months, m)
	}
	return months, problems
}

// statusOf summarises a manifest and the problems found on the way.
func (s *Source) statusOf(man manifest, problems []string) Status {
	now := s.opts.Now()
	st := Status{RefreshedAt: man.RefreshedAt, Months: slices.Clone(man.Months), Problems: problems}
	slices.SortFunc(st.Months, func(a, b MonthStatus) int {
		ta, _ := ParseMonth(a.ID)
		tb, _ := ParseMonth(b.ID)
		return tb.Compare(ta)
	})
	for _, m := range st.Months {
		switch {
		case m.Problem != "" && m.Held():
			st.Problems = append(st.Problems, fmt.Sprintf("%s: %s (keeping the data downloaded %s)", m.ID, m.Problem, m.FetchedAt.UTC().Format(time.RFC3339)))
		case m.Problem != "":
			st.Problems = append(st.Problems, fmt.Sprintf("%s: %s (no data for this month)", m.ID, m.Problem))
		case !m.Held():
			st.Problems = append(st.Problems, m.ID+": no data")
		}
	}
	if man.RefreshedAt.IsZero() {
		st.Problems = append(st.Problems, "the MSRC updates index was never read")
	} else if age := now.Sub(man.RefreshedAt); age > s.opts.MaxAge {
		st.Problems = append(st.Problems, fmt.Sprintf("not refreshed for %s (more than %s)", age.Round(time.Minute), s.opts.MaxAge))
	}
	st.Stale = len(st.Problems) > 0
	return st
}

// Refresh reads the updates index, downloads each month of the window whose
// release date changed (or whose last download failed), validates it, and
// stores what it got; then it builds the index. A month that cannot be
// downloaded or is malformed keeps its last good data, and the failure is
// in Status.Problems (and in the stored manifest, for the next Load). It
// fails only when no data at all can be had, or the store cannot be read.
// Refreshes of one Source run one at a time.
func (s *Source) Refresh(ctx context.Context) (*Index, Status, error) {
	s.refreshing.Lock()
	defer s.refreshing.Unlock()
	now := s.opts.Now().UTC()
	man, held, problems, err := s.loadHeld(ctx)
	if err != nil {
		return nil, Status{}, err
	}
	var r refreshRun
	updates, uerr := s.updates(ctx)
	if uerr != nil {
		problems = append(problems, "updates index: "+uerr.Error())
	} else {
		man.RefreshedAt = now
		window := s.window(updates, now)
		var next []MonthStatus
		for _, id := range window {
			ms := MonthStatus{ID: id}
			if i := slices.IndexFunc(man.Months, func(m MonthStatus) bool { return m.ID == id }); i >= 0 {
				ms = man.Months[i]
			}
			u, listed := updates[id]
			_, have := held[id]
			ms, m := s.refreshMonth(ctx, ms, u, listed, have, now, &r)
			if m != nil {
				held[id] = *m
			}
			next = append(next, ms)
		}
		var garbage []string
		for _, ms := range man.Months {
			if !slices.Contains(window, ms.ID) {
				r.dropped = append(r.dropped, ms.ID)
				delete(held, ms.ID)
			}
			for _, c := range ms.Chunks {
				if !slices.ContainsFunc(next, func(n MonthStatus) bool { return slices.Contains(n.Chunks, c) }) {
					garbage = append(garbage, c)
				}
			}
		}
		man.Months = next
		problems = append(problems, s.commit(ctx, man, garbage)...)
	}
	st := s.statusOf(man, problems)
	st.Downloaded, st.Unchanged, st.Dropped = r.downloaded, r.unchanged, r.dropped
	months := make([]Month, 0, len(held))
	for _, m := range held {
		months = append(months, m)
	}
	if len(months) == 0 {
		return nil, st, fmt.Errorf("%w: %v", ErrNoData, st.Err())
	}
	return NewIndex(months), st, nil
}

// refreshRun is what one refresh did.
type refreshRun struct{ downloaded, unchanged, dropped []string }

// refreshMonth brings one month of the window up to date. It returns the
// month's new status and, when it was downloaded, its new data (which
// serves this run even if it could not be stored).
func (s *Source) refreshMonth(ctx context.Context, ms MonthStatus, u Update, listed, have bool, now time.Time, r *refreshRun) (MonthStatus, *Month) {
	switch {
	case !listed:
		ms.LastAttempt, ms.Problem = now, "not in the MSRC updates index"
		return ms, nil
	case have && ms.Release == u.CurrentReleaseDate && ms.Problem == "":
		r.unchanged = append(r.unchanged, ms.ID)
		return ms, nil
	}
	ms.LastAttempt = now
	m, err := s.month(ctx, ms.ID)
	if err != nil {
		ms.Problem = err.Error()
		return ms, nil
	}
	stored, err := saveMonth(ctx, s.st, ms, m, s.opts.ChunkBytes)
	if err != nil {
		// The manifest keeps naming the last good chunks.
		ms.Problem = "store: " + err.Error()
		return ms, &m
	}
	ms = stored
	ms.Release, ms.FetchedAt, ms.Problem = u.CurrentReleaseDate, now, ""
	ms.CVEs, ms.Skipped = len(m.Vulns), m.Skipped
	r.downloaded = append(r.downloaded, ms.ID)
	return ms, &m
}

// commit saves the manifest, then deletes the chunks it no longer names
// (never before: until the new manifest is saved, the old one names them).
func (s *Source) commit(ctx context.Context, man manifest, garbage []string) (problems []string) {
	if err := s.saveManifest(ctx, man); err != nil {
		return []string{"store: " + err.Error()}
	}
	for _, id := range garbage {
		if err := s.st.Delete(ctx, id); err != nil {
			problems = append(problems, fmt.Sprintf("store: delete %s: %v", id, err))
		}
	}
	return problems
}

// loadHeld reads the manifest and the data it names. An unreadable
// manifest is reported and the refresh starts afresh; a store that cannot
// be read fails the refresh.
func (s *Source) loadHeld(ctx context.Context) (manifest, map[string]Month, []string, error) {
	man := manifest{Format: manifestFormat}
	held := map[string]Month{}
	raw, ok, err := s.st.Load(ctx, ManifestID)
	if err != nil {
		return man, nil, nil, fmt.Errorf("load %s: %w", ManifestID, err)
	}
	if !ok {
		return man, held, nil, nil
	}
	if err := json.Unmarshal(raw, &man); err != nil {
		return manifest{Format: manifestFormat}, held, []string{"stored manifest unreadable, starting afresh: " + err.Error()}, nil
	}
	for i, ms := range man.Months {
		if !ms.Held() {
			continue
		}
		m, err := loadMonth(ctx, s.st, ms)
		if err != nil {
			// Downloaded again below; its chunks are collected then.
			man.Months[i].Hash, man.Months[i].Problem = "", "stored data unreadable: "+err.Error()
			continue
		}
		held[ms.ID] = m
	}
	return man, held, nil, nil
}

func (s *Source) saveManifest(ctx context.Context, man manifest) error {
	man.Format = manifestFormat
	b, err := json.Marshal(man)
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	if len(b) > MaxChunkBytes {
		return fmt.Errorf("manifest is %d bytes, above the %d-byte limit", len(b), MaxChunkBytes)
	}
	return s.st.Save(ctx, ManifestID, b)
}

// window is the months to hold: the newest published month not in the
// future and the Months-1 before it.
func (s *Source) window(updates map[string]Update, now time.Time) []string {
	var newest time.Time
	for id := range updates {
		t, _ := ParseMonth(id)
		if !t.After(now) && t.After(newest) {
			newest = t
		}
	}
	if newest.IsZero() {
		return nil
	}
	out := make([]string, s.opts.Months)
	for i := range out {
		out[i] = MonthID(newest.AddDate(0, -i, 0))
	}
	return out
}

// updates reads the updates index, keeping the monthly documents.
func (s *Source) updates(ctx context.Context) (map[string]Update, error) {
	var u *Updates
	err := s.get(ctx, "/updates", func(r io.Reader) (err error) {
		u, err = DecodeUpdates(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := map[string]Update{}
	for _, e := range u.Value {
		if _, err := ParseMonth(e.ID); err == nil {
			out[e.ID] = e
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the updates index lists no monthly document", ErrMalformed)
	}
	return out, nil
}

// month downloads, validates and extracts one monthly document.
func (s *Source) month(ctx context.Context, id string) (Month, error) {
	var m Month
	err := s.get(ctx, "/cvrf/"+id, func(r io.Reader) error {
		var err error
		m, err = Decode(r, id)
		return err
	})
	return m, err
}

// get fetches BaseURL+path as JSON and hands the bounded body to decode.
func (s *Source) get(ctx context.Context, path string, decode func(io.Reader) error) error {
	url := s.opts.BaseURL + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "palisade")
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("GET %s: %w (HTTP 404)", url, ErrNotPublished)
	case resp.StatusCode != http.StatusOK:
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(string(snippet)))
	}
	// One byte past the bound is let through, so that a body cut short
	// by the bound tells itself apart from one that ends there.
	body := &io.LimitedReader{R: resp.Body, N: s.opts.MaxDocumentBytes + 1}
	err = decode(body)
	if body.N <= 0 {
		return fmt.Errorf("GET %s: %w (more than %d bytes)", url, ErrTooLarge, s.opts.MaxDocumentBytes)
	}
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
