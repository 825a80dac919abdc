package main

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-sec/palisade/functions/api"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/gatestore"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

var (
	vulnDigest  = fmt.Sprintf("sha256:%064x", 0xbad)
	cleanDigest = fmt.Sprintf("sha256:%064x", 0xc1ea)
	otherDigest = fmt.Sprintf("sha256:%064x", 0x0e)
)

// gateEnv is the pipeline with scan results in the store, the real API
// serving them, and the namespaces of the gate's tests.
type gateEnv struct {
	*pipeline
	api                         *httptest.Server
	home, denyNS, auditNS, exNS string
	rules                       string
	now                         atomic.Int64 // the agents' clock, Unix nanoseconds
}

const gateKey = "gate-function-key"

func newGateEnv(t *testing.T, exemptUntil time.Time) *gateEnv {
	t.Helper()
	p := newPipeline(t)
	ctx := t.Context()
	e := &gateEnv{pipeline: p, home: p.s.Namespace(t, nil),
		denyNS: p.s.Namespace(t, map[string]string{"gate": "deny"}), auditNS: p.s.Namespace(t, map[string]string{"gate": "audit"}),
		exNS: p.s.Namespace(t, map[string]string{"gate": "deny"})}
	pushed := time.Now().Add(-24 * time.Hour).UTC()
	for _, sc := range []vulnstore.Scan{
		{Image: model.Image{Digest: vulnDigest, Registry: "myacr.azurecr.io", Repository: "shop/web", Status: model.ImageActive, PushedAt: pushed},
			Findings: []model.Finding{finding(vulnDigest, "CVE-2099-0001", model.SeverityCritical, "1.2.4"), finding(vulnDigest, "CVE-2099-0002", model.SeverityHigh, "")}},
		{Image: model.Image{Digest: cleanDigest, Registry: "myacr.azurecr.io", Repository: "shop/api", Status: model.ImageActive, PushedAt: pushed}},
	} {
		sc.SeenAt = pushed
		if _, err := vulnstore.Record(ctx, p.st, sc); err != nil {
			t.Fatal(err)
		}
	}
	e.api = httptest.NewServer(api.New(p.st, api.Options{Key: gateKey}))
	t.Cleanup(e.api.Close)
	e.now.Store(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	e.rules = filepath.Join(t.TempDir(), "rules.yaml")
	rules := fmt.Sprintf(`
rules:
- name: deny-critical
  mode: deny
  scope: {namespaceSelector: gate=deny}
  conditions: {minSeverity: critical}
- name: audit-high
  mode: audit
  scope: {namespaceSelector: gate=audit}
  conditions: {minSeverity: high}
exemptions:
- namespace: %s
  reason: base image rebuild under way
  expires: %s
`, e.exNS, exemptUntil.UTC().Format(time.RFC3339))
	if err := os.WriteFile(e.rules, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), "palisade-gate-"+e.home, metav1.DeleteOptions{})
	})
	return e
}

func finding(digest, id string, sev model.Severity, fixed string) model.Finding {
	return model.Finding{ID: model.FindingID(digest, id, "openssl", "", "1.2.3"), Digest: digest, VulnID: id, PkgName: "openssl",
		InstalledVersion: "1.2.3", FixedVersion: fixed, Severity: sev, SeverityRank: sev.Rank()}
}

// startAgent runs an agent serving the gate on a port of its own, with the
// API at apiURL.
func (e *gateEnv) startAgent(name, apiURL string, failClosed bool) (stop func()) {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := e.config(name, e.home)
	cfg.APIURL, cfg.APIKey = apiURL, gateKey
	cfg.Gate = GateConfig{Addr: addr, RulesFile: e.rules, Refresh: time.Minute, MissTimeout: time.Second, FailClosed: failClosed,
		URL: "https://" + addr + "/validate", ConfigName: "palisade-gate-" + e.home, Secret: "palisade-gate-tls",
		NamespaceSelector: "gate", RegistryLookup: false, Now: func() time.Time { return time.Unix(0, e.now.Load()) }}
	return e.start(cfg)
}

// warnings records the API server's warnings to one client.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

func (e *gateEnv) client() (kubernetes.Interface, *warnings) {
	w := &warnings{}
	cfg := e.s.Config()
	cfg.WarningHandler = w
	return kubernetes.NewForConfigOrDie(cfg), w
}

func gatePod(name, image string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}
}

// untilDenied creates the pod again and again until the webhook (picked
// up by the API server through an informer) denies it, and returns the
// denial.
func (e *gateEnv) untilDenied(ns string, pod *corev1.Pod) error {
	e.t.Helper()
	var denial error
	pods := e.kc.CoreV1().Pods(ns)
	err := wait.PollUntilContextTimeout(e.t.Context(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, denial = pods.Create(ctx, pod, metav1.CreateOptions{})
		if denial == nil {
			return false, pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		}
		return true, nil
	})
	if err != nil {
		e.t.Fatalf("pod %s/%s never denied: %v", ns, pod.Name, err)
	}
	return denial
}

