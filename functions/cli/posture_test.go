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

// TestPostureNotAssessed: what could not be assessed is in every format and
// the summary, and --strict fails the run on it.
func TestPostureNotAssessed(t *testing.T) {
	dir := postureData + "/fidelity"
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := postureRun(t.Context(), append([]string{"--manifests", dir}, args...), cliEnv, clock, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	wantKinds := []string{"PodSecurityPolicy", "Certificate", "Deploymnet"}

	code, table, stderr := run("--fail-on", "")
	if code != ExitOK {
		t.Fatalf("exit %d without --strict; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"NOT ASSESSED", "PodSecurityPolicy  policy/v1beta1", "deprecated.yaml #11", "custom resource of a kind no check reads",
		"kind Deploymnet is not known in API version apps/v1", ", 3 not assessed\n"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if !strings.Contains(stderr, "not assessed: Certificate cert-manager.io/v1 builder-tls in "+dir+"/workloads.yaml document 4") {
		t.Errorf("stderr lacks the not-assessed warning:\n%s", stderr)
	}

	if code, _, _ := run("--fail-on", "", "--strict"); code != ExitPolicy {
		t.Errorf("--strict: exit %d, want %d", code, ExitPolicy)
	}
	var out, errOut bytes.Buffer
	if code := postureRun(t.Context(), []string{"--manifests", postureData + "/good", "--strict", "--fail-on", ""}, cliEnv, clock, &out, &errOut); code != ExitOK {
		t.Errorf("--strict with everything assessed: exit %d\n%s", code, errOut.String())
	}

	_, js, _ := run("--format", "json", "--fail-on", "")
	var rep struct {
		NotAssessedCount int                        `json:"notAssessedCount"`
		NotAssessed      []model.PostureNotAssessed `json:"notAssessed"`
		Results          []model.PostureResult      `json:"results"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, na := range rep.NotAssessed {
		kinds = append(kinds, na.Kind)
		if na.Source == "" || na.APIVersion == "" || na.Reason == "" || na.Document == 0 {
			t.Errorf("incomplete entry %+v", na)
		}
	}
	if rep.NotAssessedCount != 3 || strings.Join(kinds, ",") != strings.Join(wantKinds, ",") {
		t.Errorf("json: %d not assessed, kinds %v; want 3, %v", rep.NotAssessedCount, kinds, wantKinds)
	}

	_, sf, _ := run("--format", "sarif", "--fail-on", "")
	var log sarif.Log
	if err := json.Unmarshal([]byte(sf), &log); err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, r := range log.Runs[0].Results {
		if r.RuleID == "not-assessed" {
			uris = append(uris, r.Locations[0].PhysicalLocation.ArtifactLocation.URI)
		}
	}
	if want := []string{dir + "/deprecated.yaml", dir + "/workloads.yaml", dir + "/workloads.yaml"}; strings.Join(uris, ",") != strings.Join(want, ",") {
		t.Errorf("sarif not-assessed locations %v, want %v", uris, want)
	}
	ruled := false
	for _, r := range log.Runs[0].Tool.Driver.Rules {
		ruled = ruled || r.ID == "not-assessed"
	}
	if !ruled {
		t.Error("sarif has no not-assessed rule")
	}
}

// TestPostureNamespace: objects without a namespace go to --namespace.
func TestPostureNamespace(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{{nil, "Deployment/default/builder"}, {[]string{"--namespace", "ci"}, "Deployment/ci/builder"}} {
		var out, errOut bytes.Buffer
		postureRun(t.Context(), append([]string{"--manifests", postureData + "/fidelity", "--format", "json"}, tt.args...), cliEnv, clock, &out, &errOut)
		if !strings.Contains(out.String(), `"resource": "`+tt.want+`"`) {
			t.Errorf("%v: no result for %s", tt.args, tt.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := postureRun(t.Context(), []string{"--manifests", postureData + "/good", "--namespace", ""}, cliEnv, clock, &out, &errOut); code != ExitUsage {
		t.Errorf("empty --namespace: exit %d", code)
	}
}
