package posture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// Recorder writes assessments to the store: the results (container
// posture), the run summary with the change since the previous run and the
// history (state posture-run, posture-history), and the running-image
// inventory (state running-images).
//
// It writes only what changed: a result is written when it is new, when
// its status, evidence (message), exemption or definition changed, and
// once every RefreshEvery; on a quiet cluster a run writes a handful of
// items instead of one per result. Each result is refreshed at a time of
// day fixed by its id, so the refreshes spread over the day's runs.
type Recorder struct {
	Store store.Store
	// Workers bounds concurrent writes (default 8).
	Workers int
	// HistoryDays is how long history records live (their ttl); 0 keeps
	// them forever.
	HistoryDays int
	// RefreshEvery is how often an unchanged result is written again
	// (default 24h), so that its evaluatedAt is never older.
	RefreshEvery time.Duration
}

// DefaultRefresh is how often an unchanged result is rewritten.
const DefaultRefresh = 24 * time.Hour

// runningImagesChunk bounds the images per running-images item, far below
// the item size limit.
const runningImagesChunk = 1000

// RunID is the state id of the latest run of cluster.
func RunID(cluster string) string { return model.HashID(model.KindPostureRun, cluster) }

// Record stores rep and returns the run summary.
func (rc *Recorder) Record(ctx context.Context, rep *Report) (*model.PostureRun, error) {
	prev := map[string]model.PostureResult{}
	err := store.Each(ctx, rc.Store, store.Posture, store.Query{PartitionKey: rep.Cluster, Limit: 1000},
		func(r model.PostureResult) error {
			prev[r.ID] = r
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read previous results of %s: %w", rep.Cluster, err)
	}
	run := &model.PostureRun{Cluster: rep.Cluster, At: rep.At, Score: rep.Score, ByBenchmark: rep.ByBenchmark,
		ExpiredExemptions: rep.ExpiredExemptions, NotAssessedCount: len(rep.NotAssessed), Checks: rep.Checks}
	run.NotAssessed = rep.NotAssessed[:min(len(rep.NotAssessed), model.MaxRunIDs)]
	for _, pe := range rep.PolicyErrors {
		run.PolicyErrors = append(run.PolicyErrors, pe.Error())
	}
	var last model.State
	if _, err := rc.Store.Get(ctx, store.State, model.KindPostureRun, RunID(rep.Cluster), &last); err == nil {
		var lr model.PostureRun
		if json.Unmarshal(last.Data, &lr) == nil {
			s := lr.Score.Score
			run.PreviousScore = &s
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("read previous run of %s: %w", rep.Cluster, err)
	}

	current := make(map[string]bool, len(rep.Results))
	var write []*model.PostureResult
	for i := range rep.Results {
		r := &rep.Results[i]
		current[r.ID] = true
		old, had := prev[r.ID]
		r.ChangedAt = rep.At
		if had && !old.ChangedAt.IsZero() && sameEvidence(&old, r) {
			r.ChangedAt = old.ChangedAt
		}
		if r.Status == model.PostureFail {
			if had && old.Status == model.PostureFail && !old.FirstFailed.IsZero() {
				r.FirstFailed = old.FirstFailed
			} else {
				r.FirstFailed = rep.At
			}
			if !had || old.Status != model.PostureFail {
				run.NewFailureCount++
				run.NewFailures = appendCapped(run.NewFailures, r.ID)
			}
		} else if had && old.Status == model.PostureFail {
			run.ResolvedCount++
			run.Resolved = appendCapped(run.Resolved, r.ID)
		}
		if !had || !sameContent(&old, r) || rc.refreshDue(r.ID, old.EvaluatedAt, rep.At) {
			write = append(write, r)
		}
	}
	run.ResultsWritten, run.ResultsUnchanged = len(write), len(rep.Results)-len(write)
	var stale []string
	for id, old := range prev {
		if current[id] {
			continue
		}
		stale = append(stale, id)
		if old.Status == model.PostureFail {
			run.ResolvedCount++
			run.Resolved = appendCapped(run.Resolved, id)
		}
	}
	run.Removed = len(stale)

	err = rc.parallel(ctx, len(write)+len(stale), func(i int) error {
		if i < len(write) {
			r := write[i]
			if _, err := rc.Store.Put(ctx, store.Posture, r.Cluster, r.ID, r, store.Cond{}); err != nil {
				return fmt.Errorf("write result %s: %w", r.ID, err)
			}
			return nil
		}
		id := stale[i-len(write)]
		if err := rc.Store.Delete(ctx, store.Posture, rep.Cluster, id); err != nil {
			return fmt.Errorf("delete stale result %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	imageWrites, err := rc.recordImages(ctx, rep)
	if err != nil {
		return nil, err
	}
	run.Writes = len(write) + len(stale) + imageWrites + 2 // and the history and run records
	// The history keeps the scores and counts, not the lists.
	hist := *run
	hist.Checks, hist.NotAssessed = nil, nil
	ttl := rc.HistoryDays * 86400
	if err := rc.putState(ctx, model.KindPostureHistory, model.HashID(rep.Cluster, fmt.Sprint(rep.At.UnixNano())), rep, &hist, ttl); err != nil {
		return nil, err
	}
	if err := rc.putState(ctx, model.KindPostureRun, RunID(rep.Cluster), rep, run, 0); err != nil {
		return nil, err
	}
	return run, nil
}

// sameEvidence reports whether a result's status, evidence and exemption
// are those stored.
func sameEvidence(old, r *model.PostureResult) bool {
	return old.Status == r.Status && old.Message == r.Message && old.ExemptReason == r.ExemptReason && old.ExemptUntil.Equal(r.ExemptUntil)
}

// sameContent reports whether writing r would change the stored result
// other than in its times: evidence, and the check's definition (title,
// severity, benchmarks, remediation, patch).
func sameContent(old, r *model.PostureResult) bool {
	return sameEvidence(old, r) && old.ChangedAt.Equal(r.ChangedAt) && old.FirstFailed.Equal(r.FirstFailed) &&
		old.Title == r.Title && old.Severity == r.Severity && slices.Equal(old.Benchmarks, r.Benchmarks) &&
		old.Remediation == r.Remediation && old.Patch == r.Patch && old.Namespace == r.Namespace && old.Resource == r.Resource
}

// refreshDue reports whether a result last written at last is due for its
// refresh at now: each result has a time of day (from its id) and is
// rewritten by the first run at or after that time once a period has
// passed since it was written.
func (rc *Recorder) refreshDue(id string, last, now time.Time) bool {
	every := rc.RefreshEvery
	if every <= 0 {
		every = DefaultRefresh
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	slot := time.Duration(h.Sum64() % uint64(every))
	boundary := now.Add(-slot).Truncate(every).Add(slot) // the latest slot time at or before now
	return last.Before(boundary)
}

func appendCapped(list []string, id string) []string {
	if len(list) >= model.MaxRunIDs {
		return list
	}
	return append(list, id)
}

func (rc *Recorder) putState(ctx context.Context, kind, id string, rep *Report, data any, ttl int) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s of %s: %w", kind, rep.Cluster, err)
	}
	st := model.State{ID: id, Kind: kind, UpdatedAt: rep.At, Data: raw, TTL: ttl}
	if _, err := rc.Store.Put(ctx, store.State, kind, id, st, store.Cond{}); err != nil {
		return fmt.Errorf("write %s of %s: %w", kind, rep.Cluster, err)
	}
	return nil
}

// RunningImagesID is the state id of chunk n of a cluster's running-image
// inventory.
func RunningImagesID(cluster string, n int) string {
	return model.HashID(model.KindRunningImages, cluster, fmt.Sprint(n))
}

// recordImages writes the running-image inventory in chunks and deletes
// chunks the previous run wrote beyond the new count. It returns the writes
// it made.
func (rc *Recorder) recordImages(ctx context.Context, rep *Report) (int, error) {
	imgs := rep.RunningImages
	for i := range imgs {
		imgs[i].LastSeen = rep.At
	}
	chunks := (len(imgs) + runningImagesChunk - 1) / runningImagesChunk
	var old model.State
	oldChunks := 0
	if _, err := rc.Store.Get(ctx, store.State, model.KindRunningImages, RunningImagesID(rep.Cluster, 0), &old); err == nil {
		var ri model.RunningImages
		if json.Unmarshal(old.Data, &ri) == nil {
			oldChunks = ri.Chunks
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("read running images of %s: %w", rep.Cluster, err)
	}
	writes := 0
	for n := 0; n < max(chunks, 1); n++ {
		lo, hi := n*runningImagesChunk, min((n+1)*runningImagesChunk, len(imgs))
		part := model.RunningImages{Cluster: rep.Cluster, Chunk: n, Chunks: chunks, At: rep.At, Images: imgs[lo:hi]}
		if err := rc.putState(ctx, model.KindRunningImages, RunningImagesID(rep.Cluster, n), rep, part, 0); err != nil {
			return writes, err
		}
		writes++
	}
	for n := max(chunks, 1); n < oldChunks; n++ {
		if err := rc.Store.Delete(ctx, store.State, model.KindRunningImages, RunningImagesID(rep.Cluster, n)); err != nil {
			return writes, fmt.Errorf("delete running images chunk %d of %s: %w", n, rep.Cluster, err)
		}
		writes++
	}
	return writes, nil
}

// parallel runs fn(0..n-1) on at most Workers goroutines and returns the
// first error.
func (rc *Recorder) parallel(ctx context.Context, n int, fn func(int) error) error {
	workers := rc.Workers
	if workers <= 0 {
		workers = 8
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(workers, max(n, 1)) {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}
