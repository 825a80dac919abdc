package detection

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/statecache"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// maxConflicts bounds the attempts of one invocation when other instances
// update the same alerts or baselines concurrently.
const maxConflicts = 8

// SinkOptions configure a Sink. Zero values take the defaults noted.
type SinkOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// EnrichmentTTL is how long an image's open findings (and the digest an
	// image reference resolves to) are reused before they are read again.
	// Default five minutes.
	EnrichmentTTL time.Duration
	// MaxAlerts bounds the alerts an instance keeps in memory. Default
	// 10,000.
	MaxAlerts int
}

// Sink merges folded alerts into the store's alerts container. It keeps the
// alerts it read or wrote in memory (statecache), so that an alert touched
// by every invocation is read once and written once per invocation, and
// the open findings of each image for EnrichmentTTL. It is safe for
// concurrent invocations.
type Sink struct {
	st     store.Store
	d      *Detector
	alerts *statecache.Cache[model.Alert]
	risks  *enrichment
}

// NewSink returns a sink writing to st.
func NewSink(st store.Store, d *Detector, opts SinkOptions) *Sink {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.EnrichmentTTL <= 0 {
		opts.EnrichmentTTL = 5 * time.Minute
	}
	return &Sink{
		st: st, d: d,
		alerts: statecache.New(store.Alerts, statecache.JSON[model.Alert](), statecache.Options{MaxEntries: opts.MaxAlerts, Stage: AlertStage}),
		risks:  &enrichment{st: st, ttl: opts.EnrichmentTTL, now: opts.Now, risks: map[string]cached[*imageRisk]{}, digests: map[string]cached[string]{}},
	}
}

// The statecache stages of an invocation's writes: baselines (and parked
// inputs) first, alerts, which baselines decide, after.
const (
	StateStage = 0
	AlertStage = 1
)

// Save merges the folds into their stored alerts, in attempts of its own
// (see Stage). It returns the resulting alerts.
func (s *Sink) Save(ctx context.Context, folds []*Fold) ([]model.Alert, error) {
	var out []model.Alert
	var unchanged []int
	err := statecache.Run(ctx, s.st, maxConflicts, func(tx *statecache.Tx) error {
		var err error
		out, unchanged, err = s.Stage(ctx, tx, folds)
		return err
	})
	if err == nil {
		err = s.Refresh(ctx, out, unchanged)
	}
	if err != nil {
		return nil, fmt.Errorf("save alerts: %w", err)
	}
	return out, nil
}

// Stage stages in tx the merge of each fold into its stored alert: events
// the stored alert has already counted (a redelivered batch, an event the
// sensor sent twice) are not counted again, first and last seen widen, and
// an alert is enriched with its image's open vulnerabilities. It returns
// the alerts as they will be stored once tx commits, including those a
// redelivery left unchanged, so that they can be re-sent downstream, and
// the indices of those: they are this instance's copies, which a person may
// have triaged since (see Refresh).
func (s *Sink) Stage(ctx context.Context, tx *statecache.Tx, folds []*Fold) (alerts []model.Alert, unchanged []int, err error) {
	keys := make([]store.Key, len(folds))
	for i, f := range folds {
		keys[i] = store.Key{PK: f.Alert.Cluster, ID: f.Alert.ID}
	}
	if err := statecache.Prefetch(ctx, tx, s.alerts, keys); err != nil {
		return nil, nil, fmt.Errorf("read alerts: %w", err)
	}
	alerts = make([]model.Alert, 0, len(folds))
	for _, f := range folds {
		var ferr error
		changed := false
		a, err := statecache.Update(ctx, tx, s.alerts, f.Alert.Cluster, f.Alert.ID, func(cur model.Alert, ok bool) (model.Alert, bool) {
			next, ch := s.newAlert(f), true
			if ok {
				next, ch = s.merge(cur, f)
			}
			if ch {
				ferr = s.risks.enrich(ctx, &next)
			}
			changed = changed || ch
			return next, ch
		})
		if err == nil {
			err = ferr
		}
		if err != nil {
			return nil, nil, err
		}
		if !changed {
			unchanged = append(unchanged, len(alerts))
		}
		alerts = append(alerts, a)
	}
	return alerts, unchanged, nil
}

