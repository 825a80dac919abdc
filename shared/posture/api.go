package posture

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// API serves the posture query endpoints:
//
//	GET /api/posture?cluster=&check=&status=&namespace=&severity=&limit=&continuation=
//	GET /api/posture/score?cluster=
type API struct {
	store store.Store
	mux   *http.ServeMux
}

// NewAPI returns the posture API over st.
func NewAPI(st store.Store) *API {
	a := &API{store: st, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /api/posture", a.results)
	a.mux.HandleFunc("GET /api/posture/score", a.score)
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// maxPage bounds a page of results.
const maxPage = 1000

// ResultsPage is the answer of GET /api/posture.
type ResultsPage struct {
	Items        []model.PostureResult `json:"items"`
	Continuation string                `json:"continuation,omitempty"`
}

func (a *API) results(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := store.Query{PartitionKey: q.Get("cluster"), Continuation: q.Get("continuation")}
	for param, field := range map[string]string{"check": "checkId", "namespace": "namespace", "resource": "resource"} {
		if v := q.Get(param); v != "" {
			query.Filters = append(query.Filters, store.Filter{Field: field, Op: store.Eq, Value: v})
		}
	}
	if s := q.Get("status"); s != "" {
		switch s {
		case model.PosturePass, model.PostureFail, model.PostureExempt, model.PostureError:
		default:
			customhandler.WriteError(w, http.StatusBadRequest, fmt.Sprintf("status %q: want pass, fail, exempt or error", s))
			return
		}
		query.Filters = append(query.Filters, store.Filter{Field: "status", Op: store.Eq, Value: s})
	}
	if s := q.Get("severity"); s != "" {
		sev, err := model.ParseSeverity(s)
		if err != nil {
			customhandler.WriteError(w, http.StatusBadRequest, "severity: "+err.Error())
			return
		}
		query.Filters = append(query.Filters, store.Filter{Field: "severity", Op: store.Eq, Value: string(sev)})
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPage {
			customhandler.WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want 1 to %d", s, maxPage))
			return
		}
		query.Limit = n
	}
	sort.Slice(query.Filters, func(i, j int) bool { return query.Filters[i].Field < query.Filters[j].Field })
	page, err := a.store.Query(r.Context(), store.Posture, query)
	if errors.Is(err, store.ErrInvalid) {
		customhandler.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		customhandler.WriteError(w, http.StatusInternalServerError, "query posture results: "+err.Error())
		return
	}
	out := ResultsPage{Items: make([]model.PostureResult, 0, len(page.Items)), Continuation: page.Continuation}
	for _, raw := range page.Items {
		var pr model.PostureResult
		if err := json.Unmarshal(raw, &pr); err != nil {
			customhandler.WriteError(w, http.StatusInternalServerError, "decode posture result: "+err.Error())
			return
		}
		out.Items = append(out.Items, pr)
	}
	customhandler.WriteJSON(w, http.StatusOK, out)
}

// ScoreAnswer is the answer of GET /api/posture/score: the latest run of
// each cluster (or of the one asked for) and, for one cluster, its history.
type ScoreAnswer struct {
	Clusters []model.PostureRun `json:"clusters"`
	History  []model.PostureRun `json:"history,omitempty"`
}

// maxHistory bounds the history returned.
const maxHistory = 200

func (a *API) score(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	out := ScoreAnswer{Clusters: []model.PostureRun{}}
	runs := func(kind string, filters []store.Filter, limit int, into *[]model.PostureRun) error {
		q := store.Query{PartitionKey: kind, Filters: filters}
		return store.Each(ctx, a.store, store.State, q, func(s model.State) error {
			if limit > 0 && len(*into) >= limit {
				return nil
			}
			var run model.PostureRun
			if err := json.Unmarshal(s.Data, &run); err != nil {
				return fmt.Errorf("decode %s %s: %w", kind, s.ID, err)
			}
			*into = append(*into, run)
			return nil
		})
	}
	cluster := r.URL.Query().Get("cluster")
	var err error
	if cluster == "" {
		err = runs(model.KindPostureRun, nil, 0, &out.Clusters)
	} else {
		var last model.State
		_, err = a.store.Get(ctx, store.State, model.KindPostureRun, RunID(cluster), &last)
		if errors.Is(err, store.ErrNotFound) {
			customhandler.WriteError(w, http.StatusNotFound, fmt.Sprintf("cluster %q has not been assessed", cluster))
			return
		}
		if err == nil {
			var run model.PostureRun
			if err = json.Unmarshal(last.Data, &run); err == nil {
				out.Clusters = append(out.Clusters, run)
				err = runs(model.KindPostureHistory, []store.Filter{{Field: "data.cluster", Op: store.Eq, Value: cluster}}, 0, &out.History)
			}
		}
	}
	if err != nil {
		customhandler.WriteError(w, http.StatusInternalServerError, "read posture scores: "+err.Error())
		return
	}
	sort.Slice(out.Clusters, func(i, j int) bool { return out.Clusters[i].Cluster < out.Clusters[j].Cluster })
	sort.Slice(out.History, func(i, j int) bool { return out.History[i].At.After(out.History[j].At) })
	if len(out.History) > maxHistory {
		out.History = out.History[:maxHistory]
	}
	customhandler.WriteJSON(w, http.StatusOK, out)
}
