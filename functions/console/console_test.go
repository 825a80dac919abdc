package console_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/palisade-sec/palisade/functions/console"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/embedded"
	"github.com/palisade-sec/palisade/tests/seed"
)

// now is the seeded data's present.
var now = time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)

func newStore(t testing.TB) *embedded.Store {
	t.Helper()
	st, err := embedded.OpenWith(filepath.Join(t.TempDir(), "palisade.db"), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// seeded returns a store seeded with a hundred images and a thousand
// events, with the XSS strings planted. Tests that write get their own.
func seeded(t *testing.T) (store.Store, seed.Result) {
	t.Helper()
	st := newStore(t)
	res := seed.Fill(t, st, seed.Options{Images: 100, Alerts: 1000, Now: now, XSS: true})
	return st, res
}

// recordingPublisher keeps what it is sent, failing while fail is set.
type recordingPublisher struct {
	mu   sync.Mutex
	sent []model.Alert
	fail bool
}

func (p *recordingPublisher) Publish(_ context.Context, alerts []model.Alert) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return errors.New("sentinel down")
	}
	p.sent = append(p.sent, alerts...)
	return nil
}

func newConsole(t *testing.T, st store.Store, opts console.Options) *console.Console {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return now }
	}
	c, err := console.New(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// client is a browser in miniature: it keeps cookies and sends what a
// browser sends with a same-origin form.
type client struct {
	t       *testing.T
	h       http.Handler
	cookies map[string]*http.Cookie
	header  http.Header
}

func newClient(t *testing.T, h http.Handler) *client {
	return &client{t: t, h: h, cookies: map[string]*http.Cookie{}, header: http.Header{}}
}

func (c *client) do(method, target string, form url.Values) *httptest.ResponseRecorder {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Origin", "http://"+req.Host)
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	return rec
}

func (c *client) get(target string) *httptest.ResponseRecorder {
	return c.do(http.MethodGet, target, nil)
}

// page is a parsed HTML answer.
type page struct {
	doc  *html.Node
	body string
}

func parse(t *testing.T, rec *httptest.ResponseRecorder) *page {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("not HTML: %v", err)
	}
	return &page{doc: doc, body: rec.Body.String()}
}

// each calls fn for every element.
func (p *page) each(fn func(n *html.Node)) {
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			fn(n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(p.doc)
}

func attr(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// metric is the text of the element marked data-metric=name.
func (p *page) metric(name string) string {
	out := ""
	p.each(func(n *html.Node) {
		if v, _ := attr(n, "data-metric"); v == name {
			out = strings.TrimSpace(text(n))
		}
	})
	return out
}

// total is the item count of the page's list.
func (p *page) total() string {
	out := ""
	p.each(func(n *html.Node) {
		if v, ok := attr(n, "data-total"); ok {
			out = v
		}
	})
	return out
}

// links are the URLs of every href, src and form action of the page.
func (p *page) links() []string {
	var out []string
	p.each(func(n *html.Node) {
		for _, a := range n.Attr {
			if a.Key == "href" || a.Key == "src" || a.Key == "action" {
				out = append(out, a.Val)
			}
		}
	})
	return out
}

// csrf is the token of the page's first form.
func (p *page) csrf() string {
	out := ""
	p.each(func(n *html.Node) {
		if name, _ := attr(n, "name"); name == "csrf" && out == "" {
			out, _ = attr(n, "value")
		}
	})
	return out
}

func firstAlert(t *testing.T, st store.Store, status string) model.Alert {
	t.Helper()
	var out model.Alert
	err := detection.EachAlert(t.Context(), st, detection.AlertFilter{Status: status}, func(a model.Alert) error {
		if out.ID == "" || a.ID < out.ID {
			out = a
		}
		return nil
	})
	if err != nil || out.ID == "" {
		t.Fatalf("no %s alert: %v", status, err)
	}
	return out
}

// rows are the cells of each row of the page's list body.
func (p *page) rows() [][]*html.Node {
	var out [][]*html.Node
	p.each(func(n *html.Node) {
		if n.Data != "tr" || n.Parent == nil || n.Parent.Data != "tbody" {
			return
		}
		var cells []*html.Node
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.Data == "td" {
				cells = append(cells, c)
			}
		}
		if len(cells) > 0 {
			out = append(out, cells)
		}
	})
	return out
}