func mustDenyNaming(t *testing.T, err error, want ...string) {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Fatalf("err = %v, want Forbidden", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("denial %q does not say %q", err, w)
		}
	}
}

func hasWarning(ws []string, sub ...string) bool {
	return slices.ContainsFunc(ws, func(w string) bool {
		for _, s := range sub {
			if !strings.Contains(w, s) {
				return false
			}
		}
		return true
	})
}

// TestGateAgainstTheAPIServer: the agent's webhook, registered by the agent
// itself with its own CA, decides through the real API server from scan
// results served by the real API: deny, audit, exemption and its expiry,
// workload templates, tags resolved from running pods, updates that keep
// the images, and kube-system untouched.
func TestGateAgainstTheAPIServer(t *testing.T) {
	exemptUntil := time.Date(2026, 6, 1, 13, 0, 0, 0, time.UTC) // an hour after the agents' clock starts
	e := newGateEnv(t, exemptUntil)
	ctx := t.Context()
	e.startAgent("agent-gate", e.api.URL, false)
	vuln := "myacr.azurecr.io/shop/web@" + vulnDigest
	clean := "myacr.azurecr.io/shop/api@" + cleanDigest

	// Deny mode: refused, naming the rule and the critical CVE only.
	err := e.untilDenied(e.denyNS, gatePod("vulnerable", vuln))
	mustDenyNaming(t, err, `rule "deny-critical"`, "CVE-2099-0001", "worst CRITICAL")
	if strings.Contains(err.Error(), "CVE-2099-0002") {
		t.Errorf("denial names the high CVE below the rule's severity: %v", err)
	}

	kc, ws := e.client()
	if _, err := kc.CoreV1().Pods(e.denyNS).Create(ctx, gatePod("clean", clean), metav1.CreateOptions{}); err != nil {
		t.Fatalf("clean image: %v", err)
	}

	// Audit mode: allowed, with a warning naming the rule and the CVEs.
	ws.take()
	if _, err := kc.CoreV1().Pods(e.auditNS).Create(ctx, gatePod("audited", vuln), metav1.CreateOptions{}); err != nil {
		t.Fatalf("audit mode refused: %v", err)
	}
	if w := ws.take(); !hasWarning(w, "palisade audit", `rule "audit-high"`, "CVE-2099-0001", "CVE-2099-0002") {
		t.Errorf("audit warnings = %q", w)
	}

	// A Deployment, a Job and a CronJob whose templates are denied.
	labels := map[string]string{"app": "web"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: gatePod("x", vuln).Spec}
	_, err = kc.AppsV1().Deployments(e.denyNS).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}}, metav1.CreateOptions{})
	mustDenyNaming(t, err, `rule "deny-critical"`, "CVE-2099-0001")
	jobTmpl := tmpl
	jobTmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	_, err = kc.BatchV1().CronJobs(e.denyNS).Create(ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTmpl}}}}, metav1.CreateOptions{})
	mustDenyNaming(t, err, "CVE-2099-0001")

	// A clean Deployment may be scaled, but not moved to the vulnerable
	// image.
	cleanTmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: gatePod("x", clean).Spec}
	d, err := kc.AppsV1().Deployments(e.denyNS).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: cleanTmpl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = vuln
	_, err = kc.AppsV1().Deployments(e.denyNS).Update(ctx, d, metav1.UpdateOptions{})
	mustDenyNaming(t, err, "CVE-2099-0001")

	// A tag is judged by the digest the running pods report, never by its
	// name: web:1 runs the vulnerable digest elsewhere.
	tagged := "myacr.azurecr.io/shop/web:gate-1"
	p, err := kc.CoreV1().Pods(e.home).Create(ctx, gatePod("running", tagged), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: tagged, Ready: true, ImageID: "myacr.azurecr.io/shop/web@" + vulnDigest}}
	if _, err := kc.CoreV1().Pods(e.home).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	mustDenyNaming(t, e.untilDenied(e.denyNS, gatePod("tagged", tagged)), "CVE-2099-0001", tagged)
	// A tag nobody runs (and no registry lookup): unknown, allowed with a
	// warning as the gate fails open.
	ws.take()
	if _, err := kc.CoreV1().Pods(e.denyNS).Create(ctx, gatePod("unknown-tag", "myacr.azurecr.io/shop/web:gate-2"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("unknown tag, fail-open: %v", err)
	}
	if w := ws.take(); !hasWarning(w, "scan results unknown", "fails open") {
		t.Errorf("warnings = %q", w)
	}

	// kube-system is never reviewed.
	sys := gatePod("gate-untouched-"+e.home, vuln)
	if _, err := kc.CoreV1().Pods("kube-system").Create(ctx, sys, metav1.CreateOptions{}); err != nil {
		t.Fatalf("kube-system: %v", err)
	}
	_ = kc.CoreV1().Pods("kube-system").Delete(context.Background(), sys.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})

	// The exemption holds until it expires, then the pod is denied again.
	if _, err := kc.CoreV1().Pods(e.exNS).Create(ctx, gatePod("exempted", vuln), metav1.CreateOptions{}); err != nil {
		t.Fatalf("under the exemption: %v", err)
	}
	e.now.Store(exemptUntil.Add(time.Second).UnixNano())
	_, err = kc.CoreV1().Pods(e.exNS).Create(ctx, gatePod("expired", vuln), metav1.CreateOptions{})
	mustDenyNaming(t, err, "CVE-2099-0001")

	// The decisions reach ingestinventory over the inventory hub: stored
	// (GET /api/admissions), each denial raising a Low alert.
	var denied, audited []model.Admission
	err = wait.PollUntilContextTimeout(ctx, 300*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		e.pump()
		d, err := gatestore.ListAdmissions(ctx, e.st, gatestore.AdmissionFilter{Cluster: cluster, Namespace: e.denyNS, Allowed: "false"}, store.Cursor{Limit: 1000})
		if err != nil {
			return false, err
		}
		a, err := gatestore.ListAdmissions(ctx, e.st, gatestore.AdmissionFilter{Cluster: cluster, Namespace: e.auditNS, Allowed: "true"}, store.Cursor{Limit: 1000})
		denied, audited = d.Items, a.Items
		return err == nil && len(audited) > 0 && slices.ContainsFunc(denied, func(a model.Admission) bool { return a.ObjectKind == "CronJob" }), err
	})
	if err != nil {
		t.Fatalf("decisions stored: %d denied, %d audited: %v", len(denied), len(audited), err)
	}
	if v := audited[0].Violations; len(v) != 1 || v[0].Rule != "audit-high" || len(v[0].CVEs) != 2 {
		t.Errorf("audit record %+v", audited[0])
	}
	alerts, err := detection.ListAlerts(ctx, e.st, detection.AlertFilter{Cluster: cluster, Type: "GatedDeploymentDenied"}, store.Cursor{Limit: 1000})
	if err != nil || !slices.ContainsFunc(alerts.Items, func(a model.Alert) bool {
		return a.Namespace == e.denyNS && a.Severity == model.SeverityLow && strings.Contains(a.Evidence["cves"], "CVE-2099-0001")
	}) {
		t.Errorf("no Low alert for the denials: %+v %v", alerts.Items, err)
	}

	// The configuration the agent keeps.
	vwc, err := e.kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "palisade-gate-"+e.home, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := vwc.Webhooks[0]
	if *h.FailurePolicy != "Ignore" || *h.TimeoutSeconds != 3 || len(h.ClientConfig.CABundle) == 0 || *h.SideEffects != "None" ||
		!strings.Contains(h.NamespaceSelector.String(), "kube-system") || len(h.Rules) != 7 {
		t.Errorf("webhook configuration %+v", h)
	}
}