// Refresh reads again, in one round trip, the open alerts among
// alerts[unchanged...] (see Stage), once their batch is committed. A person
// triages an alert in the store, not in this instance's cache: the cached
// copy of an alert a redelivery left unchanged (so wrote nothing, and met
// no ETag) may say new when the alert was dismissed, and must not be sent
// downstream as open. A write is safe without this: it is conditional on
// the cached ETag, so a stale copy conflicts and is read again. A copy
// found stale is dropped from the cache.
func (s *Sink) Refresh(ctx context.Context, alerts []model.Alert, unchanged []int) error {
	var keys []store.Key
	var at []int
	for _, i := range unchanged {
		if model.AlertOpen(alerts[i].Status) {
			keys = append(keys, store.Key{PK: alerts[i].Cluster, ID: alerts[i].ID})
			at = append(at, i)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	items, err := store.GetMany(ctx, s.st, store.Alerts, keys)
	if err != nil {
		return fmt.Errorf("read alerts again: %w", err)
	}
	for j, it := range items {
		if it.Raw == nil {
			continue // expired since: the copy is the last word
		}
		var a model.Alert
		if err := json.Unmarshal(it.Raw, &a); err != nil {
			return fmt.Errorf("decode alert %s: %w", keys[j].ID, err)
		}
		if a.Status != alerts[at[j]].Status {
			s.alerts.Forget(keys[j].PK, keys[j].ID)
		}
		alerts[at[j]] = a
	}
	return nil
}

// newAlert is the alert of a fold seen for the first time.
func (s *Sink) newAlert(f *Fold) model.Alert {
	a := f.Alert
	a.EventIDs = lastN(f.EventIDs, MaxEventIDs)
	a.Watermarks = raiseMarks(nil, f.Positions)
	a.Status = s.d.status(a.Type, a.Count, "")
	return a
}

// merge adds the fold's new events to the stored alert cur, returning a
// copy (cur is shared). An event is already counted when its position is at
// or below the alert's watermark for its partition, or its id is among the
// alert's recent ids.
func (s *Sink) merge(cur model.Alert, f *Fold) (model.Alert, bool) {
	var fresh []string
	for i, id := range f.EventIDs {
		p := f.Positions[i]
		if wm, ok := cur.Watermarks[p.Partition]; ok && p.Partition != "" && p.counted(wm) {
			continue
		}
		if !slices.Contains(cur.EventIDs, id) {
			fresh = append(fresh, id)
		}
	}
	if len(fresh) == 0 {
		return cur, false
	}
	cur.Count += len(fresh)
	cur.EventIDs = lastN(append(slices.Clip(cur.EventIDs), fresh...), MaxEventIDs)
	cur.Watermarks = raiseMarks(cur.Watermarks, f.Positions)
	if f.Alert.FirstSeen.Before(cur.FirstSeen) {
		cur.FirstSeen = f.Alert.FirstSeen
	}
	if !f.Alert.LastSeen.Before(cur.LastSeen) {
		cur.LastSeen, cur.LastSeenUnix = f.Alert.LastSeen, f.Alert.LastSeenUnix
		cur.Evidence, cur.Rule, cur.User = f.Alert.Evidence, f.Alert.Rule, f.Alert.User
		if f.Alert.Pod != "" {
			cur.Pod, cur.Container = f.Alert.Pod, f.Alert.Container
		}
	}
	cur.Techniques = union(slices.Clip(cur.Techniques), f.Alert.Techniques)
	if cur.ImageDigest == "" {
		cur.ImageDigest, cur.Image = f.Alert.ImageDigest, f.Alert.Image
	}
	cur.Status = s.d.status(cur.Type, cur.Count, cur.Status)
	return cur, true
}

// raiseMarks returns a copy of marks raised to the highest sequence number
// and enqueued time of each partition in ps (nil when there is none).
// Partitions beyond MaxWatermarks are not tracked.
func raiseMarks(marks map[string]model.Watermark, ps []Position) map[string]model.Watermark {
	var out map[string]model.Watermark
	for _, p := range ps {
		if p.Partition == "" {
			continue
		}
		if out == nil {
			out = maps.Clone(marks)
			if out == nil {
				out = map[string]model.Watermark{}
			}
		}
		wm, ok := out[p.Partition]
		if !ok && len(out) >= MaxWatermarks {
			continue
		}
		wm.Seq = max(wm.Seq, p.Seq)
		wm.EnqueuedMs = max(wm.EnqueuedMs, p.EnqueuedMs)
		out[p.Partition] = wm
	}
	if out == nil {
		return marks
	}
	return out
}

// enrichment finds and remembers, for EnrichmentTTL, the open findings of
// images and the digests image references resolve to. Safe for concurrent
// use.
type enrichment struct {
	st  store.Store
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	risks   map[string]cached[*imageRisk] // by digest
	digests map[string]cached[string]     // by image reference
}

// maxEnrichment bounds each of enrichment's maps; past it, expired entries
// are dropped, and if that is not enough, all.
const maxEnrichment = 10_000

type cached[T any] struct {
	v  T
	at time.Time
}

// enrich records on a its image's digest (resolved from its reference when
// the runtime gave none) and open vulnerabilities, once: an alert that has
// them keeps them.
func (e *enrichment) enrich(ctx context.Context, a *model.Alert) error {
	if a.Vulnerabilities != nil || (a.ImageDigest == "" && a.Image == "") {
		return nil
	}
	if a.ImageDigest == "" {
		d, err := e.resolve(ctx, a.Image)
		if err != nil {
			return err
		}
		if d == "" {
			return nil
		}
		a.ImageDigest = d
	}
	r, err := e.risk(ctx, a.ImageDigest)
	if err != nil {
		return err
	}
	r.apply(a)
	return nil
}

// lookup returns m[k] when it is younger than the TTL.
func lookup[T any](e *enrichment, m map[string]cached[T], k string) (T, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := m[k]
	if !ok || e.now().Sub(c.at) >= e.ttl {
		return c.v, false
	}
	return c.v, true
}

func remember[T any](e *enrichment, m map[string]cached[T], k string, v T) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if len(m) >= maxEnrichment {
		maps.DeleteFunc(m, func(_ string, c cached[T]) bool { return now.Sub(c.at) >= e.ttl })
		if len(m) >= maxEnrichment {
			clear(m)
		}
	}
	m[k] = cached[T]{v: v, at: now}
}

// imageRisk is the summary of an image's open findings.
type imageRisk struct {
	digest string
	counts model.Counts
	kev    int
}

// resolve finds the digest of an image reference ("host/repo:tag") among
// the scanned images, for events whose container runtime reported no digest
// (vulnstore.ResolveTag). A reference with no registry host, or to an image
// never scanned, resolves to "".
func (e *enrichment) resolve(ctx context.Context, ref string) (string, error) {
	if d, ok := lookup(e, e.digests, ref); ok {
		return d, nil
	}
	name, tag := ref, "latest"
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		name, tag = ref[:i], ref[i+1:]
	}
	host, repo, ok := strings.Cut(name, "/")
	if !ok || !strings.ContainsAny(host, ".:") {
		remember(e, e.digests, ref, "") // no registry host: not one Palisade scans
		return "", nil
	}
	d, err := vulnstore.ResolveTag(ctx, e.st, host, repo, tag)
	if err != nil {
		return "", fmt.Errorf("find the image %s: %w", ref, err)
	}
	remember(e, e.digests, ref, d)
	return d, nil
}

