package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store/embedded"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// TestGateCommand: the manifests' workloads get the webhook's decisions
// from the stored results: a tag resolved through the store, deny and
// audit, kube-system exempt, unknown images allowed unless --fail-closed;
// exit codes follow.
func TestGateCommand(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "palisade.db")
	st, err := embedded.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	vuln := fmt.Sprintf("sha256:%064x", 0xbad)
	clean := fmt.Sprintf("sha256:%064x", 0xc1ea)
	for _, sc := range []vulnstore.Scan{
		{Image: model.Image{Digest: vuln, Registry: "myacr.azurecr.io", Repository: "shop/web", Tags: []string{"1.4"}, Status: model.ImageActive, PushedAt: at, PushedUnix: at.Unix()},
			Findings: []model.Finding{{ID: "f1", Digest: vuln, VulnID: "CVE-2099-0001", PkgName: "openssl", InstalledVersion: "1", FixedVersion: "2", Severity: model.SeverityCritical}}},
		{Image: model.Image{Digest: clean, Registry: "myacr.azurecr.io", Repository: "shop/api", Status: model.ImageActive, PushedAt: at, PushedUnix: at.Unix()}},
	} {
		sc.SeenAt = at
		if _, err := vulnstore.Record(t.Context(), st, sc); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	m := filepath.Join(dir, "manifests")
	os.Mkdir(m, 0o755)
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(m, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {env: prod}}\n")
	write("web.yaml", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "myacr.azurecr.io/shop/web:1.4"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop}
spec: {containers: [{name: api, image: "myacr.azurecr.io/shop/api@`+clean+`"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: sys, namespace: kube-system}
spec: {containers: [{name: c, image: "myacr.azurecr.io/shop/web@`+vuln+`"}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: new, namespace: dev}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: "myacr.azurecr.io/shop/new:1"}]}}}
`)
	rules := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rules, []byte("rules:\n- {name: deny-critical, mode: deny, scope: {namespaceSelector: env=prod}, conditions: {minSeverity: critical}}\n"), 0o600)
	env := func(k string) string {
		return map[string]string{"PALISADE_STORE_PATH": dbPath, "PALISADE_GATE_RULES": rules}[k]
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := gateRun(t.Context(), args, env, func() time.Time { return at }, &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, stderr := run("--manifests", m, "--format", "json")
	if code != ExitPolicy {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	var res []gateResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res {
		v := "allow"
		switch {
		case r.Decision.Exempt != "":
			v = "exempt"
		case !r.Decision.Allowed:
			v = "deny"
		case len(r.Decision.Unknown) > 0:
			v = "unknown"
		}
		got[r.Kind+"/"+r.Name] = v
	}
	want := map[string]string{"Deployment/web": "deny", "Pod/api": "allow", "Pod/sys": "exempt", "Job/new": "unknown"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s (all: %v)", k, got[k], v, got)
		}
	}
	if code, out, _ := run("--manifests", m); code != ExitPolicy || !strings.Contains(out, `rule "deny-critical"`) || !strings.Contains(out, "CVE-2099-0001") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
	// Only the unknown image left: allowed, unless failing closed.
	os.Remove(filepath.Join(m, "ns.yaml"))
	if code, out, _ := run("--manifests", m); code != ExitOK {
		t.Errorf("fail-open: exit %d\n%s", code, out)
	}
	if code, out, _ := run("--manifests", m, "--fail-closed"); code != ExitPolicy || !strings.Contains(out, "unknown") {
		t.Errorf("fail-closed: exit %d\n%s", code, out)
	}
	if code, _, _ := run(); code != ExitUsage {
		t.Errorf("no --manifests: exit %d", code)
	}
	if code, _, _ := run("--manifests", m, "--rules", filepath.Join(dir, "nope.yaml")); code != ExitUsage {
		t.Errorf("missing rules file: exit %d", code)
	}
	if code, out, _ := run("--help"); code != ExitOK || !strings.Contains(out, "usage: palisade gate") {
		t.Errorf("--help: %d %s", code, out)
	}
}
