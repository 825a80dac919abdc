package console

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
)

// base is what the layout of every page needs.
type base struct {
	Title    string
	Nav      string // the navigation entry to highlight
	CSRF     string
	SignedIn bool // a key is set and the session may be ended
	Demo     bool // some data comes from the demo vulnerability DB
	ViewAt   time.Time
	Now      time.Time
	q        *query
}

func (c *Console) base(r *request, nav, title string) base {
	b := base{Title: title, Nav: nav, CSRF: r.csrf, SignedIn: c.auth.enabled() && c.auth.authorized(r.Request), Now: c.opts.Now(), q: r.q}
	if v := c.views.peek(); v != nil {
		b.Demo, b.ViewAt = v.DemoData, v.At
	}
	return b
}

// Link is a console URL: path under Base with name/value pairs, carrying
// the host's key when the page was opened with one.
func (b base) Link(p string, kv ...string) string { return b.q.link(Base+p, kv...) }

// With is this page's URL with parameters changed (paging, tabs).
func (b base) With(kv ...string) string { return b.q.with(kv...) }

// Static is the URL of an embedded asset, versioned by its content.
func (b base) Static(name string) string { return b.q.link(Base+"/static/"+name, "v", assetVersion) }

// Ago says how long before the page's time t was.
func (b base) Ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := b.Now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// assetVersion changes with the embedded assets, so a new release is not
// served from a browser's cache.
var assetVersion = func() string {
	h := sha256.New()
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(staticFS, p)
			h.Write([]byte(p))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// funcs are the helpers the templates use. None of them returns markup:
// everything they give is escaped by html/template.
var funcs = template.FuncMap{
	"sevClass": func(s any) string { return sevClass(model.Severity(fmt.Sprint(s))) },
	"sevName":  func(s any) string { return sevName(model.Severity(fmt.Sprint(s))) },
	"rankSev":  rankSeverity,
	"time":     func(t time.Time) string { return fmtTime(t) },
	"short":    shortDigest,
	"cluster":  shortCluster,
	"num":      num,
	"join":     strings.Join,
	"score":    func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"statusClass": func(s string) string {
		return "status-" + strings.ToLower(s)
	},
	"technique": techniqueURL,
	"add":       func(a, b int) int { return a + b },
	"count":     func(c model.Counts, s string) int { return c[model.Severity(s)] },
	"lower":     func(s any) string { return strings.ToLower(fmt.Sprint(s)) },
	"pathesc":   url.PathEscape,
}

func rankSeverity(rank int) model.Severity {
	for _, s := range model.Severities() {
		if s.Rank() == rank {
			return s
		}
	}
	return model.SeverityUnknown
}

func sevClass(s model.Severity) string { return "sev-" + strings.ToLower(string(s)) }

func sevName(s model.Severity) string {
	if s == "" {
		return "none"
	}
	l := strings.ToLower(string(s))
	return strings.ToUpper(l[:1]) + l[1:]
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// shortCluster is the last part of a cluster's ARM id (its name), or the
// whole name.
func shortCluster(name string) string {
	if i := strings.LastIndexByte(strings.TrimRight(name, "/"), '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// num writes a count with thousands separators.
func num(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// techniqueURL is a MITRE ATT&CK technique's page: T1059.004 is
// /techniques/T1059/004/. Anything else is not linked.
func techniqueURL(id string) string {
	main, sub, _ := strings.Cut(id, ".")
	if len(main) < 5 || main[0] != 'T' || strings.Trim(main[1:], "0123456789") != "" || strings.Trim(sub, "0123456789") != "" {
		return ""
	}
	u := "https://attack.mitre.org/techniques/" + main + "/"
	if sub != "" {
		u += sub + "/"
	}
	return u
}

// pageNames are the page templates; each is parsed with the layout and the
// shared parts.
var pageNames = []string{"overview", "images", "image", "vulns", "vuln", "alerts", "alert", "posture", "check",
	"exemptions", "remediations", "clusters", "cluster", "admissions", "login", "error"}

func parseTemplates() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", path.Join("templates", name+".html"))
		if err != nil {
			return nil, fmt.Errorf("console templates: %w", err)
		}
		out[name] = t
	}
	return out, nil
}
