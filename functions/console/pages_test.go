package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/palisade-sec/palisade/functions/console"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/seed"
)

// TestEveryPage opens every page (and its lists filtered, sorted and
// paged) and checks the answer: HTML, the security headers, no value the
// template escaper refused, and the planted markup shown as text only.
func TestEveryPage(t *testing.T) {
	st, res := seeded(t)
	c := newClient(t, newConsole(t, st, console.Options{}))
	alert := firstAlert(t, st, model.AlertNew)
	cl := res.Clusters[0]
	pages := []string{
		"/api/console/",
		"/api/console/images", "/api/console/images?severity=high&sort=pushed&dir=asc", "/api/console/images?page=2",
		"/api/console/images?highest=critical", "/api/console/images?status=failed", "/api/console/images?running=yes&kev=yes",
		"/api/console/images?q=" + url.QueryEscape("<script>"),
		"/api/console/images/" + res.XSSDigest, "/api/console/images/" + res.XSSDigest + "?tab=packages",
		"/api/console/images/" + res.XSSDigest + "?tab=history", "/api/console/images/" + res.XSSDigest + "?tab=running",
		"/api/console/images/" + res.XSSDigest + "?status=all&sort=package",
		"/api/console/vulnerabilities", "/api/console/vulnerabilities?fixable=no&sort=severity&dir=desc",
		"/api/console/alerts", "/api/console/alerts?status=open&severity=high&cluster=" + url.QueryEscape(cl),
		"/api/console/alerts?since=24h&sort=count&dir=desc&page=2", "/api/console/alerts/" + alert.ID,
		"/api/console/alerts/" + res.XSSAlert,
		"/api/console/posture", "/api/console/posture?benchmark=CIS-AKS&state=failing", "/api/console/posture?sort=failing&dir=desc",
		"/api/console/posture/checks/privileged-containers", "/api/console/posture/checks/privileged-containers?status=exempt",
		"/api/console/posture/exemptions", "/api/console/posture/remediations",
		"/api/console/clusters", "/api/console/cluster?name=" + url.QueryEscape(cl), "/api/console/admissions", "/api/console/admissions?decision=denied&sort=object",
	}
	v, err := console.Build(t.Context(), st, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Vulns) > 0 {
		pages = append(pages, "/api/console/vulnerabilities/"+url.PathEscape(v.Vulns[0].ID))
	}
	for _, path := range pages {
		t.Run(path, func(t *testing.T) {
			rec := c.get(path)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			h := rec.Header()
			if h.Get("Content-Type") != "text/html; charset=utf-8" || h.Get("Content-Security-Policy") != console.ContentSecurityPolicy ||
				h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("headers %v", h)
			}
			p := parse(t, rec)
			if strings.Contains(p.body, "ZgotmplZ") {
				t.Error("the template escaper refused a value (ZgotmplZ)")
			}
			p.each(func(n *html.Node) {
				if n.Data == "script" {
					if src, _ := attr(n, "src"); !strings.HasPrefix(src, "/api/console/static/console.js?") || n.FirstChild != nil {
						t.Errorf("a script other than the console's: %s %q", src, text(n))
					}
				}
				if n.Data == "img" {
					if src, _ := attr(n, "src"); !strings.HasPrefix(src, "/api/console/static/") {
						t.Errorf("an image from elsewhere: %s", src)
					}
				}
				for _, a := range n.Attr {
					if strings.HasPrefix(a.Key, "on") || a.Key == "style" {
						t.Errorf("inline %s on <%s>", a.Key, n.Data)
					}
				}
			})
			if len(p.body) > 250_000 {
				t.Errorf("page is %d bytes", len(p.body))
			}
		})
	}
}

