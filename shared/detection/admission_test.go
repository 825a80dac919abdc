package detection_test

import (
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
)

// TestAdmissionHit: only a real denial raises a hit, with the deny rules'
// CVEs and images as evidence and no digest (no enrichment).
func TestAdmissionHit(t *testing.T) {
	deny := model.Admission{ID: "a", Cluster: "aks", Time: time.Unix(1e9, 0), ObjectKind: "Deployment", Namespace: "shop", Name: "web", User: "dev",
		Violations: []model.AdmissionViolation{
			{Rule: "audit-high", Mode: "audit", Image: "acr.io/web:1", CVEs: []string{"CVE-3"}},
			{Rule: "deny-critical", Mode: "deny", Container: "app", Image: "acr.io/web:1", Digest: "sha256:x", CVEs: []string{"CVE-2", "CVE-1"}},
		}}
	h, ok := detection.AdmissionHit(deny)
	if !ok || h.Type != "GatedDeploymentDenied" || h.Entity != "shop/Deployment/web" || h.Rule != "deny-critical" || h.ImageDigest != "" ||
		h.Evidence["cves"] != "CVE-1,CVE-2" || h.Evidence["digests"] != "sha256:x" || h.User != "dev" {
		t.Errorf("hit %+v", h)
	}
	allowed := deny
	allowed.Allowed = true
	dry := deny
	dry.DryRun = true
	for _, a := range []model.Admission{allowed, dry} {
		if _, ok := detection.AdmissionHit(a); ok {
			t.Errorf("hit for %+v", a)
		}
	}
}
