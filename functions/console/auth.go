package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Cookies of the console, scoped to its path.
const (
	sessionCookie = "palisade_session"
	csrfCookie    = "palisade_csrf"
	csrfField     = "csrf"
)

// auth is the console's own check, on top of the host's function keys:
// with a key set, a request needs a session cookie made by the login form
// (or the key itself in x-functions-key or ?code=, as the API takes it).
//
// A session is "<expiry>.<mac>": the expiry in Unix seconds and an
// HMAC-SHA256 of it keyed with the key, so any instance checks it without
// shared state, and changing the key ends every session.
type auth struct {
	key string
	ttl time.Duration
	now func() time.Time
}

// enabled reports whether a key is required.
func (a auth) enabled() bool { return a.key != "" }

// authorized reports whether r may see the console.
func (a auth) authorized(r *http.Request) bool {
	if !a.enabled() {
		return true
	}
	got := r.Header.Get("x-functions-key")
	if got == "" {
		got = r.URL.Query().Get("code")
	}
	if got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(a.key)) == 1 {
		return true
	}
	c, err := r.Cookie(sessionCookie)
	return err == nil && a.validSession(c.Value)
}

func (a auth) mac(purpose, value string) string {
	m := hmac.New(sha256.New, []byte(a.key))
	m.Write([]byte("palisade-console\x00" + purpose + "\x00" + value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a auth) newSession() (string, time.Time) {
	exp := a.now().Add(a.ttl)
	v := strconv.FormatInt(exp.Unix(), 10)
	return v + "." + a.mac("session", v), exp
}

func (a auth) validSession(s string) bool {
	exp, mac, ok := strings.Cut(s, ".")
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !a.now().Before(time.Unix(n, 0)) {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(a.mac("session", exp)))
}

// secure reports whether the browser reached us over https: directly, or
// through the front end that terminates TLS (App Service sets
// X-Forwarded-Proto, and X-ARR-SSL).
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") || r.Header.Get("X-ARR-SSL") != ""
}

func cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Base + "/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure(r)}
}

// csrfToken returns the token the request's forms carry: a random value
// kept in a cookie (set here when missing). With a key set, the token is
// the cookie's value signed with the key (a signed double submit); without
// one, the cookie's value itself. POSTs also check the Origin header.
func (a auth) csrfToken(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		v = c.Value
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		v = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, cookie(r, csrfCookie, v, 0))
	}
	if a.enabled() {
		return a.mac("csrf", v)
	}
	return v
}

// checkPost verifies a form POST: it carries the CSRF token matching its
// cookie, and the browser says it comes from the console's own origin
// (Sec-Fetch-Site; or, from a browser that does not send it, an Origin
// naming the host the request was sent to).
func (a auth) checkPost(r *http.Request) bool {
	switch site := r.Header.Get("Sec-Fetch-Site"); {
	case site != "":
		if site != "same-origin" {
			return false
		}
	case r.Header.Get("Origin") != "":
		u, err := url.Parse(r.Header.Get("Origin"))
		host := r.Header.Get("X-Forwarded-Host")
		if host == "" {
			host = r.Host
		}
		if err != nil || !strings.EqualFold(u.Host, host) {
			return false
		}
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 32 {
		return false
	}
	want := c.Value
	if a.enabled() {
		want = a.mac("csrf", c.Value)
	}
	got := r.PostFormValue(csrfField)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// safeNext is the page to go to after the login: a console path only, so
// the login cannot be used to send someone elsewhere.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || strings.HasPrefix(next, "//") || strings.Contains(next, `\`) ||
		!strings.HasPrefix(u.Path, Base+"/") {
		return Base + "/"
	}
	return u.RequestURI()
}

type loginPage struct {
	base
	Next  string
	Wrong bool
}

// loginForm shows the login form (or goes on when there is no key).
func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	req := c.newRequest(w, r)
	next := safeNext(r.URL.Query().Get("next"))
	if !c.auth.enabled() || c.auth.authorized(r) {
		http.Redirect(w, r, withKept(next, req.q), http.StatusSeeOther)
		return
	}
	c.render(w, req, &rendered{template: "login", data: &loginPage{base: c.base(req, "", "Sign in"), Next: next}})
}

// login checks the key and starts a session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	req := c.newRequest(w, r)
	if err := c.posted(req); err != nil {
		c.writeError(w, req, err)
		return
	}
	next := safeNext(r.PostFormValue("next"))
	if !c.auth.enabled() {
		http.Redirect(w, r, withKept(next, req.q), http.StatusSeeOther)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("key")), []byte(c.auth.key)) != 1 {
		c.render(w, req, &rendered{template: "login", status: http.StatusUnauthorized, data: &loginPage{base: c.base(req, "", "Sign in"), Next: next, Wrong: true}})
		return
	}
	s, _ := c.auth.newSession()
	http.SetCookie(w, cookie(r, sessionCookie, s, int(c.auth.ttl/time.Second)))
	http.Redirect(w, r, withKept(next, req.q), http.StatusSeeOther)
}

// logout ends the session.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	req := c.newRequest(w, r)
	if err := c.posted(req); err != nil {
		c.writeError(w, req, err)
		return
	}
	http.SetCookie(w, cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, req.q.link(Base+"/login"), http.StatusSeeOther)
}

// maxForm bounds a form's body.
const maxForm = 16 << 10

// posted reads a form POST of at most maxForm bytes and checks its CSRF
// token and origin; errForbidden when the check fails.
func (c *Console) posted(r *request) error {
	r.Body = http.MaxBytesReader(r.w, r.Body, maxForm)
	if !c.auth.checkPost(r.Request) {
		return errForbidden
	}
	return nil
}

// withKept adds the kept parameters (the host's key) to a console path.
func withKept(path string, q *query) string {
	if len(q.keep) == 0 {
		return path
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + q.keep.Encode()
}

var errForbidden = &pageError{Status: http.StatusForbidden, Message: "The form was not sent from this console page (a missing or stale token). Reload the page and try again."}