// TestGateWhenTheAPIIsUnreachable: an image not cached while the Palisade
// API cannot be reached is allowed with a warning (fail-open, the default)
// or denied (PALISADE_GATE_FAIL_CLOSED).
func TestGateWhenTheAPIIsUnreachable(t *testing.T) {
	e := newGateEnv(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx := t.Context()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	vuln := "myacr.azurecr.io/shop/web@" + otherDigest

	stop := e.startAgent("agent-open", down, false)
	// Wait for the agent's webhook with an image it knows is not scanned:
	// the API is down, so that is a tag it cannot resolve... instead, an
	// unresolvable tag under fail-closed would deny; fail-open allows. Use
	// the warning as the sign the webhook answers.
	kc, ws := e.client()
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		name := fmt.Sprintf("open-%d", time.Now().UnixNano())
		if _, err := kc.CoreV1().Pods(e.denyNS).Create(ctx, gatePod(name, vuln), metav1.CreateOptions{}); err != nil {
			return false, fmt.Errorf("fail-open denied: %w", err)
		}
		return hasWarning(ws.take(), "scan results unknown", "fails open"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stop()

	e.startAgent("agent-closed", down, true)
	mustDenyNaming(t, e.untilDenied(e.denyNS, gatePod("closed", vuln)), "scan results unknown", "fails closed")
	vwc, err := e.kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "palisade-gate-"+e.home, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *vwc.Webhooks[0].FailurePolicy != "Fail" {
		t.Errorf("fail-closed: failurePolicy %s", *vwc.Webhooks[0].FailurePolicy)
	}
}
