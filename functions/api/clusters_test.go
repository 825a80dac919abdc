package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/kubeapply"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/runningimages"
	"github.com/palisade-sec/palisade/shared/snapshots"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// TestAgentEndpoints: /api/clusters shows each agent and whether it went
// silent, /api/running-images a cluster's images, and /api/remediations
// the opted-in patches of its failures, all of which the agent accepts.
func TestAgentEndpoints(t *testing.T) {
	st := testenv.Store(t)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	snaps := snapshots.New(st, snapshots.Options{Now: clock})
	for _, c := range []struct {
		name string
		at   time.Time
	}{{"aks-a", now.Add(-time.Minute)}, {"aks-b", now.Add(-time.Hour)}} {
		m, err := inventory.Encode(inventory.Envelope{Kind: inventory.KindHeartbeat, ID: c.name, Cluster: c.name, Time: c.at}, 0)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := inventory.Decode(m.Body)
		if _, err := snaps.Take(t.Context(), e, m.Body); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := posture.LoadManifestDir(filepath.Join("..", "..", "shared", "posture", "testdata", "bad"), posture.ManifestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := posture.NewEngine(posture.Options{}, nil, nil, nil, nil, clock).Assess(t.Context(), &posture.Snapshot{Name: "aks-a", Objects: objs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&posture.Recorder{Store: st}).Record(t.Context(), rep); err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + fmtHex(7)
	if _, err := runningimages.Write(t.Context(), st, "aks-a", []model.RunningImage{{Digest: digest, Image: "web", Workloads: []string{"Deployment/shop/web"}}}, now); err != nil {
		t.Fatal(err)
	}

	api := New(st, Options{AgentStaleAfter: 15 * time.Minute, Remediate: []string{"privileged-containers", "host-namespaces"}, Now: clock})
	get := func(u string, v any) int {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
		if v != nil && rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
				t.Fatal(err)
			}
		}
		return rec.Code
	}
	var clusters struct {
		Items []struct {
			Cluster string `json:"cluster"`
			Stale   bool   `json:"stale"`
		} `json:"items"`
	}
	if code := get("/api/clusters", &clusters); code != http.StatusOK || len(clusters.Items) != 2 {
		t.Fatalf("status %d, %+v", code, clusters)
	}
	for _, c := range clusters.Items {
		// No snapshot completed yet: stale either way; aks-b also silent.
		if !c.Stale {
			t.Errorf("%s not stale without a snapshot", c.Cluster)
		}
	}
	var imgs struct{ Items []model.RunningImage }
	if code := get("/api/running-images?cluster=aks-a", &imgs); code != http.StatusOK || len(imgs.Items) != 1 || imgs.Items[0].Digest != digest {
		t.Errorf("running images: %d %+v", code, imgs)
	}
	if code := get("/api/running-images", nil); code != http.StatusBadRequest {
		t.Errorf("running images without a cluster: %d", code)
	}
	var ins struct {
		Items []model.RemediationInstruction
	}
	if code := get("/api/remediations?cluster="+url.QueryEscape("aks-a"), &ins); code != http.StatusOK {
		t.Fatalf("remediations: %d", code)
	}
	checks := map[string]int{}
	for _, in := range ins.Items {
		checks[in.CheckID]++
		if in.Apply || in.Cluster != "aks-a" || !in.EvaluatedAt.Equal(now) {
			t.Errorf("instruction %+v", in)
		}
		if err := kubeapply.Hardening([]byte(in.Patch)); err != nil {
			t.Errorf("%s: the agent would refuse it: %v", in.CheckID, err)
		}
	}
	if len(checks) != 2 || checks["privileged-containers"] == 0 || checks["host-namespaces"] == 0 {
		t.Errorf("instructions by check %v", checks)
	}
	if code := get("/api/remediations?cluster=aks-b", &ins); code != http.StatusOK || len(ins.Items) != 0 {
		t.Errorf("nothing failed in aks-b: %d %+v", code, ins.Items)
	}
}

func fmtHex(n int) string {
	b, _ := json.Marshal(n)
	s := string(b)
	for len(s) < 64 {
		s = "0" + s
	}
	return s
}
