package vulnstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// RunningIn is one cluster an image runs in.
type RunningIn struct {
	Cluster   string
	Image     string   // the reference as deployed
	Workloads []string // Kind/namespace/name
}

// Running says which images run where: digest → clusters, from the
// running-image inventories the posture assessment records (state kind
// model.KindRunningImages).
type Running map[string][]RunningIn

// Has reports whether the image runs in any monitored cluster.
func (r Running) Has(digest string) bool { return len(r[digest]) > 0 }

// ReadRunning reads every cluster's running-image inventory.
func ReadRunning(ctx context.Context, st store.Store) (Running, error) {
	out := Running{}
	err := store.Each(ctx, st, store.State, store.Query{PartitionKey: model.KindRunningImages, Limit: 10}, func(s model.State) error {
		var ri model.RunningImages
		if err := json.Unmarshal(s.Data, &ri); err != nil {
			return fmt.Errorf("decode running images %s: %w", s.ID, err)
		}
		for _, img := range ri.Images {
			if model.ValidDigest(img.Digest) {
				out[img.Digest] = append(out[img.Digest], RunningIn{Cluster: ri.Cluster, Image: img.Image, Workloads: img.Workloads})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read running images: %w", err)
	}
	for _, in := range out {
		slices.SortFunc(in, func(a, b RunningIn) int {
			if a.Cluster < b.Cluster {
				return -1
			}
			if a.Cluster > b.Cluster {
				return 1
			}
			return 0
		})
	}
	return out, nil
}

// IntelUpdate is an update of the stored findings after the exploitation
// feeds changed: their data and priority are annotated again, without
// matching anything again.
type IntelUpdate struct {
	Intel Annotator
	// Running says whether an image runs now.
	Running func(digest string) bool
	// All updates every open finding; else the open findings of CVEs.
	// Either way, every open finding of an image whose running state
	// differs from when its findings were prioritised is updated too.
	All  bool
	CVEs []string
	// Visit, when set, is called with every open finding looked at, as
	// stored after the update (changed or not), with whether its image
	// runs. An error stops the update.
	Visit func(ctx context.Context, f model.Finding, running bool) error
	// Workers update this many images at once; 0 means 4.
	Workers int
	// Now stamps the index items and summaries rewritten; nil means time.Now.
	Now func() time.Time
}

// IntelResult counts what ApplyIntel did.
type IntelResult struct {
	Images    int // images whose findings were looked at
	Checked   int // findings looked at
	Updated   int // findings rewritten
	Conflicts int // findings read again because a scan changed them meanwhile
	// RunningChanged: images whose running state changed since their
	// findings were prioritised (all their open findings were looked at).
	RunningChanged int
}

// ApplyIntel re-annotates the open findings the update names, found
// through the CVE index: each is read, annotated, and written back (only
// when its exploitation data or priority changed) on the condition that it
// did not change since it was read; a finding a concurrent scan rewrote is
// read again. Writes of one image go in one batch. Running it again with
// the same feeds changes nothing, so a cut-short or redelivered run is
// safe to repeat.
func ApplyIntel(ctx context.Context, st store.Store, u IntelUpdate) (IntelResult, error) {
	if u.Workers <= 0 {
		u.Workers = 4
	}
	if u.Now == nil {
		u.Now = time.Now
	}
	a := &applier{st: st, u: u, cves: map[string]bool{}, fullDone: map[string]bool{}}
	for _, c := range u.CVEs {
		a.cves[c] = true
	}
	q := store.Query{PartitionKey: model.KindCVEIndex, Limit: 200}
	for {
		page, err := st.Query(ctx, store.State, q)
		if err != nil {
			return a.res, fmt.Errorf("read CVE index: %w", err)
		}
		var units []unit
		for _, raw := range page.Items {
			var item model.State
			var c cveIndex
			if err := json.Unmarshal(raw, &item); err != nil {
				return a.res, fmt.Errorf("decode CVE index item: %w", err)
			}
			if err := json.Unmarshal(item.Data, &c); err != nil || !model.ValidDigest(c.Digest) {
				continue // rewritten by the image's next scan
			}
			if un, ok := a.plan(c); ok {
				units = append(units, un)
			}
		}
		if err := a.run(ctx, units); err != nil {
			return a.res, err
		}
		if page.Continuation == "" {
			return a.res, nil
		}
		q.Continuation = page.Continuation
	}
}

// Reannotate annotates the open findings of one image again with in and
// writes back those that changed, as ApplyIntel does. A scan calls it when
// the feeds changed while it recorded the image with the older ones: an
// update that ran in between may have been overwritten.
func Reannotate(ctx context.Context, st store.Store, digest string, in Annotator, running bool) (IntelResult, error) {
	a := &applier{st: st, u: IntelUpdate{Intel: in}}
	ids, err := openIDs(ctx, st, digest)
	if err != nil || len(ids) == 0 {
		return a.res, err
	}
	err = a.update(ctx, digest, ids, running)
	return a.res, err
}

type applier struct {
	st   store.Store
	u    IntelUpdate
	cves map[string]bool

	mu       sync.Mutex
	res      IntelResult
	fullDone map[string]bool // images whose every open finding was looked at
}

// now is the update's clock.
func (a *applier) now() time.Time {
	if a.u.Now == nil {
		return time.Now()
	}
	return a.u.Now()
}

// unit is the work on one index item.
type unit struct {
	digest  string
	chunk   int
	running bool
	full    bool     // every open finding of the image (its running state changed)
	ids     []string // else these
}

func (a *applier) plan(c cveIndex) (unit, bool) {
	running := a.u.Running(c.Digest)
	un := unit{digest: c.Digest, chunk: c.Chunk, running: running}
	if c.Running != running {
		un.full = true
		return un, true
	}
	for cve, ids := range c.CVEs {
		if a.u.All || a.cves[cve] {
			un.ids = append(un.ids, ids...)
		}
	}
	return un, len(un.ids) > 0
}

// run does the units of one page on Workers goroutines.
func (a *applier) run(ctx context.Context, units []unit) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan unit)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range min(a.u.Workers, max(len(units), 1)) {
		wg.Go(func() {
			for un := range next {
				if err := a.do(ctx, un); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
feed:
	for _, un := range units {
		select {
		case next <- un:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func (a *applier) do(ctx context.Context, un unit) error {
	ids := un.ids
	if un.full {
		a.mu.Lock()
		done := a.fullDone[un.digest]
		a.fullDone[un.digest] = true
		a.mu.Unlock()
		if !done {
			var err error
			if ids, err = openIDs(ctx, a.st, un.digest); err != nil {
				return err
			}
			a.count(func(r *IntelResult) { r.RunningChanged++ })
		}
	}
	if len(ids) > 0 {
		if err := a.update(ctx, un.digest, ids, un.running); err != nil {
			return err
		}
	}
	if un.full {
		return a.markRunning(ctx, un.digest, un.chunk, un.running)
	}
	return nil
}

func (a *applier) count(fn func(r *IntelResult)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn(&a.res)
}

// openIDs lists the ids of an image's open findings.
func openIDs(ctx context.Context, st store.Store, digest string) ([]string, error) {
	var ids []string
	q := store.Query{PartitionKey: digest, Filters: []store.Filter{{Field: "status", Op: store.Eq, Value: model.FindingOpen}}, Limit: 1000}
	err := store.Each(ctx, st, store.Findings, q, func(f struct {
		ID string `json:"id"`
	}) error {
		ids = append(ids, f.ID)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read open findings of %s: %w", digest, err)
	}
	return ids, nil
}

// pending is a finding read with its ETag and its update.
type pending struct {
	etag string
	next model.Finding
	// suppression: the update suppresses the finding or brings it back,
	// so its image's counts change.
	suppression bool
}

// update re-annotates the findings ids of one image and writes back those
// that changed, in one batch, each on the condition that it is unchanged;
// one a scan changed meanwhile is done again on its own.
func (a *applier) update(ctx context.Context, digest string, ids []string, running bool) error {
	var todo []pending
	checked := 0
	for _, id := range ids {
		p, ok, err := a.read(ctx, digest, id, running, true)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		checked++
		if p.etag != "" {
			todo = append(todo, p)
		}
	}
	a.count(func(r *IntelResult) { r.Images++; r.Checked += checked })
	changed, err := a.write(ctx, digest, todo, running)
	if err != nil {
		return err
	}
	if changed {
		if err := recount(ctx, a.st, digest); err != nil {
			return err
		}
	}
	if len(todo) > 0 { // KEV flags and suppressions show in the summary
		if _, err := RebuildSummary(ctx, a.st, digest, a.now()); err != nil {
			return err
		}
	}
	return nil
}

// write writes the updates of one image in one batch, each on the
// condition that the finding is unchanged; one a scan changed meanwhile is
// done again on its own. changed reports whether a written update
// suppressed a finding or brought one back.
func (a *applier) write(ctx context.Context, digest string, todo []pending, running bool) (changed bool, err error) {
	if len(todo) == 0 {
		return false, nil
	}
	writes := make([]store.Write, len(todo))
	for i, p := range todo {
		writes[i] = store.Write{Container: store.Findings, PK: digest, ID: p.next.ID, Value: p.next, Cond: store.Cond{IfMatch: p.etag}}
	}
	res, err := store.WriteBatch(ctx, a.st, writes)
	if err != nil {
		return false, fmt.Errorf("update findings of %s: %w", digest, err)
	}
	for j, r := range res[0] {
		switch {
		case r.Err == nil:
			a.count(func(r *IntelResult) { r.Updated++ })
			changed = changed || todo[j].suppression
		case errors.Is(r.Err, store.ErrPrecondition):
			sup, err := a.again(ctx, digest, todo[j].next.ID, running)
			if err != nil {
				return false, err
			}
			changed = changed || sup
		default:
			return false, fmt.Errorf("update findings of %s: %w", digest, r.Err)
		}
	}
	return changed, nil
}

// recount sets an image's counts from its open findings that count, after
// a VEX statement suppressed some or was withdrawn.
func recount(ctx context.Context, st store.Store, digest string) error {
	stored, err := Lookup(ctx, st, digest)
	if err != nil || !stored.Found {
		return err
	}
	e, err := OpenFindings(ctx, st, digest, "")
	if err != nil {
		return err
	}
	return putImage(ctx, st, &stored, digest, func(prev Stored) model.Image {
		img := prev.Image
		img.SetCounts(e.Counts)
		return img
	})
}

// read reads one finding and annotates a copy, visiting it when visit is
// set. ok is false when it is no longer open (the index lags behind a scan
// that resolved it); the returned etag is "" when nothing changed.
func (a *applier) read(ctx context.Context, digest, id string, running, visit bool) (pending, bool, error) {
	var f model.Finding
	etag, err := a.st.Get(ctx, store.Findings, digest, id, &f)
	if errors.Is(err, store.ErrNotFound) {
		return pending{}, false, nil
	}
	if err != nil {
		return pending{}, false, fmt.Errorf("read finding %s of %s: %w", id, digest, err)
	}
	if f.Status != model.FindingOpen {
		return pending{}, false, nil
	}
	next := f
	a.u.Intel.Annotate(&next, running)
	if visit && a.u.Visit != nil {
		if err := a.u.Visit(ctx, next, running); err != nil {
			return pending{}, false, err
		}
	}
	if sameIntel(f, next) {
		return pending{next: next}, true, nil
	}
	return pending{etag: etag, next: next, suppression: !ptrEqual(f.Suppressed, next.Suppressed)}, true, nil
}

// again does the update of one finding a concurrent scan changed since it
// was read: it reads it again and writes it back, as long as scans keep
// changing it. suppression reports whether the update written suppressed
// the finding or brought it back.
func (a *applier) again(ctx context.Context, digest, id string, running bool) (suppression bool, err error) {
	for range maxConflicts {
		a.count(func(r *IntelResult) { r.Conflicts++ })
		// Visited already: read again quietly.
		p, ok, err := a.read(ctx, digest, id, running, false)
		if err != nil || !ok || p.etag == "" {
			return false, err
		}
		_, err = a.st.Put(ctx, store.Findings, digest, id, p.next, store.Cond{IfMatch: p.etag})
		if err == nil {
			a.count(func(r *IntelResult) { r.Updated++ })
			return p.suppression, nil
		}
		if !errors.Is(err, store.ErrPrecondition) {
			return false, fmt.Errorf("update finding %s of %s: %w", id, digest, err)
		}
	}
	return false, fmt.Errorf("update finding %s of %s: %d concurrent changes in a row: %w", id, digest, maxConflicts, store.ErrPrecondition)
}

// markRunning records in an index item that its image's findings are now
// prioritised for its running state; an item a scan rewrote meanwhile is
// left as it is.
func (a *applier) markRunning(ctx context.Context, digest string, chunk int, running bool) error {
	id := indexID(digest, chunk)
	var item model.State
	etag, err := a.st.Get(ctx, store.State, model.KindCVEIndex, id, &item)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read CVE index of %s: %w", digest, err)
	}
	var c cveIndex
	if err := json.Unmarshal(item.Data, &c); err != nil || c.Running == running {
		return nil
	}
	c.Running = running
	next, err := indexItem(c, a.u.Now())
	if err != nil {
		return err
	}
	_, err = a.st.Put(ctx, store.State, model.KindCVEIndex, id, next, store.Cond{IfMatch: etag})
	if err != nil && !errors.Is(err, store.ErrPrecondition) {
		return fmt.Errorf("store CVE index of %s: %w", digest, err)
	}
	return nil
}

// sameIntel reports whether two versions of a finding agree on what an
// Annotator sets (its suppression included).
func sameIntel(a, b model.Finding) bool {
	return a.KnownExploited == b.KnownExploited && a.Priority == b.Priority && a.PriorityRank == b.PriorityRank &&
		ptrEqual(a.Suppressed, b.Suppressed) && ptrEqual(a.KEV, b.KEV) && ptrEqual(a.EPSS, b.EPSS) && slices.Equal(a.MissingFeeds, b.MissingFeeds)
}

func ptrEqual[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
