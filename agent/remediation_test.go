package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-sec/palisade/functions/api"
	"github.com/palisade-sec/palisade/functions/assessposture"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/snapshots"
	"github.com/palisade-sec/palisade/shared/store"
)

// TestAgentRemediates: a privileged DaemonSet, assessed from the agent's
// snapshot; the agent fetches the opted-in patch from the real API (with
// the key), refuses a patch that is not hardening, runs the dry run
// through the real server-side apply, then applies; its reports are
// stored, and the next assessment passes.
func TestAgentRemediates(t *testing.T) {
	p := newPipeline(t)
	ctx := t.Context()
	ns := p.s.Namespace(t, nil)
	priv := true
	labels := map[string]string{"app": "node-agent"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "node-agent"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "myacr.azurecr.io/node-agent:1",
					SecurityContext: &corev1.SecurityContext{Privileged: &priv}}}}}}}
	if _, err := p.kc.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The API the agent asks, switched between modes by the test.
	const key = "agent-function-key"
	var handler atomic.Pointer[http.Handler]
	setAPI := func(h http.Handler) { handler.Store(&h) }
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }))
	defer ts.Close()
	apiFor := func(apply bool) http.Handler {
		return api.New(p.st, api.Options{Key: key, Remediate: []string{"privileged-containers"}, RemediateApply: apply})
	}
	setAPI(apiFor(false))

	cfg := p.config("agent-r", ns)
	cfg.Remediation, cfg.APIURL, cfg.APIKey, cfg.RemediationInterval = true, ts.URL, key, 300*time.Millisecond
	p.start(cfg)
	p.matchesServer("the first snapshot")

	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	assess := func() {
		t.Helper()
		at = at.Add(time.Hour)
		now := at
		fn := assessposture.New(p.st, &posture.Discovery{}, snapshots.New(p.st, snapshots.Options{Now: func() time.Time { return now }}),
			assessposture.Options{Engine: posture.Options{VulnSeverity: model.SeverityHigh}, AgentStaleAfter: 1000 * time.Hour, Now: func() time.Time { return now }})
		req, _ := customhandler.DecodeRequest([]byte(`{"Data":{"timer":{"IsPastDue":false}},"Metadata":{}}`))
		if _, err := fn.Handle(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	result := func() model.PostureResult {
		t.Helper()
		id := model.HashID(cluster, "privileged-containers", "DaemonSet/"+ns+"/node-agent")
		var r model.PostureResult
		if _, err := p.st.Get(ctx, store.Posture, cluster, id, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	records := func(want func(model.Remediation) bool) model.Remediation {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			p.pump()
			var found []model.Remediation
			store.Each(ctx, p.st, store.State, store.Query{PartitionKey: model.KindRemediation}, func(s model.State) error {
				var r model.Remediation
				if err := json.Unmarshal(s.Data, &r); err == nil && want(r) {
					found = append(found, r)
				}
				return nil
			})
			if len(found) > 0 {
				return found[0]
			}
			if time.Now().After(deadline) {
				t.Fatal("timed out waiting for a remediation report")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	privileged := func() bool {
		got, err := p.kc.AppsV1().DaemonSets(ns).Get(ctx, "node-agent", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return *got.Spec.Template.Spec.Containers[0].SecurityContext.Privileged
	}

	// Dry run only.
	assess()
	if r := result(); r.Status != model.PostureFail || r.Patch == "" {
		t.Fatalf("result %+v", r)
	}
	dry := records(func(r model.Remediation) bool { return strings.HasSuffix(r.Resource, ns+"/node-agent") })
	if !dry.DryRun || dry.Applied || dry.Error != "" || dry.Cluster != cluster {
		t.Errorf("dry run report %+v", dry)
	}
	if !privileged() {
		t.Error("a dry run changed the DaemonSet")
	}

	// An answer that is not hardening is refused, whoever sent it.
	hostile := fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"node-agent","namespace":%q},"spec":{"template":{"spec":{"containers":[{"name":"agent","image":"evil.example/miner:1"}]}}}}`, ns)
	setAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-functions-key") != key {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		customhandler.WriteJSON(w, http.StatusOK, store.List[model.RemediationInstruction]{Items: []model.RemediationInstruction{{
			ResultID: "hostile", Cluster: cluster, CheckID: "privileged-containers", Resource: "DaemonSet/" + ns + "/node-agent",
			Patch: hostile, Apply: true, EvaluatedAt: at}}})
	}))
	refused := records(func(r model.Remediation) bool { return r.ResultID == "hostile" })
	if refused.Applied || !strings.Contains(refused.Error, "refused by the agent: patch sets containers[].image") {
		t.Errorf("hostile report %+v", refused)
	}

	// Apply, for a new assessment.
	setAPI(apiFor(true))
	assess()
	applied := records(func(r model.Remediation) bool { return r.Applied })
	if applied.Error != "" || applied.DryRun {
		t.Errorf("apply report %+v", applied)
	}
	got, _ := p.kc.AppsV1().DaemonSets(ns).Get(ctx, "node-agent", metav1.GetOptions{})
	managers := []string{}
	for _, mf := range got.ManagedFields {
		managers = append(managers, mf.Manager)
	}
	if privileged() || got.Spec.Template.Spec.Containers[0].Image != "myacr.azurecr.io/node-agent:1" || !slices.Contains(managers, posture.FieldManager) {
		t.Errorf("after apply: privileged %v, image %s, managers %v", privileged(), got.Spec.Template.Spec.Containers[0].Image, managers)
	}
	// The change comes back in the inventory; the next assessment passes.
	p.matchesServer("the remediated DaemonSet")
	assess()
	if r := result(); r.Status != model.PosturePass {
		t.Errorf("after remediation: %+v", r)
	}
}
