package console

import (
	"cmp"
	"slices"
	"strings"

	"github.com/palisade-sec/palisade/shared/model"
)

// family is a benchmark reference's family: its first word (CIS-AKS,
// CIS-Kubernetes, AzurePolicy, Defender, Custom), as posture.Score groups.
func family(ref string) string {
	f, _, _ := strings.Cut(ref, " ")
	return f
}

// checkRow is one check of one benchmark family, in one cluster (the
// View's counts) or across clusters (the list's rows).
type checkRow struct {
	Family, CheckID, Title string
	Severity               model.Severity
	Refs                   []string // the family's references of the check
	Failing, Exempt, Pass  int
	Errors                 int
	Clusters               []string // clusters where it fails
	cluster                string   // of a View count
}

type posturePage struct {
	base
	Scores  []postureRow
	History chart
	List    listPage
	Rows    []checkRow
	Grouped bool // sorted by family: the template prints group headings
}

var checkList = listing[checkRow]{columns: checkColumns, sorts: checkSorts, def: "family",
	tie: func(a, b checkRow) int {
		return cmp.Or(cmp.Compare(a.CheckID, b.CheckID), cmp.Compare(a.Family, b.Family))
	}}

var checkColumns = []column{
	{Label: "Benchmark", Key: "family"}, {Label: "Recommendation", Key: "title"}, {Label: "Severity", Key: "severity", Desc: true},
	{Label: "References"}, {Label: "Failing", Key: "failing", Numeric: true}, {Label: "Exempt", Key: "exempt", Numeric: true},
	{Label: "Passing", Key: "pass", Numeric: true}, {Label: "Clusters failing", Key: "clusters", Numeric: true},
}

var checkSorts = map[string]sorter[checkRow]{
	"family": func(a, b checkRow) int {
		return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(b.Failing, a.Failing), cmp.Compare(b.Severity.Rank(), a.Severity.Rank()))
	},
	"title":    func(a, b checkRow) int { return cmp.Compare(a.Title, b.Title) },
	"severity": func(a, b checkRow) int { return cmp.Compare(a.Severity.Rank(), b.Severity.Rank()) },
	"failing":  func(a, b checkRow) int { return cmp.Compare(a.Failing, b.Failing) },
	"exempt":   func(a, b checkRow) int { return cmp.Compare(a.Exempt, b.Exempt) },
	"pass":     func(a, b checkRow) int { return cmp.Compare(a.Pass, b.Pass) },
	"clusters": func(a, b checkRow) int { return cmp.Compare(len(a.Clusters), len(b.Clusters)) },
}

func (c *Console) posture(r *request) (*rendered, error) {
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	p := &posturePage{base: c.base(r, "posture", "Posture"), Scores: v.overview().Posture}
	var ss []lineSeries
	for i, name := range sortedKeys(v.History) {
		ss = append(ss, v.scoreSeries(name, i))
	}
	p.History = lines("Posture score per cluster over the last 30 days", ss, v.historyStart(), v.At, 100, 460, 180)

	var clusters, families []string
	for _, c := range v.checks {
		clusters = appendUnique(clusters, c.cluster)
		families = appendUnique(families, c.Family)
	}
	slices.Sort(clusters)
	slices.Sort(families)
	f := &form{q: r.q}
	search := f.text("q", "Search", "recommendation or check id")
	cluster := f.choice("cluster", "Cluster", clusterOptions(clusters))
	fam := f.choice("benchmark", "Benchmark", options(families...))
	severity := f.choice("severity", "Severity", severityOptions)
	state := f.choice("state", "Showing", []option{{"failing", "failing only"}})
	if f.err != nil {
		return nil, f.err
	}
	rank := minRank(severity)
	rows := map[[2]string]*checkRow{}
	var flat []checkRow
	var list []*checkRow
	for _, c := range v.checks {
		if (cluster != "" && c.cluster != cluster) || (fam != "" && c.Family != fam) || c.Severity.Rank() < rank ||
			(search != "" && !contains(c.Title+" "+c.CheckID, search)) {
			continue
		}
		k := [2]string{c.Family, c.CheckID}
		row := rows[k]
		if row == nil {
			row = &checkRow{Family: c.Family, CheckID: c.CheckID, Title: c.Title, Severity: c.Severity, Refs: c.Refs}
			rows[k] = row
			list = append(list, row)
		}
		row.Failing += c.Failing
		row.Exempt += c.Exempt
		row.Pass += c.Pass
		row.Errors += c.Errors
		if c.Failing > 0 {
			row.Clusters = appendUnique(row.Clusters, c.cluster)
		}
	}
	for _, row := range list {
		if state == "failing" && row.Failing == 0 {
			continue
		}
		flat = append(flat, *row)
	}
	p.Rows, p.List, err = checkList.page(r.q, flat, f.fields)
	if err != nil {
		return nil, err
	}
	p.Grouped = r.q.get("sort") == "" || r.q.get("sort") == "family"
	return &rendered{template: "posture", data: p}, nil
}

func sortedKeys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkPage is one check: its resources in every cluster with the fix.
type checkPage struct {
	base
	CheckID, Title string
	Severity       model.Severity
	Benchmarks     []string
	Remediation    string
	List           listPage
	Rows           []*model.PostureResult
}

var resultColumns = []column{
	{Label: "Resource", Key: "resource"}, {Label: "Cluster", Key: "cluster"}, {Label: "Status", Key: "status"},
	{Label: "Finding"}, {Label: "Failing since", Key: "first", Numeric: true}, {Label: "Fix"},
}

