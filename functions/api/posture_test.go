package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// resultsPage is the answer of GET /api/posture.
type resultsPage struct {
	Items        []model.PostureResult `json:"items"`
	Continuation string                `json:"continuation"`
}

func TestPostureAPI(t *testing.T) {
	st := testenv.Store(t)
	rc := &posture.Recorder{Store: st}
	objs, err := posture.LoadManifestDir(filepath.Join("..", "..", "shared", "posture", "testdata", "bad"), posture.ManifestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }
	opts := posture.Options{TrustedRegistries: []string{"myacr.azurecr.io"}, AllowedServicePorts: []int{80, 443}}
	for _, name := range []string{"aks-a", "aks-b"} {
		snap := &posture.Snapshot{Name: name, Objects: objs}
		rep, err := posture.NewEngine(opts, nil, nil, nil, nil, clock).Assess(t.Context(), snap)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Record(t.Context(), rep); err != nil {
			t.Fatal(err)
		}
	}
	api := New(st, Options{})
	get := func(url string, v any) int {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
		if v != nil && rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
				t.Fatal(err)
			}
		}
		return rec.Code
	}
	var page resultsPage
	if code := get("/api/posture?cluster=aks-a&check=privileged-containers&status=fail", &page); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if len(page.Items) != 1 || page.Items[0].Resource != "DaemonSet/legacy/node-agent" || page.Items[0].Cluster != "aks-a" {
		t.Errorf("items %+v", page.Items)
	}
	// Paging walks every failure of a cluster exactly once.
	seen := map[string]bool{}
	url := "/api/posture?cluster=aks-b&status=fail&limit=3"
	for pages := 0; ; pages++ {
		var p resultsPage
		if code := get(url, &p); code != http.StatusOK || pages > 100 {
			t.Fatalf("status %d after %d pages", code, pages)
		}
		for _, it := range p.Items {
			if seen[it.ID] || it.Status != model.PostureFail {
				t.Errorf("duplicate or wrong item %s %s", it.ID, it.Status)
			}
			seen[it.ID] = true
		}
		if p.Continuation == "" {
			break
		}
		url = "/api/posture?cluster=aks-b&status=fail&limit=3&continuation=" + p.Continuation
	}
	var score posture.Scores
	if code := get("/api/posture/score", &score); code != http.StatusOK || len(score.Clusters) != 2 {
		t.Fatalf("score: status %d, %+v", code, score)
	}
	if len(seen) != score.Clusters[1].Score.Failed {
		t.Errorf("paged %d failures, score says %d", len(seen), score.Clusters[1].Score.Failed)
	}
	if code := get("/api/posture/score?cluster=aks-a", &score); code != http.StatusOK || len(score.History) != 1 {
		t.Errorf("score of aks-a: %d %+v", code, score)
	}
	for url, want := range map[string]int{
		"/api/posture?status=broken":      http.StatusBadRequest,
		"/api/posture?limit=0":            http.StatusBadRequest,
		"/api/posture?severity=severe":    http.StatusBadRequest,
		"/api/posture/score?cluster=nope": http.StatusNotFound,
	} {
		if code := get(url, nil); code != want {
			t.Errorf("%s: status %d, want %d", url, code, want)
		}
	}
}
