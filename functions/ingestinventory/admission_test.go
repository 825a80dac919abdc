package ingestinventory

import (
	"time"

	"testing"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/gatestore"
	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// TestAdmissions: decisions are stored once under redelivery, for the
// sending cluster only; a denial raises one Low GatedDeploymentDenied
// alert, an audit none.
func TestAdmissions(t *testing.T) {
	st := testenv.Store(t)
	f := New(st, Options{Now: func() time.Time { return t0 }})
	deny := model.Admission{UID: "u-deny", Cluster: "another-cluster", Time: t0, Operation: "CREATE", ObjectKind: "Deployment", Namespace: "shop", Name: "web",
		User: "dev@contoso.com", Message: `palisade gate denied: rule "deny-critical": CVE-2099-1`,
		Violations: []model.AdmissionViolation{{Rule: "deny-critical", Mode: "deny", Container: "app", Image: "acr.io/web:1", CVEs: []string{"CVE-2099-1"}}}}
	audit := model.Admission{UID: "u-audit", Time: t0, Operation: "CREATE", ObjectKind: "Pod", Namespace: "shop", Name: "api", Allowed: true,
		Violations: []model.AdmissionViolation{{Rule: "audit-high", Mode: "audit", Container: "app", Image: "acr.io/api:1", CVEs: []string{"CVE-2099-2"}}}}
	msg, err := inventory.Encode(inventory.Envelope{Kind: inventory.KindAdmission, ID: "adm-1", Cluster: cluster, Time: t0, Admissions: []model.Admission{deny, audit}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // redelivered
		if sum := invoke(t, f, msg.Body); sum.Outcomes[inventory.KindAdmission] != 2 || sum.Parked != 0 {
			t.Fatalf("summary %+v", sum)
		}
	}
	all, err := gatestore.ListAdmissions(t.Context(), st, gatestore.AdmissionFilter{Cluster: cluster}, store.Cursor{})
	if err != nil || len(all.Items) != 2 {
		t.Fatalf("stored %+v, %v", all.Items, err)
	}
	denied, _ := gatestore.ListAdmissions(t.Context(), st, gatestore.AdmissionFilter{Allowed: "false", Namespace: "shop"}, store.Cursor{})
	if len(denied.Items) != 1 || denied.Items[0].UID != "u-deny" || denied.Items[0].Cluster != cluster {
		t.Fatalf("denied %+v", denied.Items)
	}
	alerts, err := detection.ListAlerts(t.Context(), st, detection.AlertFilter{Cluster: cluster}, store.Cursor{})
	if err != nil || len(alerts.Items) != 1 {
		t.Fatalf("alerts %+v, %v", alerts.Items, err)
	}
	a := alerts.Items[0]
	if a.Type != "GatedDeploymentDenied" || a.Severity != model.SeverityLow || a.Count != 1 || a.User != "dev@contoso.com" ||
		a.Evidence["cves"] != "CVE-2099-1" || a.Workload != "web" {
		t.Errorf("alert %+v", a)
	}
}
