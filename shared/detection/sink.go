package detection

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// maxConflicts bounds the re-reads when another instance updates the same
// alert or baseline concurrently.
const maxConflicts = 8

// Sink merges folded alerts into the store's alerts container.
type Sink struct {
	st  store.Store
	d   *Detector
	now func() time.Time
}

// NewSink returns a sink writing to st.
func NewSink(st store.Store, d *Detector, now func() time.Time) *Sink {
	return &Sink{st: st, d: d, now: now}
}

// Save merges each fold into its stored alert: events the stored alert has
// already counted (a redelivered batch) are not counted again, first/last
// seen widen, and a new alert is enriched with its image's open
// vulnerabilities. Writes are conditional on the ETag read, so concurrent
// instances do not lose counts. It returns the resulting alerts, including
// those a redelivery left unchanged, so that they can be re-sent downstream.
func (s *Sink) Save(ctx context.Context, folds []*Fold) ([]model.Alert, error) {
	risks := &riskCache{byDigest: map[string]*imageRisk{}, digestOf: map[string]string{}}
	out := make([]model.Alert, 0, len(folds))
	for _, f := range folds {
		a, err := s.save(ctx, f, risks)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// riskCache holds one Save's lookups: image risks by digest, and the digest
// of each image reference resolved.
type riskCache struct {
	byDigest map[string]*imageRisk
	digestOf map[string]string
}

func (s *Sink) save(ctx context.Context, f *Fold, risks *riskCache) (model.Alert, error) {
	id, pk := f.Alert.ID, f.Alert.Cluster
	for range maxConflicts {
		var cur model.Alert
		etag, err := s.st.Get(ctx, store.Alerts, pk, id, &cur)
		var next model.Alert
		var cond store.Cond
		switch {
		case errors.Is(err, store.ErrNotFound):
			next = f.Alert
			next.EventIDs = lastN(f.EventIDs, MaxEventIDs)
			next.Status = s.d.status(next.Type, next.Count, "")
			cond.IfNoneMatch = true
		case err != nil:
			return model.Alert{}, fmt.Errorf("read alert %s: %w", id, err)
		default:
			var changed bool
			next, changed = s.merge(cur, f)
			if !changed {
				return cur, nil
			}
			cond.IfMatch = etag
		}
		if next.ImageDigest == "" && next.Image != "" && next.Vulnerabilities == nil {
			d, err := s.resolve(ctx, next.Image, risks)
			if err != nil {
				return model.Alert{}, err
			}
			next.ImageDigest = d
		}
		if next.ImageDigest != "" && next.Vulnerabilities == nil {
			r, err := s.risk(ctx, next.ImageDigest, risks.byDigest)
			if err != nil {
				return model.Alert{}, err
			}
			r.apply(&next)
		}
		_, err = s.st.Put(ctx, store.Alerts, pk, id, next, cond)
		if errors.Is(err, store.ErrPrecondition) {
			continue
		}
		if err != nil {
			return model.Alert{}, fmt.Errorf("write alert %s: %w", id, err)
		}
		return next, nil
	}
	return model.Alert{}, fmt.Errorf("write alert %s: %d concurrent updates in a row: %w", id, maxConflicts, store.ErrPrecondition)
}

// merge adds the fold's new events to the stored alert cur.
func (s *Sink) merge(cur model.Alert, f *Fold) (model.Alert, bool) {
	var fresh []string
	for _, id := range f.EventIDs {
		if !slices.Contains(cur.EventIDs, id) {
			fresh = append(fresh, id)
		}
	}
	if len(fresh) == 0 {
		return cur, false
	}
	cur.Count += len(fresh)
	cur.EventIDs = lastN(append(cur.EventIDs, fresh...), MaxEventIDs)
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
	cur.Techniques = union(cur.Techniques, f.Alert.Techniques)
	if cur.ImageDigest == "" {
		cur.ImageDigest, cur.Image = f.Alert.ImageDigest, f.Alert.Image
	}
	cur.Status = s.d.status(cur.Type, cur.Count, cur.Status)
	return cur, true
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
func (s *Sink) resolve(ctx context.Context, ref string, c *riskCache) (string, error) {
	if d, ok := c.digestOf[ref]; ok {
		return d, nil
	}
	name, tag := ref, "latest"
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		name, tag = ref[:i], ref[i+1:]
	}
	host, repo, ok := strings.Cut(name, "/")
	if !ok || !strings.ContainsAny(host, ".:") {
		c.digestOf[ref] = "" // no registry host: not one Palisade scans
		return "", nil
	}
	d, err := vulnstore.ResolveTag(ctx, s.st, host, repo, tag)
	if err != nil {
		return "", fmt.Errorf("find the image %s: %w", ref, err)
	}
	c.digestOf[ref] = d
	return d, nil
}

func (s *Sink) risk(ctx context.Context, digest string, cache map[string]*imageRisk) (*imageRisk, error) {
	if r, ok := cache[digest]; ok {
		return r, nil
	}
	e, err := vulnstore.OpenFindings(ctx, s.st, digest, "")
	if err != nil {
		return nil, err
	}
	r := &imageRisk{digest: digest, counts: e.Counts, kev: e.KnownExploited}
	cache[digest] = r
	return r, nil
}

// apply records the image's vulnerabilities on a and, when it has critical
// or known-exploited ones, says so and raises the severity one step.
func (r *imageRisk) apply(a *model.Alert) {
	counts := model.Counts{}
	for k, v := range r.counts {
		counts[k] = v
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
	ev := make(map[string]string, len(a.Evidence)+1)
	for k, v := range a.Evidence {
		ev[k] = v
	}
	ev["imageRisk"] = fmt.Sprintf("%d critical, %d known exploited", crit, r.kev)
	a.Evidence = ev
}
