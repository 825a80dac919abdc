// Package api is the api function: Palisade's query API, the triage of
// alerts (PATCH /api/alerts/{id}) and the one other write, VEX documents,
// served as a forwarded HTTP trigger (the host passes the request through
// unchanged, on its original /api/... path). Every /api endpoint is a row
// of the route table (routes.go); the domain packages return data and this
// package turns requests into their filters and their results (or errors)
// into responses. The console (functions/console) is the other HTTP edge
// over the same data, and triages through the same rule (detection.Triage).
//
// Every endpoint shares one key check (PALISADE_API_KEY, on top of the
// host's function keys), one paging parser (limit 1-1000, default 100, and
// continuation), one parameter check (unknown parameters are a 400), and one
// error writer: {"error": "..."} with a message meant for the caller; the
// cause of a 500 is logged, never sent.
package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"time"

	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/snapshots"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vex"
)

// Publisher sends alerts to Sentinel; *sentinel.Client is the
// implementation.
type Publisher interface {
	Publish(ctx context.Context, alerts []model.Alert) error
}

// Options configure the API.
type Options struct {
	// Key, when set, must be sent in x-functions-key or ?code=. In Azure the
	// host checks its own function keys first (authLevel function).
	Key string
	// Feeds reports the exploitation feeds for /api/intel; nil reports
	// them missing.
	Feeds FeedStatus
	// AgentStaleAfter is how long a cluster's agent may be silent before
	// /api/clusters calls it stale; default 15 minutes.
	AgentStaleAfter time.Duration
	// Remediate lists the checks whose patches agents are told to apply
	// ("*" = all; empty: none), and RemediateApply whether for real or as
	// a dry run only (/api/remediations).
	Remediate      []string
	RemediateApply bool
	// GateRules are the gated-deployment rules in force (GET
	// /api/gate/rules); the zero value serves the default rule.
	GateRules gate.Rules
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Publisher, when set, receives each alert a PATCH triages, so that
	// Sentinel sees the status change.
	Publisher Publisher
	// VEX keeps the documents of /api/vex and Intel applies them to the
	// stored findings; without both, /api/vex answers 501.
	VEX   VEXStore
	Intel IntelSource
}

// VEXStore keeps VEX documents; *vex.Store is the implementation.
type VEXStore interface {
	Put(ctx context.Context, d *vex.Document) (vex.Change, error)
	Remove(ctx context.Context, source, docID string) (vex.Change, bool, error)
	List(ctx context.Context) ([]*vex.Document, error)
}

// IntelSource loads what findings are annotated with (the feeds and the
// VEX statements) and records changes for refreshintel; *vex.Source is the
// implementation.
type IntelSource interface {
	Load(ctx context.Context) (*intel.Feeds, intel.Status, error)
	AddPending(ctx context.Context, c intel.Changes) error
}

// FeedStatus reports the state of the exploitation feeds; *intel.Source is
// the implementation.
type FeedStatus interface {
	Status(ctx context.Context) (intel.Status, error)
}

// API serves the query endpoints.
type API struct {
	st     store.Store
	snaps  *snapshots.Store
	key    string
	feeds  FeedStatus
	vex    VEXStore
	source IntelSource
	pub    Publisher
	now    func() time.Time
	opts   Options
	mux    *http.ServeMux
}

// New returns the API over st.
func New(st store.Store, opts Options) *API {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AgentStaleAfter <= 0 {
		opts.AgentStaleAfter = 15 * time.Minute
	}
	a := &API{st: st, snaps: snapshots.New(st, snapshots.Options{Now: opts.Now}), key: opts.Key, feeds: opts.Feeds, vex: opts.VEX, source: opts.Intel, pub: opts.Publisher, now: opts.Now, opts: opts, mux: http.NewServeMux()}
	paths := map[string]bool{}
	for _, rt := range a.routes() {
		a.mux.Handle(rt.method+" "+rt.path, a.handler(rt))
		paths[rt.path] = true
	}
	for p := range paths {
		// The path is known but not with this method.
		a.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			a.writeError(w, r, &Error{Status: http.StatusMethodNotAllowed, Message: "method " + r.Method + " not allowed on " + r.URL.Path})
		})
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, &Error{Status: http.StatusNotFound, Message: "no endpoint " + r.Method + " " + r.URL.Path})
	})
	return a
}

// ServeHTTP implements http.Handler, checking the key first.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.authorized(r) {
		a.writeError(w, r, &Error{Status: http.StatusUnauthorized, Message: "missing or wrong key: send it in the x-functions-key header or the code parameter"})
		return
	}
	a.mux.ServeHTTP(w, r)
}

// authorized is the one key check: the x-functions-key header or the code
// parameter must equal the key, when one is set.
func (a *API) authorized(r *http.Request) bool {
	if a.key == "" {
		return true
	}
	got := r.Header.Get("x-functions-key")
	if got == "" {
		got = r.URL.Query().Get("code")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(a.key)) == 1
}

// handler runs one route: checks the parameters, calls it, and writes its
// value as JSON or its error.
func (a *API) handler(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := newRequest(r, rt)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		v, err := rt.serve(a, req)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if d, ok := v.(document); ok {
			w.Header().Set("Content-Type", d.contentType)
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(d.body)
			return
		}
		customhandler.WriteJSON(w, http.StatusOK, v)
	})
}

// document is an answer that is a document of its own media type (an
// SBOM), written as it is.
type document struct {
	contentType string
	body        []byte
}

// Error is an answer other than 200: the status and a message for the
// caller. Handlers return it for what the caller got wrong; any other error
// is a 500 whose cause is logged and not sent.
type Error struct {
	Status  int
	Message string
	Cause   error // logged, never sent
}

func (e *Error) Error() string { return e.Message }

func (e *Error) Unwrap() error { return e.Cause }

// badRequest is a 400 with msg.
func badRequest(msg string) *Error { return &Error{Status: http.StatusBadRequest, Message: msg} }

// internalMessage is all a caller learns of a failure on our side.
const internalMessage = "the store failed; try again"

// writeError is the one error writer: {"error": message}. A continuation
// token the store does not accept is the caller's mistake (400); other
// errors are logged with their cause and answered with a fixed message.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, store.ErrInvalid):
		e = &Error{Status: http.StatusBadRequest, Message: "continuation is not a token from a previous page of this list", Cause: err}
	default:
		e = &Error{Status: http.StatusInternalServerError, Message: internalMessage, Cause: err}
	}
	log := logging.Ctx(r.Context())
	ev := log.Debug() // the request is logged with its status by the server
	if e.Status >= 500 {
		ev = log.Error()
	}
	ev.Err(e.Cause).Int("status", e.Status).Str("method", r.Method).Str("path", r.URL.Path).Msg(e.Message)
	customhandler.WriteError(w, e.Status, e.Message)
}
