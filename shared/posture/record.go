package posture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/runningimages"
	"github.com/palisade-sec/palisade/shared/store"
)

// Recorder writes assessments to the store: the results (container
// posture), the run summary with the change since the previous run and the
// history (state posture-run, posture-history), and the running-image
// inventory (shared/runningimages) when the report carries one.
type Recorder struct {
	Store store.Store
	// Workers bounds concurrent writes (default 8).
	Workers int
}

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
		ExpiredExemptions: rep.ExpiredExemptions}
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
	for i := range rep.Results {
		r := &rep.Results[i]
		current[r.ID] = true
		old, had := prev[r.ID]
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
	}
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

	err = rc.parallel(ctx, len(rep.Results)+len(stale), func(i int) error {
		if i < len(rep.Results) {
			r := &rep.Results[i]
			if _, err := rc.Store.Put(ctx, store.Posture, r.Cluster, r.ID, r, store.Cond{}); err != nil {
				return fmt.Errorf("write result %s: %w", r.ID, err)
			}
			return nil
		}
		id := stale[i-len(rep.Results)]
		if err := rc.Store.Delete(ctx, store.Posture, rep.Cluster, id); err != nil {
			return fmt.Errorf("delete stale result %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := rc.putState(ctx, model.KindPostureHistory, model.HashID(rep.Cluster, fmt.Sprint(rep.At.UnixNano())), rep, run); err != nil {
		return nil, err
	}
	if err := rc.putState(ctx, model.KindPostureRun, RunID(rep.Cluster), rep, run); err != nil {
		return nil, err
	}
	if rep.RunningImages != nil {
		if err := runningimages.Write(ctx, rc.Store, rep.Cluster, rep.RunningImages, rep.At); err != nil {
			return nil, err
		}
	}
	return run, nil
}

func appendCapped(list []string, id string) []string {
	if len(list) >= model.MaxRunIDs {
		return list
	}
	return append(list, id)
}

func (rc *Recorder) putState(ctx context.Context, kind, id string, rep *Report, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s of %s: %w", kind, rep.Cluster, err)
	}
	st := model.State{ID: id, Kind: kind, UpdatedAt: rep.At, Data: raw}
	if _, err := rc.Store.Put(ctx, store.State, kind, id, st, store.Cond{}); err != nil {
		return fmt.Errorf("write %s of %s: %w", kind, rep.Cluster, err)
	}
	return nil
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