var resultSorts = map[string]sorter[*model.PostureResult]{
	"resource": func(a, b *model.PostureResult) int { return cmp.Compare(a.Resource, b.Resource) },
	"cluster":  func(a, b *model.PostureResult) int { return cmp.Compare(a.Cluster, b.Cluster) },
	"status":   func(a, b *model.PostureResult) int { return cmp.Compare(a.Status, b.Status) },
	"first":    func(a, b *model.PostureResult) int { return a.FirstFailed.Compare(b.FirstFailed) },
	"until":    func(a, b *model.PostureResult) int { return a.ExemptUntil.Compare(b.ExemptUntil) },
	"check":    func(a, b *model.PostureResult) int { return cmp.Compare(a.CheckID, b.CheckID) },
}

func resultTie(a, b *model.PostureResult) int { return cmp.Compare(a.ID, b.ID) }

func (c *Console) check(r *request) (*rendered, error) {
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	id := r.PathValue("check")
	p := &checkPage{base: c.base(r, "posture", id), CheckID: id}
	var clusters []string
	var all []*model.PostureResult
	for _, res := range v.Results {
		if res.CheckID != id {
			continue
		}
		all = append(all, res)
		clusters = appendUnique(clusters, res.Cluster)
		p.Title, p.Severity, p.Benchmarks = res.Title, res.Severity, res.Benchmarks
		if p.Remediation == "" {
			p.Remediation = res.Remediation
		}
	}
	if len(all) == 0 {
		return nil, notFound("The check " + id)
	}
	p.base.Title = p.Title
	slices.Sort(clusters)
	f := &form{q: r.q}
	search := f.text("q", "Search", "resource or namespace")
	cluster := f.choice("cluster", "Cluster", clusterOptions(clusters))
	status := f.choice("status", "Status", options(model.PostureFail, model.PostureExempt, model.PosturePass, model.PostureError))
	if f.err != nil {
		return nil, f.err
	}
	var rows []*model.PostureResult
	for _, res := range all {
		if (cluster != "" && res.Cluster != cluster) || (status != "" && res.Status != status) || !contains(res.Resource+" "+res.Namespace, search) {
			continue
		}
		rows = append(rows, res)
	}
	p.Rows, p.List, err = listing[*model.PostureResult]{columns: resultColumns, sorts: resultSorts, def: "status", tie: resultTie}.page(r.q, rows, f.fields)
	if err != nil {
		return nil, err
	}
	return &rendered{template: "check", data: p}, nil
}

type exemptionsPage struct {
	base
	List listPage
	Rows []*model.PostureResult
}

var exemptionColumns = []column{
	{Label: "Recommendation", Key: "check"}, {Label: "Resource", Key: "resource"}, {Label: "Cluster", Key: "cluster"},
	{Label: "Reason"}, {Label: "Expires", Key: "until", Numeric: true},
}

func (c *Console) exemptions(r *request) (*rendered, error) {
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	f := &form{q: r.q}
	search := f.text("q", "Search", "check, resource or reason")
	var rows []*model.PostureResult
	for _, res := range v.Results {
		if res.Status == model.PostureExempt && contains(res.CheckID+" "+res.Title+" "+res.Resource+" "+res.ExemptReason, search) {
			rows = append(rows, res)
		}
	}
	page, lp, err := listing[*model.PostureResult]{columns: exemptionColumns, sorts: resultSorts, def: "until", tie: resultTie}.page(r.q, rows, f.fields)
	if err != nil {
		return nil, err
	}
	return &rendered{template: "exemptions", data: &exemptionsPage{base: c.base(r, "posture", "Exemptions"), List: lp, Rows: page}}, nil
}

type remediationsPage struct {
	base
	List listPage
	Rows []model.Remediation
}

var remediationColumns = []column{
	{Label: "When", Key: "at", Numeric: true}, {Label: "Recommendation", Key: "check"}, {Label: "Resource", Key: "resource"},
	{Label: "Cluster", Key: "cluster"}, {Label: "Outcome", Key: "outcome"}, {Label: "Patch"},
}

// outcome names what a remediation attempt did.
func outcome(r model.Remediation) string {
	switch {
	case r.Error != "":
		return "failed"
	case r.Applied:
		return "applied"
	}
	return "dry run"
}

var remediationSorts = map[string]sorter[model.Remediation]{
	"at":       func(a, b model.Remediation) int { return a.At.Compare(b.At) },
	"check":    func(a, b model.Remediation) int { return cmp.Compare(a.CheckID, b.CheckID) },
	"resource": func(a, b model.Remediation) int { return cmp.Compare(a.Resource, b.Resource) },
	"cluster":  func(a, b model.Remediation) int { return cmp.Compare(a.Cluster, b.Cluster) },
	"outcome":  func(a, b model.Remediation) int { return cmp.Compare(outcome(a), outcome(b)) },
}

func (c *Console) remediations(r *request) (*rendered, error) {
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	f := &form{q: r.q}
	search := f.text("q", "Search", "check or resource")
	out := f.choice("outcome", "Outcome", options("applied", "dry run", "failed"))
	if f.err != nil {
		return nil, f.err
	}
	var rows []model.Remediation
	for _, rm := range v.Remediations {
		if (out == "" || outcome(rm) == out) && contains(rm.CheckID+" "+rm.Resource, search) {
			rows = append(rows, rm)
		}
	}
	page, lp, err := listing[model.Remediation]{columns: remediationColumns, sorts: remediationSorts, def: "at", defDesc: true,
		tie: func(a, b model.Remediation) int {
			return cmp.Or(cmp.Compare(a.ResultID, b.ResultID), a.At.Compare(b.At))
		}}.page(r.q, rows, f.fields)
	if err != nil {
		return nil, err
	}
	return &rendered{template: "remediations", data: &remediationsPage{base: c.base(r, "posture", "Remediation"), List: lp, Rows: page}}, nil
}