// TestXSSRendersAsText: an image tag, a package name and a Falco output
// carrying markup come back as text, escaped.
func TestXSSRendersAsText(t *testing.T) {
	st, res := seeded(t)
	c := newClient(t, newConsole(t, st, console.Options{}))
	for path, planted := range map[string]string{
		"/api/console/images/" + res.XSSDigest:                                      seed.XSSTag,
		"/api/console/images?q=" + url.QueryEscape("script"):                        seed.XSSTag,
		"/api/console/images/" + res.XSSDigest + "?tab=packages":                    seed.XSSPackage,
		"/api/console/images/" + res.XSSDigest + "?q=" + url.QueryEscape("onerror"): seed.XSSPackage,
		"/api/console/alerts/" + res.XSSAlert:                                       seed.XSSOutput,
	} {
		rec := c.get(path)
		if rec.Code != 200 {
			t.Fatalf("%s: %d", path, rec.Code)
		}
		p := parse(t, rec)
		if strings.Contains(p.body, "window.__xss") && !strings.Contains(p.body, "window.__xss=&#34;") && !strings.Contains(p.body, "window.__xss=&#39;") {
			t.Errorf("%s: planted markup unescaped", path)
		}
		found := false
		p.each(func(n *html.Node) {
			if n.Data == "script" && n.FirstChild != nil || n.Data == "img" && strings.Contains(fmt.Sprint(n.Attr), "onerror") {
				t.Errorf("%s: the planted <%s> became an element", path, n.Data)
			}
			if strings.Contains(text(n), planted) {
				found = true
			}
		})
		if !found {
			t.Errorf("%s: the planted text %q is not shown", path, planted)
		}
	}
}

