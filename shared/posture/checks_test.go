package posture

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
)

// assess runs the built-in checks on a snapshot with the test settings and
// the seeded scan results.
func assess(t *testing.T, snap *Snapshot) *Report {
	t.Helper()
	st := newTestStore(t)
	seedVulns(t, st)
	eng := NewEngine(testConfig(t, ""), nil, nil, nil, StoreVulns{Store: st}, clock)
	rep, err := eng.Assess(t.Context(), snap)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func byCheck(rep *Report) map[string][]model.PostureResult {
	m := map[string][]model.PostureResult{}
	for _, r := range rep.Results {
		m[r.CheckID] = append(m[r.CheckID], r)
	}
	return m
}

// TestChecksFailAndPass proves each built-in check passes on the hardened
// objects and cluster and fails on the neglected ones.
func TestChecksFailAndPass(t *testing.T) {
	good, _ := clusterSnapshot(t, "testdata/good", "testdata/arm/cluster-hardened.json", "testdata/arm/diagnostics-audit.json", "testdata/arm/registry-hardened.json")
	bad, _ := clusterSnapshot(t, "testdata/bad", "testdata/arm/cluster-weak.json", "testdata/arm/diagnostics-noaudit.json", "testdata/arm/registry-open.json")
	goodRes, badRes := byCheck(assess(t, good)), byCheck(assess(t, bad))
	for _, c := range Builtin() {
		t.Run(c.ID, func(t *testing.T) {
			if len(goodRes[c.ID]) == 0 {
				t.Fatalf("no result on the hardened snapshot")
			}
			for _, r := range goodRes[c.ID] {
				if r.Status != model.PosturePass {
					t.Errorf("hardened %s: status %s: %s", r.Resource, r.Status, r.Message)
				}
			}
			failed := 0
			for _, r := range badRes[c.ID] {
				if r.Status == model.PostureFail {
					failed++
					if r.Message == "" || r.Remediation == "" {
						t.Errorf("failed %s has no message or remediation: %+v", r.Resource, r)
					}
				}
			}
			if failed == 0 {
				t.Errorf("no failure on the neglected snapshot; results: %+v", badRes[c.ID])
			}
		})
	}
}

// TestCatalogueCoverage counts the catalogue recommendations with an Azure
// Policy reference or a Defender recommendation among the checks.
func TestCatalogueCoverage(t *testing.T) {
	want := []string{"f06ddb64", "95edb821", "1c6e92c9", "df49d893", "c26596ff", "47a1ee2f", "82985f06",
		"098fc59e", "511f5417", "e345eecc", "febd0533", "233a2a17", "1a5b4dca", "423dd1ba", "9f061a12",
		"0e246bcf", "ac4a19c2", "0a15ec92", "d0793b48", "e8eef0a8", "5b9159ae", "5f0f936f"}
	have := map[string]bool{}
	ids := map[string]bool{}
	for _, c := range Builtin() {
		if ids[c.ID] {
			t.Errorf("check id %s used twice", c.ID)
		}
		ids[c.ID] = true
		for _, b := range c.Benchmarks {
			if p, ok := strings.CutPrefix(b, "AzurePolicy "); ok {
				have[p] = true
			}
		}
	}
	for _, p := range want {
		if !have[p] {
			t.Errorf("no check references Azure Policy %s", p)
		}
	}
	// Recommendations without a policy: 6 CAP_SYS_ADMIN, 19 diagnostic
	// logs, 20 Defender profile, 29 running images.
	for _, id := range []string{"sys-admin-capability", "diagnostic-logs", "defender-profile", "running-image-vulnerabilities"} {
		if !ids[id] {
			t.Errorf("no check %s", id)
		}
	}
}

func TestFailureDetails(t *testing.T) {
	bad, _ := clusterSnapshot(t, "testdata/bad", "testdata/arm/cluster-weak.json", "testdata/arm/diagnostics-noaudit.json", "")
	rep := assess(t, bad)
	find := func(check, resource string) model.PostureResult {
		for _, r := range rep.Results {
			if r.CheckID == check && r.Resource == resource {
				return r
			}
		}
		t.Fatalf("no %s result for %s", check, resource)
		return model.PostureResult{}
	}
	tests := []struct {
		check, resource, status, message string
	}{
		{"trusted-registries", "DaemonSet/legacy/node-agent", model.PostureFail, "container agent: image myacr.azurecr.io.evil.example/agent:latest is not from a trusted registry"},
		{"host-path-volumes", "DaemonSet/legacy/node-agent", model.PostureFail, "volume host-etc: hostPath /etc is not an allowed host path; volume logs: hostPath /var/log must be mounted read-only"},
		{"allowed-capabilities", "DaemonSet/legacy/node-agent", model.PostureFail, "container agent: adds capabilities not allowed: SYS_ADMIN, NET_ADMIN"},
		{"default-namespace", "Pod/default/debug", model.PostureFail, "in the default namespace"},
		{"default-service-account", "ServiceAccount/legacy/default", model.PostureFail, "automountServiceAccountToken is not false; bound by RoleBinding deployer"},
		{"service-account-token-automount", "ServiceAccount/legacy/reporter", model.PostureFail, "automountServiceAccountToken: true; mounted by CronJob/legacy/report"},
		{"high-privilege-roles", "ClusterRole/ops-superuser", model.PostureFail, "rule 1 all verbs on all resources"},
		{"cluster-admin-binding", "ClusterRoleBinding/ops-admins", model.PostureFail, "grants cluster-admin to User ops@contoso.com"},
		{"service-allowed-ports", "Service/legacy/ssh", model.PostureFail, "listens on 22/TCP; allowed: 80,443"},
		{"running-image-vulnerabilities", "Image/" + digestVulnerable, model.PostureFail, "docker.io/library/busybox:1.36 has 1 open vulnerabilities of severity high or higher (CVE-2024-58251); running in Pod/default/debug"},
		{"kubernetes-version", bad.Cluster.ID, model.PostureFail, "Kubernetes 1.27.9 is older than 1.30"},
		{"diagnostic-logs", bad.Cluster.ID, model.PostureFail, "no diagnostic setting sends the kube-audit or kube-audit-admin logs"},
	}
	for _, tt := range tests {
		t.Run(tt.check, func(t *testing.T) {
			r := find(tt.check, tt.resource)
			if diff := cmp.Diff([]string{tt.status, tt.message}, []string{r.Status, r.Message}); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if r.ID != model.HashID(bad.Name, tt.check, tt.resource) {
				t.Errorf("id %s is not the deterministic id", r.ID)
			}
		})
	}
}

func TestTrustedRegistry(t *testing.T) {
	env := &Env{registries: []string{"myacr.azurecr.io", "docker.io/library", "localhost:5000"}}
	tests := []struct {
		image string
		want  bool
	}{
		{"myacr.azurecr.io/shop/web:1.0", true},
		{"MyACR.azurecr.io/shop/web@sha256:" + strings.Repeat("a", 64), true},
		{"myacr.azurecr.io.evil.example/shop/web:1.0", false},
		{"evilmyacr.azurecr.io/shop/web:1.0", false},
		{"myacr.azurecr.io:443/shop/web", false},
		{"nginx:1.27", true}, // docker.io/library/nginx
		{"docker.io/library/nginx", true},
		{"docker.io/librarything/nginx", false},
		{"bitnami/nginx", false}, // docker.io/bitnami
		{"localhost:5000/app", true},
		{"localhost/app", false},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			if got := env.trusted(tt.image); got != tt.want {
				t.Errorf("trusted(%q) = %v, want %v", tt.image, got, tt.want)
			}
		})
	}
}

