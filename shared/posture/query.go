package posture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// ErrNotAssessed: the cluster asked about has no assessment stored.
var ErrNotAssessed = errors.New("not assessed")

// ResultFilter selects stored posture results; empty fields match all.
type ResultFilter struct {
	Cluster, Check, Namespace, Resource string
	Status                              string         // pass, fail, exempt or error
	Severity                            model.Severity // exactly this severity
}

// ListResults returns one page of the results f selects, in no particular
// order. A continuation token that is not one of this list's gives an error
// matching store.ErrInvalid.
func ListResults(ctx context.Context, st store.Store, f ResultFilter, cur store.Cursor) (store.List[model.PostureResult], error) {
	q := store.Query{PartitionKey: f.Cluster}
	for _, c := range []struct{ field, value string }{
		{"checkId", f.Check}, {"namespace", f.Namespace}, {"resource", f.Resource}, {"severity", string(f.Severity)}, {"status", f.Status},
	} {
		if c.value != "" {
			q.Filters = append(q.Filters, store.Filter{Field: c.field, Op: store.Eq, Value: c.value})
		}
	}
	return store.QueryList[model.PostureResult](ctx, st, store.Posture, q, cur)
}

// Scores is the latest run of each cluster (or of the one asked for) and,
// for one cluster, its history, newest first.
type Scores struct {
	Clusters []model.PostureRun `json:"clusters"`
	History  []model.PostureRun `json:"history,omitempty"`
}

// MaxHistory bounds the history Scores returns.
const MaxHistory = 200

// LoadScores reads the latest run of every cluster, or, when cluster is
// set, of that cluster with its history (ErrNotAssessed when it has none).
func LoadScores(ctx context.Context, st store.Store, cluster string) (Scores, error) {
	out := Scores{Clusters: []model.PostureRun{}}
	var err error
	if cluster == "" {
		out.Clusters, err = runs(ctx, st, model.KindPostureRun, nil, out.Clusters)
	} else {
		var last model.State
		if _, err := st.Get(ctx, store.State, model.KindPostureRun, RunID(cluster), &last); errors.Is(err, store.ErrNotFound) {
			return Scores{}, fmt.Errorf("cluster %q: %w", cluster, ErrNotAssessed)
		} else if err != nil {
			return Scores{}, fmt.Errorf("read the last run of %s: %w", cluster, err)
		}
		var run model.PostureRun
		if err := json.Unmarshal(last.Data, &run); err != nil {
			return Scores{}, fmt.Errorf("decode the last run of %s: %w", cluster, err)
		}
		out.Clusters = append(out.Clusters, run)
		out.History, err = runs(ctx, st, model.KindPostureHistory, []store.Filter{{Field: "data.cluster", Op: store.Eq, Value: cluster}}, nil)
	}
	if err != nil {
		return Scores{}, err
	}
	sort.Slice(out.Clusters, func(i, j int) bool { return out.Clusters[i].Cluster < out.Clusters[j].Cluster })
	sort.Slice(out.History, func(i, j int) bool { return out.History[i].At.After(out.History[j].At) })
	if len(out.History) > MaxHistory {
		out.History = out.History[:MaxHistory]
	}
	return out, nil
}

// runs appends the posture runs of one state kind.
func runs(ctx context.Context, st store.Store, kind string, filters []store.Filter, into []model.PostureRun) ([]model.PostureRun, error) {
	err := store.Each(ctx, st, store.State, store.Query{PartitionKey: kind, Filters: filters}, func(s model.State) error {
		var run model.PostureRun
		if err := json.Unmarshal(s.Data, &run); err != nil {
			return fmt.Errorf("decode %s %s: %w", kind, s.ID, err)
		}
		into = append(into, run)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read posture runs: %w", err)
	}
	return into, nil
}

// EachRunningImages calls fn for each stored chunk of the clusters'
// running-image inventories (the Recorder writes them with each run).
func EachRunningImages(ctx context.Context, st store.Store, fn func(model.RunningImages) error) error {
	return eachState(ctx, st, model.KindRunningImages, fn)
}

// EachRemediation calls fn for every recorded remediation attempt.
func EachRemediation(ctx context.Context, st store.Store, fn func(model.Remediation) error) error {
	return eachState(ctx, st, model.KindRemediation, fn)
}

// EachHistory calls fn for every past run of every cluster (state
// posture-history), in no particular order.
func EachHistory(ctx context.Context, st store.Store, fn func(model.PostureRun) error) error {
	return eachState(ctx, st, model.KindPostureHistory, fn)
}

// eachState decodes the Data of every state item of kind into T.
func eachState[T any](ctx context.Context, st store.Store, kind string, fn func(T) error) error {
	err := store.Each(ctx, st, store.State, store.Query{PartitionKey: kind, Limit: 1000}, func(s model.State) error {
		var v T
		if err := json.Unmarshal(s.Data, &v); err != nil {
			return fmt.Errorf("decode %s %s: %w", kind, s.ID, err)
		}
		return fn(v)
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", kind, err)
	}
	return nil
}
