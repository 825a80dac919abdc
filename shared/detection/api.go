package detection

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// AlertsAPI serves GET /api/alerts: alerts filtered by cluster, severity
// (exact, or minSeverity), type (Palisade name or reference id), status and
// last-seen time (since, until: RFC 3339), paged with limit and
// continuation. Pending burst alerts are hidden unless status=pending.
type AlertsAPI struct{ st store.Store }

// NewAlertsAPI returns the handler over st.
func NewAlertsAPI(st store.Store) *AlertsAPI { return &AlertsAPI{st: st} }

// AlertsPage is the response body.
type AlertsPage struct {
	Alerts       []json.RawMessage `json:"items"`
	Continuation string            `json:"continuation,omitempty"`
}

// ServeHTTP implements http.Handler.
func (h *AlertsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, errors.New("only GET is allowed"))
		return
	}
	q, err := alertQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	page, err := h.st.Query(r.Context(), store.Alerts, q)
	if errors.Is(err, store.ErrInvalid) {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, errors.New("query alerts failed"))
		return
	}
	body := AlertsPage{Alerts: page.Items, Continuation: page.Continuation}
	if body.Alerts == nil {
		body.Alerts = []json.RawMessage{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func alertQuery(r *http.Request) (store.Query, error) {
	v := r.URL.Query()
	known := map[string]bool{"cluster": true, "severity": true, "minSeverity": true, "type": true, "status": true, "since": true, "until": true, "limit": true, "continuation": true}
	for k := range v {
		if !known[k] {
			return store.Query{}, errors.New("unknown parameter " + strconv.Quote(k) + " (want cluster, severity, minSeverity, type, status, since, until, limit, continuation)")
		}
	}
	q := store.Query{PartitionKey: v.Get("cluster"), Continuation: v.Get("continuation"), Limit: 100}
	if s := v.Get("severity"); s != "" {
		sev, err := model.ParseSeverity(s)
		if err != nil {
			return q, err
		}
		q.Filters = append(q.Filters, store.Filter{Field: "severity", Op: store.Eq, Value: string(sev)})
	}
	if s := v.Get("minSeverity"); s != "" {
		sev, err := model.ParseSeverity(s)
		if err != nil {
			return q, err
		}
		q.Filters = append(q.Filters, store.Filter{Field: "severityRank", Op: store.Ge, Value: sev.Rank()})
	}
	if t := v.Get("type"); t != "" {
		field := "type"
		if len(t) > 4 && t[:4] == "K8S_" || len(t) > 9 && t[:9] == "K8S.NODE_" {
			field = "refType"
		} else if _, ok := LookupType(t); !ok {
			return q, errors.New("unknown alert type " + strconv.Quote(t))
		}
		q.Filters = append(q.Filters, store.Filter{Field: field, Op: store.Eq, Value: t})
	}
	switch s := v.Get("status"); s {
	case "":
		q.Filters = append(q.Filters, store.Filter{Field: "status", Op: store.Ne, Value: model.AlertPending})
	case model.AlertActive, model.AlertDismissed, model.AlertResolved, model.AlertPending:
		q.Filters = append(q.Filters, store.Filter{Field: "status", Op: store.Eq, Value: s})
	default:
		return q, errors.New("unknown status " + strconv.Quote(s) + " (want active, dismissed, resolved or pending)")
	}
	for _, p := range []struct {
		name string
		op   store.Op
	}{{"since", store.Ge}, {"until", store.Lt}} {
		if s := v.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return q, errors.New(p.name + " is not an RFC 3339 time: " + strconv.Quote(s))
			}
			q.Filters = append(q.Filters, store.Filter{Field: "lastSeenUnix", Op: p.op, Value: t.Unix()})
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return q, errors.New("limit must be a whole number from 1 to 1000, got " + strconv.Quote(s))
		}
		q.Limit = n
	}
	return q, nil
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
