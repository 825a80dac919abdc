package console_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/palisade-sec/palisade/functions/console"
	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/gatestore"
	"github.com/palisade-sec/palisade/shared/model"
)

// TestAdmissionsPage: the gated-deployment decisions the agents sent are
// listed newest first, filtered by decision and text, with the rules and
// CVEs that fired, and an attacker-chosen name shown as text.
func TestAdmissionsPage(t *testing.T) {
	st := newStore(t)
	denied := model.Admission{Cluster: "aks-prod", Time: now.Add(-time.Hour), UID: "u1", Operation: "CREATE", ObjectKind: "Deployment",
		Namespace: "shop", Name: `web"><img src=x onerror=alert(1)>`, Allowed: false, Message: "denied by rule deny-critical: CVE-2024-0001",
		Violations: []model.AdmissionViolation{{Rule: "deny-critical", Mode: "deny", Container: "app", Image: "acr.io/shop/web:1", CVEs: []string{"CVE-2024-0001"}}}}
	audited := model.Admission{Cluster: "aks-prod", Time: now.Add(-time.Minute), UID: "u2", Operation: "CREATE", ObjectKind: "Pod",
		Namespace: "batch", Name: "report", Allowed: true, Warnings: []string{"audit-high: CVE-2024-0002"},
		Violations: []model.AdmissionViolation{{Rule: "audit-high", Mode: "audit", Container: "job", Image: "acr.io/batch/report:7", CVEs: []string{"CVE-2024-0002"}}}}
	for _, a := range []model.Admission{denied, audited, denied} { // the first, received again
		if err := gatestore.RecordAdmission(t.Context(), st, a); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, newConsole(t, st, console.Options{}))
	rows := func(path string) []string {
		t.Helper()
		rec := c.get(path)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		p := parse(t, rec)
		var out []string
		p.each(func(n *html.Node) {
			if n.Data == "img" && strings.Contains(fmt.Sprint(n.Attr), "onerror") {
				t.Errorf("%s: the planted <img> became an element", path)
			}
			if n.Data == "tr" && n.Parent != nil && n.Parent.Data == "tbody" && n.Parent.Parent != nil {
				if id, _ := attr(n.Parent.Parent, "id"); id != "decisions" {
					return // the rules in force
				}
				out = append(out, text(n))
			}
		})
		return out
	}
	all := rows("/api/console/admissions")
	if len(all) != 2 || !strings.Contains(all[0], "batch/report") || !strings.Contains(all[0], "audited") ||
		!strings.Contains(all[1], "denied") || !strings.Contains(all[1], "CVE-2024-0001") || !strings.Contains(all[1], `onerror=alert(1)>`) {
		t.Errorf("admissions, newest first:\n%s", strings.Join(all, "\n"))
	}
	if got := rows("/api/console/admissions?decision=denied"); len(got) != 1 || !strings.Contains(got[0], "deny-critical") {
		t.Errorf("denied only: %q", got)
	}
	if got := rows("/api/console/admissions?q=CVE-2024-0002"); len(got) != 1 || !strings.Contains(got[0], "audit-high") {
		t.Errorf("search for a CVE: %q", got)
	}
	if rec := c.get("/api/console/admissions?decision=maybe"); rec.Code != http.StatusBadRequest {
		t.Errorf("unknown decision: %d", rec.Code)
	}
	if body := c.get("/api/console/admissions").Body.String(); !strings.Contains(body, "default-high-critical") {
		t.Error("without rules the page does not show the default rule")
	}

	// The rules in force, with their exemptions.
	rules, err := gate.Parse([]byte(`
rules:
  - {name: deny-kev, mode: deny, scope: {namespaces: [shop]}, conditions: {knownExploited: true}}
exemptions:
  - {namespace: legacy, reason: "rebuild under way, SHOP-123", expires: "2027-01-31T00:00:00Z"}
`))
	if err != nil {
		t.Fatal(err)
	}
	body := newClient(t, newConsole(t, st, console.Options{GateRules: rules})).get("/api/console/admissions").Body.String()
	for _, want := range []string{"deny-kev", "shop", "knownExploited", "rebuild under way, SHOP-123", "legacy"} {
		if !strings.Contains(body, want) {
			t.Errorf("the rules in force lack %q", want)
		}
	}
	if strings.Contains(body, "default-high-critical") {
		t.Error("the default rule is shown beside a rules file")
	}
}
