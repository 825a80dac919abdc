// Package console is the console function: everything Palisade knows, on
// web pages served by the function app itself (/api/console/ in Azure and
// under `palisade dev`), beside the query API (functions/api), over the
// same store and through the same domain packages.
//
// Pages are rendered on the server with html/template (every value from
// events and images is attacker-chosen, and escaped) with a little
// JavaScript; every asset is embedded, so the console works offline under
// a strict Content-Security-Policy (default-src 'self', no inline script
// or style, frame-ancestors 'none'). Lists and the overview read a View, a
// summary of the store kept in memory and rebuilt in the background when
// older than Options.MaxAge; pages of one item read the store fresh.
//
// Authentication is the API's: in Azure the host requires a function key
// (authLevel function) on every request, so the console carries the
// `code` parameter it was opened with on every link; when PALISADE_API_KEY
// is set, a login form takes it and sets a session cookie (HttpOnly,
// SameSite=Strict, Secure over https). Triage (the one write) is a form
// POST with a CSRF token, applying detection.Triage, the rule the API's
// PATCH /api/alerts/{id} applies.
//
// In the Functions host, HTTP routes are matched in the order of the
// function names, each with its methods as a constraint: the api
// function's catch-all GET route takes GET /api/console/... first, and
// forwards it unchanged to this same binary, whose mux sends it here; POSTs
// reach the console function's own route.
package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// Name is the function's folder name.
const Name = "console"

// Base is the path the console is served under.
const Base = "/api/console"

// Publisher sends alerts to Sentinel; *sentinel.Client is the
// implementation.
type Publisher interface {
	Publish(ctx context.Context, alerts []model.Alert) error
}

// Options configure the console.
type Options struct {
	// Key, when set, is asked for by a login form (or accepted in
	// x-functions-key or ?code=, as the API does).
	Key string
	// MaxAge is how old the View may be before a request has it rebuilt in
	// the background; default 30s.
	MaxAge time.Duration
	// SessionTTL is how long a login lasts; default 12h.
	SessionTTL time.Duration
	// Publisher, when set, receives each alert triaged, so that Sentinel
	// sees the status change.
	Publisher Publisher
	// GateRules are the gated-deployment rules in force, shown beside the
	// admissions; none: the default rule.
	GateRules gate.Rules
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the console's own messages (view builds); requests log
	// through their context.
	Log zerolog.Logger
}

func (o *Options) defaults() {
	if len(o.GateRules.Rules) == 0 {
		o.GateRules = gate.Default()
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 30 * time.Second
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console serves the pages. Create it with New.
type Console struct {
	st     store.Store
	opts   Options
	views  *views
	auth   auth
	pages  map[string]*template.Template
	static http.Handler
	mux    *http.ServeMux
}

// New returns the console over st.
func New(st store.Store, opts Options) (*Console, error) {
	opts.defaults()
	c := &Console{st: st, opts: opts, mux: http.NewServeMux(),
		views: &views{st: st, now: opts.Now, maxAge: opts.MaxAge, log: opts.Log},
		auth:  auth{key: opts.Key, ttl: opts.SessionTTL, now: opts.Now}}
	var err error
	if c.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix(Base+"/static/", http.FileServerFS(sub))
	c.routes()
	return c, nil
}

// routes registers every page. Pages behind the login are wrapped by
// c.page; the login form and the static assets are not.
func (c *Console) routes() {
	get := func(path string, h pageFunc) { c.mux.Handle("GET "+Base+path, c.page(h)) }
	get("/{$}", c.overview)
	get("/images", c.images)
	get("/images/{digest}", c.image)
	get("/vulnerabilities", c.vulns)
	get("/vulnerabilities/{id}", c.vuln)
	get("/alerts", c.alerts)
	get("/alerts/{id}", c.alert)
	get("/posture", c.posture)
	get("/posture/checks/{check}", c.check)
	get("/posture/exemptions", c.exemptions)
	get("/posture/remediations", c.remediations)
	get("/clusters", c.clusters)
	get("/cluster", c.clusterPage)
	get("/admissions", c.admissions)
	c.mux.Handle("POST "+Base+"/alerts/{id}/triage", c.page(c.triage))
	c.mux.HandleFunc("GET "+Base+"/login", c.loginForm)
	c.mux.HandleFunc("POST "+Base+"/login", c.login)
	c.mux.HandleFunc("POST "+Base+"/logout", c.logout)
	c.mux.Handle("GET "+Base+"/static/", c.static)
	c.mux.HandleFunc("GET "+Base, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Base+"/"+queryOf(r), http.StatusMovedPermanently)
	})
	c.mux.Handle(Base+"/", c.page(func(*request) (*rendered, error) { return nil, errNotFound }))
}

