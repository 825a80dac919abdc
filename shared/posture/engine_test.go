package posture

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/kubeapply"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/runningimages"
	"github.com/palisade-sec/palisade/shared/store"
)

func results(rep *Report, check string) map[string]model.PostureResult {
	m := map[string]model.PostureResult{}
	for _, r := range rep.Results {
		if r.CheckID == check {
			m[r.Resource] = r
		}
	}
	return m
}

func TestRegoPolicies(t *testing.T) {
	snap, _ := clusterSnapshot(t, "testdata/bad", "", "", "")
	good, _ := clusterSnapshot(t, "testdata/good", "", "", "")
	snap.Objects.Deployments = append(snap.Objects.Deployments, good.Objects.Deployments...)
	snap.Name = "offline"
	eng, err := LoadEngine(t.Context(), testConfig(t, "testdata/policies"), nil, clock)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(eng.Policies()); got != 3 {
		t.Fatalf("%d policies loaded, want 3", got)
	}
	rep, err := eng.Assess(t.Context(), snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.PolicyErrors) != 0 {
		t.Fatalf("policy errors: %v", rep.PolicyErrors)
	}
	type res struct{ Status, Message string }
	got := map[string]res{}
	for _, r := range rep.Results {
		if strings.HasPrefix(r.CheckID, "custom/") {
			got[r.CheckID+" "+r.Resource] = res{r.Status, r.Message}
		}
	}
	want := map[string]res{
		"custom/team_label CronJob/legacy/report":       {model.PostureFail, "CronJob report has no team label"},
		"custom/team_label DaemonSet/legacy/node-agent": {model.PostureFail, "DaemonSet node-agent has no team label"},
		"custom/team_label Deployment/shop/web":         {model.PostureFail, "Deployment web has no team label"},
		"custom/no_latest_tag Pod/default/debug":        {model.PosturePass, ""},
		"custom/lb_services Service/legacy/ssh":         {model.PostureFail, "LoadBalancer service without the azure-load-balancer-internal annotation"},
	}
	for k, w := range want {
		if diff := cmp.Diff(w, got[k]); diff != "" {
			t.Errorf("%s (-want +got)\n%s", k, diff)
		}
	}
	// Kinds restrict evaluation: the team policy saw no Service.
	if _, ok := got["custom/no_latest_tag Namespace/legacy"]; ok {
		t.Error("no_latest_tag evaluated a Namespace despite kinds")
	}
	if _, ok := got["custom/team_label Service/legacy/ssh"]; ok {
		t.Error("team_label evaluated a Service despite kinds")
	}
	for _, r := range rep.Results {
		if r.CheckID == "custom/lb_services" && r.Severity != model.SeverityHigh {
			t.Errorf("lb_services severity %s, want HIGH from METADATA", r.Severity)
		}
	}
}

func TestBrokenPolicyReportedOthersRun(t *testing.T) {
	snap, _ := clusterSnapshot(t, "testdata/bad", "", "", "")
	snap.Name = "offline"
	eng, err := LoadEngine(t.Context(), testConfig(t, "testdata/broken-policies"), nil, clock)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := eng.Assess(t.Context(), snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.PolicyErrors) != 1 {
		t.Fatalf("policy errors %v, want one", rep.PolicyErrors)
	}
	pe := rep.PolicyErrors[0]
	if pe.File != filepath.Join("testdata/broken-policies", "broken.rego") || pe.Line != 5 {
		t.Errorf("error at %s:%d, want broken.rego:5: %v", pe.File, pe.Line, pe)
	}
	if !strings.Contains(pe.Error(), "broken.rego:5:") {
		t.Errorf("message %q does not name file and line", pe.Error())
	}
	if len(results(rep, "custom/team_label")) == 0 || len(results(rep, "privileged-containers")) == 0 {
		t.Error("the other policy and the built-in checks did not run")
	}
}