// TestNumbersAreTheStores: the counts pages show are those the domain
// packages read from the store.
func TestNumbersAreTheStores(t *testing.T) {
	st, res := seeded(t)
	c := newClient(t, newConsole(t, st, console.Options{}))
	ctx := t.Context()

	var active, critical, high int
	err := vulnstore.EachImage(ctx, st, vulnstore.ImageFilter{}, func(img model.Image) error {
		if img.Status == model.ImageDeleted {
			return nil
		}
		active++
		switch {
		case img.Status != model.ImageActive:
		case img.MaxRank == model.SeverityCritical.Rank():
			critical++
		case img.MaxRank == model.SeverityHigh.Rank():
			high++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	open := map[model.Severity]int{}
	openTotal := 0
	if err := detection.EachAlert(ctx, st, detection.AlertFilter{}, func(a model.Alert) error {
		if model.AlertOpen(a.Status) {
			open[a.Severity]++
			openTotal++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	p := parse(t, c.get("/api/console/"))
	for metric, want := range map[string]int{"images": active, "images-critical": critical, "images-high": high, "open-alerts": openTotal,
		"open-HIGH": open[model.SeverityHigh], "open-CRITICAL": open[model.SeverityCritical]} {
		if got := p.metric(metric); got != strconv.Itoa(want) && got != num(want) {
			t.Errorf("overview %s = %q, want %d", metric, got, want)
		}
	}
	scores, err := posture.LoadScores(ctx, st, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range scores.Clusters {
		name := run.Cluster[strings.LastIndexByte(run.Cluster, '/')+1:]
		if got, want := p.metric("score-"+name), strconv.FormatFloat(run.Score.Score, 'f', 1, 64); got != want {
			t.Errorf("score of %s = %q, want %s", name, got, want)
		}
	}

	// The images list with a filter counts what the API's filter counts.
	n := 0
	if err := vulnstore.EachImage(ctx, st, vulnstore.ImageFilter{MinSeverity: model.SeverityHigh, Status: model.ImageActive}, func(model.Image) error {
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := parse(t, c.get("/api/console/images?severity=high&status=active")).total(); got != strconv.Itoa(n) {
		t.Errorf("images high or worse: %s, want %d", got, n)
	}
	// Alerts of one cluster and status.
	n = 0
	if err := detection.EachAlert(ctx, st, detection.AlertFilter{Cluster: res.Clusters[1], Status: model.AlertDismissed}, func(model.Alert) error {
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := parse(t, c.get("/api/console/alerts?status=dismissed&cluster="+url.QueryEscape(res.Clusters[1]))).total(); got != strconv.Itoa(n) {
		t.Errorf("dismissed alerts of %s: %s, want %d", res.Clusters[1], got, n)
	}
	// An image's open findings.
	e, err := vulnstore.OpenFindings(ctx, st, res.XSSDigest, "")
	if err != nil {
		t.Fatal(err)
	}
	ip := parse(t, c.get("/api/console/images/"+res.XSSDigest))
	if got := ip.metric("open-findings"); got != strconv.Itoa(e.Total()) {
		t.Errorf("open findings of the image: %s, want %d", got, e.Total())
	}
	if got := ip.total(); got != strconv.Itoa(e.Total()) {
		t.Errorf("findings listed: %s, want %d", got, e.Total())
	}
}

func num(n int) string {
	s := strconv.Itoa(n)
	if n < 1000 {
		return s
	}
	return s[:len(s)-3] + "," + s[len(s)-3:]
}

// TestPaging: walking a list page by page visits every row once, in the
// order asked for.
func TestPaging(t *testing.T) {
	st, _ := seeded(t)
	c := newClient(t, newConsole(t, st, console.Options{}))
	seen := map[string]bool{}
	next := "/api/console/alerts?sort=first&dir=asc"
	var last string
	pages := 0
	for ; next != ""; pages++ {
		if pages > 100 {
			t.Fatal("too many pages")
		}
		p := parse(t, c.get(next))
		next = ""
		p.each(func(n *html.Node) {
			if rel, _ := attr(n, "rel"); n.Data == "a" && rel == "next" {
				next, _ = attr(n, "href")
			}
		})
		for _, row := range p.rows() {
			href, _ := attr(row[0].FirstChild, "href")
			if seen[href] {
				t.Errorf("%s listed twice", href)
			}
			seen[href] = true
			first, _ := attr(row[7], "title") // "2026-07-31 09:12 UTC"
			if first < last {
				t.Errorf("first seen %s after %s", first, last)
			}
			last = first
		}
	}
	total := 0
	if err := detection.EachAlert(t.Context(), st, detection.AlertFilter{}, func(model.Alert) error { total++; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != total || pages < 2 {
		t.Errorf("paging saw %d alerts in %d pages, the store has %d", len(seen), pages, total)
	}
}

// TestBadRequests: what a page does not know is a clear 4xx page.
func TestBadRequests(t *testing.T) {
	st, _ := seeded(t)
	c := newClient(t, newConsole(t, st, console.Options{}))
	for path, code := range map[string]int{
		"/api/console/images?sort=colour":                                        400,
		"/api/console/images?severity=urgent":                                    400,
		"/api/console/images?page=0":                                             400,
		"/api/console/alerts?status=sleeping":                                    400,
		"/api/console/images/sha256:abc":                                         404,
		"/api/console/images/sha256:" + strings.Repeat("0", 64):                  404,
		"/api/console/alerts/0123456789abcdef0123456789abcdef":                   404,
		"/api/console/vulnerabilities/CVE-1999-0001":                             404,
		"/api/console/posture/checks/no-such-check":                              404,
		"/api/console/cluster?name=nowhere":                                      404,
		"/api/console/nothing-here":                                              404,
		"/api/console/images/sha256:" + strings.Repeat("0", 64) + "?tab=secrets": 404,
	} {
		rec := c.get(path)
		if rec.Code != code || !strings.Contains(rec.Header().Get("Content-Type"), "text/html") || rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %d %s, want %d", path, rec.Code, rec.Header().Get("Content-Type"), code)
		}
	}
	if rec := c.get("/api/console"); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/api/console/" {
		t.Errorf("/api/console: %d %s", rec.Code, rec.Header().Get("Location"))
	}
}

// TestStatic: the assets are served with their types and the headers.
func TestStatic(t *testing.T) {
	c := newClient(t, newConsole(t, newStore(t), console.Options{Key: "k"}))
	for path, ct := range map[string]string{"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8", "favicon.svg": "image/svg+xml"} {
		rec := c.get("/api/console/static/" + path)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != ct || rec.Header().Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(rec.Header().Get("Cache-Control"), "max-age") {
			t.Errorf("%s: %d %v", path, rec.Code, rec.Header())
		}
	}
	if rec := c.get("/api/console/static/../console.go"); rec.Code == 200 {
		t.Error("a file outside static/ was served")
	}
}
