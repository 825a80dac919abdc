// Package scanresults keeps palisade-agent's copy of the scan results its
// admission webhook decides on, pulled outbound from the Palisade API
// (GET /api/images/{digest} and its open findings): every digest looked up
// once is kept, reduced to what the gate reads (shared/gate.Result), and
// refreshed every refresh period; a digest not yet cached is fetched on
// the spot within a bounded time, so a review never waits longer.
package scanresults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
)

// maxResponse bounds one API answer.
const maxResponse = 16 << 20

// Options of a Cache.
type Options struct {
	// APIURL is the Palisade API's base URL; Key is sent as
	// x-functions-key.
	APIURL, Key string
	// Refresh is the time between refreshes of every cached digest
	// (default 5m).
	Refresh time.Duration
	// MissTimeout bounds the lookup of a digest not cached (default 1s).
	MissTimeout time.Duration
	// MaxEntries bounds the cache (default 50,000); past it, lookups of new
	// digests are answered but not kept until a refresh makes room.
	MaxEntries int
	HTTPClient *http.Client
	Now        func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Minute
	}
	if o.MissTimeout <= 0 {
		o.MissTimeout = time.Second
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 50000
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

type entry struct {
	res        gate.Result
	notScanned bool
	fetched    time.Time
}

// Cache is safe for concurrent use.
type Cache struct {
	opts Options
	log  zerolog.Logger

	mu sync.RWMutex
	m  map[string]entry
	// ids interns vulnerability ids: the same CVEs recur across images
	// built on the same bases, and the cache must stay small.
	ids map[string]string
}

var _ gate.Results = (*Cache)(nil)

// New makes an empty cache.
func New(opts Options, log zerolog.Logger) *Cache {
	return &Cache{opts: opts.withDefaults(), log: log, m: map[string]entry{}, ids: map[string]string{}}
}

// Lookup answers a digest from the cache, or from the API within the miss
// timeout. gate.ErrNotScanned: Palisade has no usable result; another
// error: the result is unknown.
func (c *Cache) Lookup(ctx context.Context, digest string) (gate.Result, error) {
	c.mu.RLock()
	e, ok := c.m[digest]
	c.mu.RUnlock()
	if !ok {
		ctx, cancel := context.WithTimeout(ctx, c.opts.MissTimeout)
		defer cancel()
		var err error
		if e, err = c.fetch(ctx, digest); err != nil {
			return gate.Result{}, err
		}
		c.put(digest, e)
	}
	if e.notScanned {
		return gate.Result{}, gate.ErrNotScanned
	}
	return e.res, nil
}

// Put stores a result (tests and warm-up).
func (c *Cache) Put(r gate.Result) { c.put(r.Digest, entry{res: r, fetched: c.opts.Now()}) }

func (c *Cache) put(digest string, e entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[digest]; !ok && len(c.m) >= c.opts.MaxEntries {
		return
	}
	fs := make([]gate.Finding, len(e.res.Findings)) // exactly sized
	for i, f := range e.res.Findings {
		id, ok := c.ids[f.VulnID]
		if !ok {
			id = strings.Clone(f.VulnID)
			c.ids[id] = id
		}
		f.VulnID = id
		fs[i] = f
	}
	e.res.Findings = fs
	c.m[digest] = e
}

// Len is the number of cached digests.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Run refreshes the cache every refresh period until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := c.Refresh(ctx)
			ev := c.log.Debug()
			if err != nil {
				ev = c.log.Warn().Err(err)
			}
			ev.Int(logging.FieldCount, n).Msg("scan results refreshed")
		}
	}
}

// Refresh fetches every cached digest again; one that cannot be fetched
// keeps its last result. It returns how many were refreshed.
func (c *Cache) Refresh(ctx context.Context) (int, error) {
	c.mu.RLock()
	digests := make([]string, 0, len(c.m))
	for d := range c.m {
		digests = append(digests, d)
	}
	c.mu.RUnlock()
	var errs []error
	n := 0
	for _, d := range digests {
		e, err := c.fetch(ctx, d)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil || len(errs) > 10 {
				break
			}
			continue
		}
		c.put(d, e)
		n++
	}
	return n, errors.Join(errs...)
}

// fetch reads one image's summary and open findings from the API.
func (c *Cache) fetch(ctx context.Context, digest string) (entry, error) {
	if c.opts.APIURL == "" {
		return entry{}, errors.New("no Palisade API configured")
	}
	base := strings.TrimRight(c.opts.APIURL, "/") + "/api/images/" + url.PathEscape(digest)
	var img model.Image
	found, err := c.get(ctx, base, &img)
	if err != nil {
		return entry{}, err
	}
	now := c.opts.Now()
	if !found || img.Status != model.ImageActive {
		return entry{notScanned: true, fetched: now}, nil
	}
	res := gate.Result{Digest: digest, Registry: img.Registry, Repository: img.Repository, PushedAt: img.PushedAt}
	next := base + "/findings?status=open&limit=1000"
	for pages := 0; next != ""; pages++ {
		if pages > 100 {
			return entry{}, fmt.Errorf("findings of %s: more than 100 pages", digest)
		}
		var page struct {
			Items        []model.Finding `json:"items"`
			Continuation string          `json:"continuation"`
		}
		if _, err := c.get(ctx, next, &page); err != nil {
			return entry{}, err
		}
		for _, f := range page.Items {
			res.Findings = append(res.Findings, gate.Reduce(f))
		}
		next = ""
		if page.Continuation != "" {
			next = base + "/findings?status=open&limit=1000&continuation=" + url.QueryEscape(page.Continuation)
		}
	}
	return entry{res: res, fetched: now}, nil
}

// get decodes a JSON answer into v; a 404 is found == false.
func (c *Cache) get(ctx context.Context, u string, v any) (found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("scan results: %w", err)
	}
	if c.opts.Key != "" {
		req.Header.Set("x-functions-key", c.opts.Key)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return false, fmt.Errorf("scan results: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return false, fmt.Errorf("scan results: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("scan results: %s from %s", resp.Status, req.URL.Path)
	}
	if len(body) > maxResponse {
		return false, fmt.Errorf("scan results: answer larger than %d bytes", maxResponse)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return false, fmt.Errorf("scan results: answer is not the expected JSON: %w", err)
	}
	return true, nil
}
