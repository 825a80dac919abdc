package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/palisade-sec/palisade/functions/console"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
)

// TestLogin: with a key set, pages send to the login form; a wrong key is
// refused; the right one starts a session in an HttpOnly, SameSite=Strict
// cookie (Secure behind https) that lasts until it expires or the key
// changes; the key in x-functions-key or ?code= works as for the API.
func TestLogin(t *testing.T) {
	st := newStore(t)
	clock := now
	c := newConsole(t, st, console.Options{Key: "s3cret", SessionTTL: time.Hour, Now: func() time.Time { return clock }})
	b := newClient(t, c)

	rec := b.get("/api/console/alerts?status=open")
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/api/console/login?next="+url.QueryEscape("/api/console/alerts?status=open") {
		t.Fatalf("page without a session: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	form := parse(t, b.get(rec.Header().Get("Location")))
	token := form.csrf()
	if token == "" {
		t.Fatal("the login form has no CSRF token")
	}
	if rec := b.do(http.MethodPost, "/api/console/login", url.Values{"csrf": {token}, "key": {"guess"}, "next": {"/api/console/alerts"}}); rec.Code != http.StatusUnauthorized {
		t.Errorf("wrong key: %d", rec.Code)
	}
	if _, ok := b.cookies["palisade_session"]; ok {
		t.Fatal("a wrong key started a session")
	}
	if rec := b.do(http.MethodPost, "/api/console/login", url.Values{"key": {"s3cret"}}); rec.Code != http.StatusForbidden {
		t.Errorf("login without the CSRF token: %d", rec.Code)
	}
	b.header.Set("X-Forwarded-Proto", "https")
	rec = b.do(http.MethodPost, "/api/console/login", url.Values{"csrf": {token}, "key": {"s3cret"}, "next": {"/api/console/alerts?status=open"}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/api/console/alerts?status=open" {
		t.Fatalf("login: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	s := b.cookies["palisade_session"]
	if s == nil || !s.HttpOnly || s.SameSite != http.SameSiteStrictMode || !s.Secure || s.Path != "/api/console/" {
		t.Fatalf("session cookie %+v", s)
	}
	if rec := b.get("/api/console/alerts"); rec.Code != 200 {
		t.Errorf("page with the session: %d", rec.Code)
	}

	// The session does not outlive its expiry, and cannot be forged.
	forged := *s
	forged.Value = strings.Replace(s.Value, s.Value[:10], "9999999999", 1)
	b.cookies["palisade_session"] = &forged
	if rec := b.get("/api/console/alerts"); rec.Code != http.StatusSeeOther {
		t.Errorf("forged session: %d", rec.Code)
	}
	b.cookies["palisade_session"] = s
	clock = now.Add(2 * time.Hour)
	if rec := b.get("/api/console/alerts"); rec.Code != http.StatusSeeOther {
		t.Errorf("expired session: %d", rec.Code)
	}
	clock = now
	other := newClient(t, newConsole(t, st, console.Options{Key: "rotated", Now: func() time.Time { return clock }}))
	other.cookies["palisade_session"] = s
	if rec := other.get("/api/console/alerts"); rec.Code != http.StatusSeeOther {
		t.Errorf("session after the key changed: %d", rec.Code)
	}

	// The key itself, as the API takes it.
	api := newClient(t, c)
	if rec := api.get("/api/console/alerts?code=s3cret"); rec.Code != 200 {
		t.Errorf("?code=: %d", rec.Code)
	}
	api.header.Set("x-functions-key", "s3cret")
	if rec := api.get("/api/console/alerts"); rec.Code != 200 {
		t.Errorf("x-functions-key: %d", rec.Code)
	}

	// Sign out ends the session.
	p := parse(t, b.get("/api/console/"))
	if rec := b.do(http.MethodPost, "/api/console/logout", url.Values{"csrf": {p.csrf()}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d", rec.Code)
	}
	if rec := b.get("/api/console/"); rec.Code != http.StatusSeeOther {
		t.Errorf("after logout: %d", rec.Code)
	}
	// Static assets are served without a session (the login page needs them).
	if rec := newClient(t, c).get("/api/console/static/console.css"); rec.Code != 200 {
		t.Errorf("static without a session: %d", rec.Code)
	}
}

// TestLoginGoesOnlyToTheConsole: the page after the login is a console
// page, whatever next says.
func TestLoginGoesOnlyToTheConsole(t *testing.T) {
	c := newConsole(t, newStore(t), console.Options{Key: "s3cret"})
	for next, want := range map[string]string{
		"/api/console/images?x=1":     "/api/console/images?x=1",
		"https://evil.example/":       "/api/console/",
		"//evil.example/api/console/": "/api/console/",
		"/api/other":                  "/api/console/",
		`/\evil.example`:              "/api/console/",
		"javascript:alert(1)":         "/api/console/",
	} {
		b := newClient(t, c)
		token := parse(t, b.get("/api/console/login")).csrf()
		rec := b.do(http.MethodPost, "/api/console/login", url.Values{"csrf": {token}, "key": {"s3cret"}, "next": {next}})
		if got := rec.Header().Get("Location"); got != want {
			t.Errorf("next %q: went to %q, want %q", next, got, want)
		}
	}
}

// TestCarriesTheHostKey: opened with the host's ?code=, every link, asset
// and form of a page carries it (Azure asks for it on every request).
func TestCarriesTheHostKey(t *testing.T) {
	st, res := seeded(t)
	b := newClient(t, newConsole(t, st, console.Options{}))
	for _, path := range []string{"/api/console/?code=hostkey", "/api/console/images?severity=high&code=hostkey",
		"/api/console/alerts/" + res.XSSAlert + "?code=hostkey", "/api/console/images/" + res.XSSDigest + "?code=hostkey"} {
		p := parse(t, b.get(path))
		links := p.links()
		if len(links) < 10 {
			t.Fatalf("%s: only %d links", path, len(links))
		}
		for _, l := range links {
			u, err := url.Parse(l)
			if err != nil {
				t.Fatal(err)
			}
			if u.Host != "" {
				continue // references to other sites
			}
			if u.Query().Get("code") != "hostkey" {
				t.Errorf("%s: link %s does not carry the key", path, l)
			}
		}
		// Filter forms keep it as a hidden field.
		p.each(func(n *html.Node) {
			if cls, _ := attr(n, "class"); n.Data == "form" && cls == "filters" {
				if !strings.Contains(renderNode(n), `name="code" value="hostkey"`) {
					t.Errorf("%s: the filter form drops the key", path)
				}
			}
		})
	}
}

func renderNode(n *html.Node) string {
	var b strings.Builder
	_ = html.Render(&b, n)
	return b.String()
}

// TestTriage: the form changes the alert through detection.Triage, with
// CSRF protection; a refused change says why; Sentinel gets the alert.
func TestTriage(t *testing.T) {
	st, _ := seeded(t)
	pub := &recordingPublisher{}
	c := newConsole(t, st, console.Options{Publisher: pub})
	b := newClient(t, c)
	a := firstAlert(t, st, model.AlertNew)
	page := "/api/console/alerts/" + a.ID
	token := parse(t, b.get(page)).csrf()
	form := func(status, comment string) url.Values {
		return url.Values{"csrf": {token}, "status": {status}, "comment": {comment}, "by": {"ana@contoso.com"}}
	}

	// Without the token, with a wrong token, from another site: refused.
	for name, mod := range map[string]func(v url.Values, c *client){
		"no token":    func(v url.Values, _ *client) { v.Del("csrf") },
		"wrong token": func(v url.Values, _ *client) { v.Set("csrf", strings.Repeat("x", 43)) },
		"cross-site":  func(_ url.Values, c *client) { c.header.Set("Sec-Fetch-Site", "cross-site") },
		"no cookie":   func(_ url.Values, c *client) { delete(c.cookies, "palisade_csrf") },
	} {
		evil := newClient(t, c)
		for k, v := range b.cookies {
			evil.cookies[k] = v
		}
		v := form(model.AlertDismissed, "")
		mod(v, evil)
		if rec := evil.do(http.MethodPost, page+"/triage", v); rec.Code != http.StatusForbidden {
			t.Errorf("%s: %d", name, rec.Code)
		}
	}
	if got, _ := detection.GetAlert(t.Context(), st, a.Cluster, a.ID); got.Status != model.AlertNew {
		t.Fatalf("a refused form changed the alert to %s", got.Status)
	}

	rec := b.do(http.MethodPost, page+"/triage", form(model.AlertDismissed, "pen test <b>scheduled</b>"))
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != page+"?saved=1" {
		t.Fatalf("triage: %d %s %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	got, err := detection.GetAlert(t.Context(), st, a.Cluster, a.ID)
	if err != nil || got.Status != model.AlertDismissed || len(got.Triage) != 1 || got.Triage[0].By != "ana@contoso.com" || got.Triage[0].Comment != "pen test <b>scheduled</b>" {
		t.Fatalf("stored %+v %v", got.Triage, err)
	}
	if len(pub.sent) != 1 || pub.sent[0].Status != model.AlertDismissed {
		t.Errorf("published %+v", pub.sent)
	}
	p := parse(t, b.get(page+"?saved=1"))
	if !strings.Contains(p.body, "Saved: the alert is dismissed") || strings.Contains(p.body, "<b>scheduled") {
		t.Errorf("the page after saving: %s", p.body)
	}

	// A change the rule refuses: the form again, with the reason.
	rec = b.do(http.MethodPost, page+"/triage", form(model.AlertResolved, "fixed"))
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "cannot become resolved") {
		t.Errorf("refused change: %d", rec.Code)
	}
	rec = b.do(http.MethodPost, page+"/triage", url.Values{"csrf": {token}, "status": {model.AlertActive}})
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "say who") {
		t.Errorf("no name: %d", rec.Code)
	}
	// Sentinel down: saved, and said so.
	pub.fail = true
	rec = b.do(http.MethodPost, page+"/triage", form(model.AlertActive, "reopened"))
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "could not be sent to Sentinel") {
		t.Errorf("Sentinel down: %d", rec.Code)
	}
	if got, _ := detection.GetAlert(t.Context(), st, a.Cluster, a.ID); got.Status != model.AlertActive {
		t.Errorf("status %s after the change with Sentinel down, want active", got.Status)
	}
	// Easy Auth's principal names who made the change.
	pub.fail = false
	b.header.Set("X-MS-CLIENT-PRINCIPAL-NAME", "bo@contoso.com")
	if rec := b.do(http.MethodPost, page+"/triage", form(model.AlertResolved, "done")); rec.Code != http.StatusSeeOther {
		t.Fatalf("triage with a principal: %d", rec.Code)
	}
	got, _ = detection.GetAlert(t.Context(), st, a.Cluster, a.ID)
	if last := got.Triage[len(got.Triage)-1]; last.By != "bo@contoso.com" || last.Status != model.AlertResolved {
		t.Errorf("last change %+v", last)
	}
	// The alerts list shows the change at once.
	found := false
	for _, row := range parse(t, b.get("/api/console/alerts?status=resolved&q="+url.QueryEscape(a.Entity))).rows() {
		href, _ := attr(row[0].FirstChild, "href")
		found = found || href == page
	}
	if !found {
		t.Error("the resolved alert is not in the list of resolved alerts")
	}
}