func queryOf(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return "?" + r.URL.RawQuery
}

// ServeHTTP implements http.Handler: every answer carries the security
// headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if strings.HasPrefix(r.URL.Path, Base+"/static/") {
		h.Set("Cache-Control", "public, max-age=3600")
	} else {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

// ContentSecurityPolicy is sent with every answer: only the console's own
// scripts, styles and images; no inline script or style (so an escaping
// mistake cannot run script); no framing; forms post only to the console;
// DOM sinks take no strings (trusted types).
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// request is one page request: the HTTP request, its URL state and the
// session's CSRF token.
type request struct {
	*http.Request
	q    *query
	csrf string
	w    http.ResponseWriter
}

// rendered is a page to write: a template and its data, or a redirect.
type rendered struct {
	template string
	data     any
	status   int
	redirect string
}

type pageFunc func(r *request) (*rendered, error)

// page wraps a page: the login check, the CSRF cookie, rendering and the
// one error writer.
func (c *Console) page(h pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := newQuery(r.URL.Path, r.URL)
		if !c.auth.authorized(r) {
			http.Redirect(w, r, q.link(Base+"/login", "next", r.URL.Path+queryWithout(r, "code")), http.StatusSeeOther)
			return
		}
		req := c.newRequest(w, r)
		out, err := h(req)
		if err != nil {
			c.writeError(w, req, err)
			return
		}
		if out.redirect != "" {
			http.Redirect(w, r, out.redirect, http.StatusSeeOther)
			return
		}
		c.render(w, req, out)
	})
}

// newRequest makes the request of a page: its URL state and its CSRF
// token (setting the token's cookie when the browser has none).
func (c *Console) newRequest(w http.ResponseWriter, r *http.Request) *request {
	return &request{Request: r, q: newQuery(r.URL.Path, r.URL), w: w, csrf: c.auth.csrfToken(w, r)}
}

// queryWithout is the request's query without one parameter, with its "?".
func queryWithout(r *http.Request, name string) string {
	v := r.URL.Query()
	v.Del(name)
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// render executes a page into a buffer first, so that a template failure
// is a clean 500 and not half a page.
func (c *Console) render(w http.ResponseWriter, r *request, out *rendered) {
	if err := c.write(w, out); err != nil {
		c.writeError(w, r, err)
	}
}

func (c *Console) write(w http.ResponseWriter, out *rendered) error {
	t := c.pages[out.template]
	if t == nil {
		return fmt.Errorf("no template %q", out.template)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", out.data); err != nil {
		return fmt.Errorf("render %s: %w", out.template, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	status := out.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// Errors of pages.
var (
	errNotFound = &pageError{Status: http.StatusNotFound, Message: "There is no such page."}
)

// pageError is an answer other than 200: the status and a message for the
// reader. Any other error is a 500 whose cause is logged and not shown.
type pageError struct {
	Status  int
	Message string
	Cause   error
}

func (e *pageError) Error() string { return e.Message }
func (e *pageError) Unwrap() error { return e.Cause }

// badParam is a 400 naming the parameter and the value that is wrong.
func badParam(name, value string) *pageError {
	return &pageError{Status: http.StatusBadRequest, Message: fmt.Sprintf("The %s %q is not one this page knows.", name, value)}
}

// notFound is a 404 naming what was looked for.
func notFound(what string) *pageError {
	return &pageError{Status: http.StatusNotFound, Message: what + " is not known to Palisade."}
}

// internalMessage is all a reader learns of a failure on our side.
const internalMessage = "Palisade could not read its store. Try again in a moment."

// writeError is the one error writer: the error page with the status.
func (c *Console) writeError(w http.ResponseWriter, r *request, err error) {
	var e *pageError
	if !errors.As(err, &e) {
		e = &pageError{Status: http.StatusInternalServerError, Message: internalMessage, Cause: err}
	}
	log := logging.Ctx(r.Context())
	ev := log.Debug()
	if e.Status >= 500 {
		ev = log.Error()
	}
	ev.Err(e.Cause).Int("status", e.Status).Str("path", r.URL.Path).Msg(e.Message)
	page := &rendered{template: "error", status: e.Status, data: &errorPage{base: c.base(r, "", "Error"), Status: e.Status, Message: e.Message}}
	if err := c.write(w, page); err != nil {
		log.Error().Err(err).Msg("error page not rendered")
		http.Error(w, e.Message, e.Status)
	}
}

type errorPage struct {
	base
	Status  int
	Message string
}