func TestHostPathAllowed(t *testing.T) {
	env := &Env{hostPaths: []allowedPath{{prefix: "/var/log", readOnly: true}, {prefix: "/data"}}}
	tests := []struct {
		path     string
		readOnly bool
		want     string
	}{
		{"/var/log/pods", true, ""},
		{"/var/log", true, ""},
		{"/var/log/pods", false, "must be mounted read-only"},
		{"/var/logs", true, "is not an allowed host path"},
		{"/data/x", false, ""},
		{"/", false, "is not an allowed host path"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := &Workload{Spec: podSpecMounting("v", tt.readOnly)}
			if got := env.hostPathAllowed(w.Spec, "v", tt.path); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestScore(t *testing.T) {
	res := []model.PostureResult{
		{Severity: model.SeverityHigh, Status: model.PosturePass, Benchmarks: []string{"CIS-AKS 4.2.1", "CIS-AKS 4.2.2", "AzurePolicy x"}},
		{Severity: model.SeverityHigh, Status: model.PostureFail, Benchmarks: []string{"CIS-AKS 4.2.1"}},
		{Severity: model.SeverityLow, Status: model.PostureExempt, Benchmarks: []string{"AzurePolicy y"}},
		{Severity: model.SeverityMedium, Status: model.PostureError},
	}
	all, by := Score(res)
	want := model.PostureScore{Score: 57.1, Passed: 1, Failed: 1, Exempt: 1, Errors: 1} // (3+1)/(3+3+1)
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("overall (-want +got)\n%s", diff)
	}
	wantBy := map[string]model.PostureScore{
		"CIS-AKS":     {Score: 50, Passed: 1, Failed: 1},
		"AzurePolicy": {Score: 100, Passed: 1, Exempt: 1},
	}
	if diff := cmp.Diff(wantBy, by); diff != "" {
		t.Errorf("by benchmark (-want +got)\n%s", diff)
	}
	if s, _ := Score(nil); s.Score != 100 {
		t.Errorf("empty score %v, want 100", s.Score)
	}
}
