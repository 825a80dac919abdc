package cli

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// postureData is the posture package's test data.
var postureData = filepath.Join("..", "..", "shared", "posture", "testdata")

func clock() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }

func TestPostureCLI(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"good manifests pass", []string{"--manifests", postureData + "/good", "--cluster-json", postureData + "/arm/cluster-hardened.json", "--diagnostics-json", postureData + "/arm/diagnostics-audit.json"}, ExitOK, "score 100.0%"},
		{"bad manifests fail", []string{"--manifests", postureData + "/bad"}, ExitPolicy, "fail    HIGH      trusted-registries"},
		{"fail-on critical", []string{"--manifests", postureData + "/bad", "--fail-on", "critical"}, ExitOK, "privileged-containers"},
		{"broken policy", []string{"--manifests", postureData + "/good", "--policies", postureData + "/broken-policies", "--fail-on", "critical"}, ExitPolicy, "custom/team_label"},
		{"no manifests flag", nil, ExitUsage, ""},
		{"bad format", []string{"--manifests", postureData + "/good", "--format", "xml"}, ExitUsage, ""},
		{"bad cluster json", []string{"--manifests", postureData + "/good", "--cluster-json", postureData + "/arm/registry-open.json"}, ExitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := postureRun(t.Context(), tt.args, cliEnv, clock, &out, &errOut)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), tt.contains) {
				t.Errorf("output lacks %q:\n%s", tt.contains, out.String())
			}
		})
	}
}

func TestPostureCLIFormats(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := postureRun(t.Context(), []string{"--manifests", postureData + "/bad", "--format", "json"}, cliEnv, clock, &out, &errOut); code != ExitPolicy {
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
	postureRun(t.Context(), []string{"--manifests", postureData + "/bad", "--format", "sarif"}, cliEnv, clock, &out, &errOut)
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
