package console

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// cursorAll asks for a page large enough for one image's findings of one
// vulnerability.
var cursorAll = store.Cursor{Limit: 1000}

type alertsPage struct {
	base
	List listPage
	Rows []*AlertRow
}

var alertList = listing[*AlertRow]{columns: alertColumns, sorts: alertSorts, def: "last", defDesc: true, presorted: true,
	tie: func(a, b *AlertRow) int { return cmp.Compare(a.ID, b.ID) }}

var alertColumns = []column{
	{Label: "Alert", Key: "title"}, {Label: "Severity", Key: "severity", Desc: true}, {Label: "Status", Key: "status"},
	{Label: "Cluster", Key: "cluster"}, {Label: "Entity", Key: "entity"}, {Label: "Tactics"},
	{Label: "Events", Key: "count", Numeric: true}, {Label: "First seen", Key: "first", Numeric: true},
	{Label: "Last seen", Key: "last", Numeric: true},
}

// statusOrder sorts statuses as the triage goes.
var statusOrder = map[string]int{model.AlertNew: 0, model.AlertActive: 1, model.AlertResolved: 2, model.AlertDismissed: 3}

var alertSorts = map[string]sorter[*AlertRow]{
	"title":    func(a, b *AlertRow) int { return cmp.Compare(a.Title, b.Title) },
	"severity": func(a, b *AlertRow) int { return cmp.Or(cmp.Compare(a.Rank, b.Rank), a.LastSeen.Compare(b.LastSeen)) },
	"status":   func(a, b *AlertRow) int { return cmp.Compare(statusOrder[a.Status], statusOrder[b.Status]) },
	"cluster":  func(a, b *AlertRow) int { return cmp.Compare(a.Cluster, b.Cluster) },
	"entity":   func(a, b *AlertRow) int { return cmp.Compare(a.Entity, b.Entity) },
	"count":    func(a, b *AlertRow) int { return cmp.Compare(a.Count, b.Count) },
	"first":    func(a, b *AlertRow) int { return a.FirstSeen.Compare(b.FirstSeen) },
	"last":     func(a, b *AlertRow) int { return a.LastSeen.Compare(b.LastSeen) },
}

// alertStatusOptions: "open" is new or active.
var alertStatusOptions = []option{{"open", "open (new or active)"}, {model.AlertNew, model.AlertNew}, {model.AlertActive, model.AlertActive},
	{model.AlertResolved, model.AlertResolved}, {model.AlertDismissed, model.AlertDismissed}}

// alertSeverityOptions filter alerts on one severity.
var alertSeverityOptions = []option{{"critical", "Critical"}, {"high", "High"}, {"medium", "Medium"}, {"low", "Low"}, {"informational", "Informational"}}

var sinceOptions = []option{{"24h", "last 24 hours"}, {"7d", "last 7 days"}, {"30d", "last 30 days"}}

