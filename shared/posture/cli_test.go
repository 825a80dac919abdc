package posture

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/sarif"
)

func cliEnv(k string) string {
	return map[string]string{
		"PALISADE_TRUSTED_REGISTRIES":   "myacr.azurecr.io",
		"PALISADE_ALLOWED_CAPABILITIES": "NET_BIND_SERVICE",
		"PALISADE_ALLOWED_HOST_PATHS":   "/var/log:ro",
	}[k]
}

func TestCLI(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"good manifests pass", []string{"--manifests", "testdata/good", "--cluster-json", "testdata/arm/cluster-hardened.json", "--diagnostics-json", "testdata/arm/diagnostics-audit.json"}, ExitOK, "score 100.0%"},
		{"bad manifests fail", []string{"--manifests", "testdata/bad"}, ExitFailures, "fail    HIGH      trusted-registries"},
		{"fail-on critical", []string{"--manifests", "testdata/bad", "--fail-on", "critical"}, ExitOK, "privileged-containers"},
		{"broken policy", []string{"--manifests", "testdata/good", "--policies", "testdata/broken-policies", "--fail-on", "critical"}, ExitFailures, "custom/team_label"},
		{"no manifests flag", nil, ExitUsage, ""},
		{"bad format", []string{"--manifests", "testdata/good", "--format", "xml"}, ExitUsage, ""},
		{"bad cluster json", []string{"--manifests", "testdata/good", "--cluster-json", "testdata/arm/registry-open.json"}, ExitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := runCLI(t.Context(), tt.args, cliEnv, clock, &out, &errOut)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), tt.contains) {
				t.Errorf("output lacks %q:\n%s", tt.contains, out.String())
			}
		})
	}
}

func TestCLIFormats(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := runCLI(t.Context(), []string{"--manifests", "testdata/bad", "--format", "json"}, cliEnv, clock, &out, &errOut); code != ExitFailures {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep struct {
		Score   model.PostureScore    `json:"score"`
		Results []model.PostureResult `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Score.Failed == 0 || len(rep.Results) != rep.Score.Passed+rep.Score.Failed+rep.Score.Exempt+rep.Score.Errors {
		t.Errorf("json report inconsistent: %+v with %d results", rep.Score, len(rep.Results))
	}
	out.Reset()
	runCLI(t.Context(), []string{"--manifests", "testdata/bad", "--format", "sarif"}, cliEnv, clock, &out, &errOut)
	var log sarif.Log
	if err := json.Unmarshal(out.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) != rep.Score.Failed {
		t.Fatalf("sarif: version %s, %d runs, want %d results", log.Version, len(log.Runs), rep.Score.Failed)
	}
	rules := map[string]bool{}
	for _, r := range log.Runs[0].Tool.Driver.Rules {
		rules[r.ID] = true
	}
	for _, r := range log.Runs[0].Results {
		if !rules[r.RuleID] {
			t.Errorf("result of unknown rule %s", r.RuleID)
		}
	}
}

func TestAPI(t *testing.T) {
	st := newTestStore(t)
	rc := &Recorder{Store: st}
	for _, name := range []string{"aks-a", "aks-b"} {
		snap, _ := clusterSnapshot(t, "testdata/bad", "", "", "")
		snap.Name = name
		rep, err := NewEngine(testConfig(t, nil), nil, nil, nil, nil, clock).Assess(t.Context(), snap)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Record(t.Context(), rep); err != nil {
			t.Fatal(err)
		}
	}
	api := NewAPI(st)
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
	var page ResultsPage
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
		var p ResultsPage
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
	var score ScoreAnswer
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
