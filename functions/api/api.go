// Package api is the api function: Palisade's read-only query API, served
// as a forwarded HTTP trigger (the host passes the request through
// unchanged, on its original /api/... path).
//
//	GET /api/images                    ?registry= &repository= &status= &severity= &limit= &continuation=
//	GET /api/images/{digest}
//	GET /api/images/{digest}/findings  ?severity= &status= &vuln= &package= &limit= &continuation=
//
// Other areas mount their own endpoints (alerts, posture) with Options.Mounts.
package api

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// MaxLimit is the largest page a caller may ask for.
const MaxLimit = 1000

// Options configures the API.
type Options struct {
	// Key, when set, must be sent in x-functions-key or ?code=. In Azure the
	// host checks its own function keys first (authLevel function).
	Key string
	// Mounts adds handlers for other paths, e.g. "/api/alerts".
	Mounts map[string]http.Handler
}

// API serves the query endpoints.
type API struct {
	st  store.Store
	key string
	mux *http.ServeMux
}

// New returns the API over st.
func New(st store.Store, opts Options) *API {
	a := &API{st: st, key: opts.Key, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /api/images", a.images)
	a.mux.HandleFunc("GET /api/images/{digest}", a.image)
	a.mux.HandleFunc("GET /api/images/{digest}/findings", a.findings)
	for pattern, h := range opts.Mounts {
		a.mux.Handle(pattern, h)
	}
	a.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		customhandler.WriteError(w, http.StatusNotFound, "no endpoint "+r.Method+" "+r.URL.Path)
	})
	return a
}

// ServeHTTP implements http.Handler, checking the key first.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.key != "" {
		got := r.Header.Get("x-functions-key")
		if got == "" {
			got = r.URL.Query().Get("code")
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(a.key)) != 1 {
			customhandler.WriteError(w, http.StatusUnauthorized, "missing or wrong key: send it in the x-functions-key header or the code parameter")
			return
		}
	}
	a.mux.ServeHTTP(w, r)
}

// List is a page of results.
type List struct {
	Items        []json.RawMessage `json:"items"`
	Continuation string            `json:"continuation,omitempty"`
}

func (a *API) images(w http.ResponseWriter, r *http.Request) {
	q, err := PageQuery(r)
	if err != nil {
		customhandler.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	for _, p := range []struct{ param, field string }{{"registry", "registry"}, {"repository", "repository"}, {"status", "status"}} {
		if v := r.URL.Query().Get(p.param); v != "" {
			q.Filters = append(q.Filters, store.Filter{Field: p.field, Op: store.Eq, Value: v})
		}
	}
	if f, err := severityFilter(r, "maxSeverityRank"); err != nil {
		customhandler.WriteError(w, http.StatusBadRequest, err.Error())
		return
	} else if f != nil {
		q.Filters = append(q.Filters, *f)
	}
	a.list(w, r, store.Images, q)
}

func (a *API) image(w http.ResponseWriter, r *http.Request) {
	digest := r.PathValue("digest")
	if err := model.CheckDigest(digest); err != nil {
		customhandler.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	var img json.RawMessage
	_, err := a.st.Get(r.Context(), store.Images, digest, model.ImageID(digest), &img)
	if errors.Is(err, store.ErrNotFound) {
		customhandler.WriteError(w, http.StatusNotFound, "no image with digest "+digest)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	customhandler.WriteJSON(w, http.StatusOK, img)
}

func (a *API) findings(w http.ResponseWriter, r *http.Request) {
	digest := r.PathValue("digest")
	if err := model.CheckDigest(digest); err != nil {
		customhandler.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	var img json.RawMessage
	if _, err := a.st.Get(r.Context(), store.Images, digest, model.ImageID(digest), &img); errors.Is(err, store.ErrNotFound) {
		customhandler.WriteError(w, http.StatusNotFound, "no image with digest "+digest)
		return
	} else if err != nil {
		a.fail(w, r, err)
		return
	}
	q, err := PageQuery(r)
	if err != nil {
		customhandler.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	q.PartitionKey = digest
	for _, p := range []struct{ param, field string }{{"status", "status"}, {"vuln", "vulnId"}, {"package", "pkgName"}} {
		if v := r.URL.Query().Get(p.param); v != "" {
			q.Filters = append(q.Filters, store.Filter{Field: p.field, Op: store.Eq, Value: v})
		}
	}
	if f, err := severityFilter(r, "severityRank"); err != nil {
		customhandler.WriteError(w, http.StatusBadRequest, err.Error())
		return
	} else if f != nil {
		q.Filters = append(q.Filters, *f)
	}
	a.list(w, r, store.Findings, q)
}

func (a *API) list(w http.ResponseWriter, r *http.Request, c store.Container, q store.Query) {
	page, err := a.st.Query(r.Context(), c, q)
	if errors.Is(err, store.ErrInvalid) {
		customhandler.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := page.Items
	if items == nil {
		items = []json.RawMessage{}
	}
	customhandler.WriteJSON(w, http.StatusOK, List{Items: items, Continuation: page.Continuation})
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	logging.Ctx(r.Context()).Error().Err(err).Str("path", r.URL.Path).Msg("api request failed")
	customhandler.WriteError(w, http.StatusInternalServerError, "the store failed; try again")
}

// PageQuery reads the paging parameters limit (1-1000, default 100) and
// continuation, shared by every list endpoint.
func PageQuery(r *http.Request) (store.Query, error) {
	var q store.Query
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return q, errors.New("limit must be a whole number from 1 to 1000")
		}
		q.Limit = n
	}
	q.Continuation = r.URL.Query().Get("continuation")
	return q, nil
}

// severityFilter turns ?severity=high into "rank field >= rank of high": the
// severity given and everything more severe.
func severityFilter(r *http.Request, field string) (*store.Filter, error) {
	v := r.URL.Query().Get("severity")
	if v == "" {
		return nil, nil
	}
	sev, err := model.ParseSeverity(v)
	if err != nil {
		return nil, errors.New("severity: " + strings.TrimPrefix(err.Error(), "unknown severity "))
	}
	return &store.Filter{Field: field, Op: store.Ge, Value: sev.Rank()}, nil
}