var sinceDurations = map[string]time.Duration{"24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

func (c *Console) alerts(r *request) (*rendered, error) {
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	f := &form{q: r.q}
	search := f.text("q", "Search", "title, entity, node or image")
	cluster := f.choice("cluster", "Cluster", clusterOptions(v.alertClusters))
	severity := f.choice("severity", "Severity", alertSeverityOptions)
	status := f.choice("status", "Status", alertStatusOptions)
	typ := f.choice("type", "Type", options(v.alertTypes...))
	tactic := f.choice("tactic", "Tactic", options(v.alertTactics...))
	source := f.choice("source", "Source", options("runtime", "audit"))
	since := f.choice("since", "Last seen", sinceOptions)
	if f.err != nil {
		return nil, f.err
	}
	var after time.Time
	if d, ok := sinceDurations[since]; ok {
		after = v.At.Add(-d)
	}
	var rows []*AlertRow
	for _, a := range v.Alerts {
		if (cluster != "" && a.Cluster != cluster) || (severity != "" && !strings.EqualFold(string(a.Severity), severity)) || !matchStatus(status, a.Status) || (typ != "" && a.Type != typ) ||
			(tactic != "" && !slices.Contains(a.Tactics, tactic)) || (source != "" && a.Source != source) || a.LastSeen.Before(after) ||
			(search != "" && !contains(a.Title+" "+a.Entity+" "+a.Node+" "+a.Image+" "+a.RefType, search)) {
			continue
		}
		rows = append(rows, a)
	}
	page, lp, err := alertList.page(r.q, rows, f.fields)
	if err != nil {
		return nil, err
	}
	return &rendered{template: "alerts", data: &alertsPage{base: c.base(r, "alerts", "Alerts"), List: lp, Rows: page}}, nil
}

func matchStatus(filter, status string) bool {
	switch filter {
	case "":
		return true
	case "open":
		return model.AlertOpen(status)
	}
	return filter == status
}

// alertPage is one alert with its triage form.
type alertPage struct {
	base
	Alert      model.Alert
	Evidence   []keyValue
	Output     string
	Image      *ImageRow
	Findings   []model.Finding // the image's worst open findings
	MoreOpen   int
	Next       []string // statuses the triage may set
	ByDefault  string   // the name the form suggests (App Service's signed-in user)
	Saved      bool     // just triaged
	Error      string   // why the last triage was refused
	FormStatus string
	Comment    string
}

type keyValue struct{ Key, Value string }

// maxAlertFindings bounds the image findings an alert page lists.
const maxAlertFindings = 10

func (c *Console) alert(r *request) (*rendered, error) {
	return c.alertPage(r, "", nil)
}

// alertPage renders an alert; problem, when set, is a refused triage shown
// on the form with what was entered.
func (c *Console) alertPage(r *request, problem string, form *detection.TriageRequest) (*rendered, error) {
	id := r.PathValue("id")
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	cluster := ""
	if row := v.Alert(id); row != nil {
		cluster = row.Cluster
	}
	a, err := detection.GetAlert(r.Context(), c.st, cluster, id)
	if errors.Is(err, detection.ErrAlertNotFound) {
		return nil, notFound("The alert " + id)
	}
	if err != nil {
		return nil, err
	}
	p := &alertPage{base: c.base(r, "alerts", a.Title), Alert: a, Saved: r.q.get("saved") == "1", Error: problem,
		ByDefault: strings.TrimSpace(r.Header.Get(principalHeader))}
	for k, val := range a.Evidence {
		if k == "output" {
			p.Output = val
			continue
		}
		p.Evidence = append(p.Evidence, keyValue{k, val})
	}
	slices.SortFunc(p.Evidence, func(x, y keyValue) int { return cmp.Compare(x.Key, y.Key) })
	for _, s := range []string{model.AlertActive, model.AlertResolved, model.AlertDismissed} {
		if s != a.Status && detection.Transition(a.Status, s) == nil {
			p.Next = append(p.Next, s)
		}
	}
	if form != nil {
		p.FormStatus, p.Comment, p.ByDefault = form.Status, form.Comment, form.By
	}
	if a.ImageDigest != "" {
		p.Image = v.Image(a.ImageDigest)
		l, err := vulnstore.ListFindings(r.Context(), c.st, a.ImageDigest, vulnstore.FindingFilter{Status: model.FindingOpen}, store.Cursor{Limit: 1000})
		if err != nil {
			return nil, err
		}
		slices.SortFunc(l.Items, func(x, y model.Finding) int {
			return cmp.Or(cmp.Compare(y.SeverityRank, x.SeverityRank), cmp.Compare(y.CVSSScore, x.CVSSScore), cmp.Compare(x.ID, y.ID))
		})
		p.Findings = l.Items[:min(maxAlertFindings, len(l.Items))]
		p.MoreOpen = len(l.Items) - len(p.Findings)
	}
	status := http.StatusOK
	if problem != "" {
		status = http.StatusUnprocessableEntity
	}
	return &rendered{template: "alert", data: p, status: status}, nil
}

// principalHeader names the signed-in user when App Service authentication
// is on.
const principalHeader = "X-MS-CLIENT-PRINCIPAL-NAME"

// triage applies the form through detection.Triage (the rule of the API's
// PATCH /api/alerts/{id}), sends the alert to Sentinel, and goes back to
// the alert (post, redirect, get).
func (c *Console) triage(r *request) (*rendered, error) {
	if err := c.posted(r); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	req := detection.TriageRequest{ID: id, Status: r.PostFormValue("status"), Comment: strings.TrimSpace(r.PostFormValue("comment")),
		By: strings.TrimSpace(r.PostFormValue("by"))}
	if p := strings.TrimSpace(r.Header.Get(principalHeader)); p != "" {
		req.By = p
	}
	if v := c.views.peek(); v != nil {
		if row := v.Alert(id); row != nil {
			req.Cluster = row.Cluster
		}
	}
	a, _, err := detection.Triage(r.Context(), c.st, req, c.opts.Now())
	switch {
	case errors.Is(err, detection.ErrAlertNotFound):
		return nil, notFound("The alert " + id)
	case errors.Is(err, detection.ErrTriageInvalid), errors.Is(err, detection.ErrTransition):
		return c.alertPage(r, err.Error(), &req)
	case err != nil:
		return nil, err
	}
	c.views.changed(&a)
	if c.opts.Publisher != nil {
		if err := c.opts.Publisher.Publish(r.Context(), []model.Alert{a}); err != nil {
			logging.Ctx(r.Context()).Error().Err(err).Str(logging.FieldCluster, a.Cluster).Msg("triaged alert not sent to Sentinel")
			return c.alertPage(r, "The change is saved but could not be sent to Sentinel; send it again.", &req)
		}
	}
	return &rendered{redirect: r.q.link(Base+"/alerts/"+id, "saved", "1")}, nil
}