func TestExemptions(t *testing.T) {
	ex, err := DecodeExemptions([]byte(`
exemptions:
  - name: agent-needs-privileges
    check: privileged-containers
    namespace: legacy
    reason: node agent reads host metrics; replaced in Q3
    expires: 2025-09-30T00:00:00Z
  - name: ops-debug
    check: default-namespace
    labels: {owner: ops}
    reason: temporary debugging pod
    expires: 2025-05-01T00:00:00Z
`))
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := clusterSnapshot(t, "testdata/bad", "", "", "")
	snap.Name = "offline"
	eng := NewEngine(testConfig(t, ""), nil, nil, ex, nil, clock)
	rep, err := eng.Assess(t.Context(), snap)
	if err != nil {
		t.Fatal(err)
	}
	priv := results(rep, "privileged-containers")["DaemonSet/legacy/node-agent"]
	if priv.Status != model.PostureExempt || priv.ExemptReason != "agent-needs-privileges: node agent reads host metrics; replaced in Q3" ||
		!priv.ExemptUntil.Equal(time.Date(2025, 9, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("privileged result not exempt: %+v", priv)
	}
	debug := results(rep, "default-namespace")["Pod/default/debug"]
	if debug.Status != model.PostureFail || !strings.Contains(debug.Message, "exemption ops-debug (check default-namespace, expired 2025-05-01T00:00:00Z)") {
		t.Errorf("expired exemption applied or not reported: %+v", debug)
	}
	if diff := cmp.Diff([]string{"ops-debug (check default-namespace, expired 2025-05-01T00:00:00Z)"}, rep.ExpiredExemptions); diff != "" {
		t.Errorf("expired exemptions (-want +got)\n%s", diff)
	}
	// Another check on the same resource is not exempt.
	if r := results(rep, "host-namespaces")["DaemonSet/legacy/node-agent"]; r.Status != model.PostureFail {
		t.Errorf("host-namespaces status %s, want fail", r.Status)
	}
}

func TestDecodeExemptionsErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"no reason", `[{name: a, check: root-user, expires: 2030-01-01T00:00:00Z}]`, "exemption 1 (a): no reason"},
		{"no expiry", `[{name: a, check: root-user, reason: r}]`, "exemption 1 (a): no expires date"},
		{"everything", `[{name: a, check: "*", reason: r, expires: 2030-01-01T00:00:00Z}]`, "matches everything"},
		{"unknown field", `[{name: a, chek: root-user}]`, `unknown field "chek"`},
		{"twice", `[{name: a, check: x, reason: r, expires: 2030-01-01T00:00:00Z}, {name: a, check: y, reason: r, expires: 2030-01-01T00:00:00Z}]`, "name used twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeExemptions([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRecorderChangeSinceLastRun(t *testing.T) {
	st := newTestStore(t)
	seedVulns(t, st)
	rc := &Recorder{Store: st}
	cfg := testConfig(t, "")

	bad, _ := clusterSnapshot(t, "testdata/bad", "", "", "")
	bad.Name = "aks-1"
	eng := NewEngine(cfg, nil, nil, nil, StoreVulns{Store: st}, clock)
	rep1, err := eng.Assess(t.Context(), bad)
	if err != nil {
		t.Fatal(err)
	}
	run1, err := rc.Record(t.Context(), rep1)
	if err != nil {
		t.Fatal(err)
	}
	if run1.PreviousScore != nil || run1.NewFailureCount != rep1.Score.Failed || run1.ResolvedCount != 0 {
		t.Errorf("first run: %+v", run1)
	}
	if got := st.count(store.Posture); got != len(rep1.Results) {
		t.Errorf("%d results stored, want %d", got, len(rep1.Results))
	}

	// An hour later the DaemonSet is fixed away and the workloads of the
	// good manifests run instead; the CronJob still fails.
	later := testNow.Add(time.Hour)
	good, _ := clusterSnapshot(t, "testdata/good", "", "", "")
	good.Name = "aks-1"
	good.Objects.CronJobs = bad.Objects.CronJobs
	eng2 := NewEngine(cfg, nil, nil, nil, StoreVulns{Store: st}, func() time.Time { return later })
	rep2, err := eng2.Assess(t.Context(), good)
	if err != nil {
		t.Fatal(err)
	}
	run2, err := rc.Record(t.Context(), rep2)
	if err != nil {
		t.Fatal(err)
	}
	if run2.PreviousScore == nil || *run2.PreviousScore != rep1.Score.Score {
		t.Errorf("previous score %v, want %v", run2.PreviousScore, rep1.Score.Score)
	}
	if run2.ResolvedCount == 0 || run2.Removed == 0 {
		t.Errorf("nothing resolved or removed: %+v", run2)
	}
	if got := st.count(store.Posture); got != len(rep2.Results) {
		t.Errorf("%d results stored after the second run, want %d (stale ones deleted)", got, len(rep2.Results))
	}
	// The CronJob's failure keeps the time it first failed.
	cron := results(rep2, "resource-limits")["CronJob/legacy/report"]
	var stored model.PostureResult
	if _, err := st.Get(t.Context(), store.Posture, "aks-1", cron.ID, &stored); err != nil {
		t.Fatal(err)
	}
	// Unchanged, it was not written again: it says when it last changed,
	// the run record when it was last evaluated.
	if !stored.FirstFailed.Equal(testNow) || !stored.ChangedAt.Equal(testNow) || !stored.EvaluatedAt.Equal(testNow) {
		t.Errorf("first failed %v changed %v evaluated %v, want %v for all", stored.FirstFailed, stored.ChangedAt, stored.EvaluatedAt, testNow)
	}
	var latest model.State
	if _, err := st.Get(t.Context(), store.State, model.KindPostureRun, RunID("aks-1"), &latest); err != nil {
		t.Fatal(err)
	}
	var lr model.PostureRun
	if err := json.Unmarshal(latest.Data, &lr); err != nil || !lr.At.Equal(later) {
		t.Errorf("latest run %+v (%v)", lr, err)
	}
	var imgs model.State
	if _, err := st.Get(t.Context(), store.State, model.KindRunningImages, runningimages.ID("aks-1", 0), &imgs); err != nil {
		t.Fatal(err)
	}
	var ri model.RunningImages
	if err := json.Unmarshal(imgs.Data, &ri); err != nil {
		t.Fatal(err)
	}
	want := []model.RunningImage{{Digest: digestClean, Image: "myacr.azurecr.io/shop/web@" + digestClean,
		Workloads: []string{"Deployment/shop/web"}, LastSeen: later}}
	if diff := cmp.Diff(want, ri.Images); diff != "" {
		t.Errorf("running images (-want +got)\n%s", diff)
	}
	var chunks []model.RunningImages
	if err := EachRunningImages(t.Context(), st, func(r model.RunningImages) error { chunks = append(chunks, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(chunks) != 1 || chunks[0].Cluster != "aks-1" || !cmp.Equal(want, chunks[0].Images) {
		t.Errorf("EachRunningImages: %+v", chunks)
	}
	var history []time.Time
	if err := EachHistory(t.Context(), st, func(r model.PostureRun) error { history = append(history, r.At); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(history) != 2 {
		t.Errorf("EachHistory: runs at %v, want the two runs", history)
	}
}

// TestPatchesPassTheAgentsGuard: every patch a check offers is one the
// agent accepts (kubeapply.Hardening), so agent-managed clusters can be
// remediated exactly like the others.
func TestPatchesPassTheAgentsGuard(t *testing.T) {
	snap, _ := clusterSnapshot(t, "testdata/bad", "", "", "")
	rep, err := NewEngine(testConfig(t, ""), nil, nil, nil, nil, clock).Assess(t.Context(), snap)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]bool{}
	for _, r := range rep.Results {
		if r.Patch == "" {
			continue
		}
		checks[r.CheckID] = true
		if err := kubeapply.Hardening([]byte(r.Patch)); err != nil {
			t.Errorf("%s on %s: %v\n%s", r.CheckID, r.Resource, err, r.Patch)
		}
	}
	if len(checks) < 8 {
		t.Errorf("patches of only %d checks seen: %v", len(checks), checks)
	}
}
