package console

import (
	"cmp"
	"encoding/json"
	"strings"

	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/model"
)

// maxAdmissions bounds the decisions the console keeps: the newest.
const maxAdmissions = 10_000

type admissionsPage struct {
	base
	List       listPage
	Rows       []model.Admission
	Rules      []ruleRow
	Exemptions []gate.Exemption
}

// ruleRow is a gated-deployment rule as the page shows it.
type ruleRow struct {
	Name, Mode, Scope, Conditions string
}

// ruleRows describes the rules in force, their scope and conditions as
// their JSON.
func ruleRows(rs gate.Rules) []ruleRow {
	out := make([]ruleRow, 0, len(rs.Rules))
	for _, r := range rs.Rules {
		scope, _ := json.Marshal(r.Scope)
		cond, _ := json.Marshal(r.Conditions)
		row := ruleRow{Name: r.Name, Mode: string(r.Mode), Scope: string(scope), Conditions: string(cond)}
		if row.Scope == "{}" {
			row.Scope = "everywhere"
		}
		out = append(out, row)
	}
	return out
}

var admissionColumns = []column{
	{Label: "When", Key: "time", Numeric: true}, {Label: "Decision", Key: "decision"}, {Label: "Object", Key: "object"},
	{Label: "Cluster", Key: "cluster"}, {Label: "Rules and CVEs"}, {Label: "Message"},
}

// decision names what the webhook did.
func decision(a model.Admission) string {
	if a.Allowed {
		return "audited"
	}
	return "denied"
}

// admissionText is what the search looks in.
func admissionText(a model.Admission) string {
	parts := []string{a.ObjectKind, a.Namespace, a.Name, a.User, a.Message}
	for _, v := range a.Violations {
		parts = append(parts, v.Rule, v.Image)
		parts = append(parts, v.CVEs...)
	}
	return strings.Join(append(parts, a.Unknown...), " ")
}

var admissionSorts = map[string]sorter[model.Admission]{
	"time":     func(a, b model.Admission) int { return a.Time.Compare(b.Time) },
	"decision": func(a, b model.Admission) int { return cmp.Compare(decision(a), decision(b)) },
	"object": func(a, b model.Admission) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.ObjectKind, b.ObjectKind), cmp.Compare(a.Name, b.Name))
	},
	"cluster": func(a, b model.Admission) int { return cmp.Compare(a.Cluster, b.Cluster) },
}

// admissions lists the gated-deployment decisions (admission monitoring).
func (c *Console) admissions(r *request) (*rendered, error) {
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	f := &form{q: r.q}
	search := f.text("q", "Search", "namespace, name, image, rule or CVE")
	dec := f.choice("decision", "Decision", options("denied", "audited"))
	if f.err != nil {
		return nil, f.err
	}
	var rows []model.Admission
	for _, a := range v.Admissions {
		if (dec == "" || decision(a) == dec) && contains(admissionText(a), search) {
			rows = append(rows, a)
		}
	}
	page, lp, err := listing[model.Admission]{columns: admissionColumns, sorts: admissionSorts, def: "time", defDesc: true,
		tie: func(a, b model.Admission) int { return cmp.Compare(a.ID, b.ID) }}.page(r.q, rows, f.fields)
	if err != nil {
		return nil, err
	}
	return &rendered{template: "admissions", data: &admissionsPage{base: c.base(r, "admissions", "Admissions"), List: lp, Rows: page,
		Rules: ruleRows(c.opts.GateRules), Exemptions: c.opts.GateRules.Exemptions}}, nil
}