func (e *enrichment) risk(ctx context.Context, digest string) (*imageRisk, error) {
	if r, ok := lookup(e, e.risks, digest); ok {
		return r, nil
	}
	x, err := vulnstore.OpenFindings(ctx, e.st, digest, "")
	if err != nil {
		return nil, err
	}
	r := &imageRisk{digest: digest, counts: x.Counts, kev: x.KnownExploited}
	remember(e, e.risks, digest, r)
	return r, nil
}

// apply records the image's vulnerabilities on a and, when it has critical
// or known-exploited ones, says so and raises the severity one step.
func (r *imageRisk) apply(a *model.Alert) {
	counts := maps.Clone(r.counts)
	if counts == nil {
		counts = model.Counts{}
	}
	a.Vulnerabilities = &counts
	a.KnownExploited = r.kev > 0
	crit := r.counts[model.SeverityCritical]
	if crit == 0 && r.kev == 0 {
		return
	}
	a.Severity = raise(a.Severity)
	a.SeverityRank = a.Severity.Rank()
	a.Description += fmt.Sprintf(" The container's image %s has %d critical and %d known-exploited open vulnerabilities, which makes compromise more likely: severity raised.", r.digest, crit, r.kev)
	ev := maps.Clone(a.Evidence)
	if ev == nil {
		ev = map[string]string{}
	}
	ev["imageRisk"] = fmt.Sprintf("%d critical, %d known exploited", crit, r.kev)
	a.Evidence = ev
}
