package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
)

func TestDetect(t *testing.T) {
	var out, errb bytes.Buffer
	code := Detect(t.Context(), []string{"--input", filepath.Join("testdata", "mixed.jsonl"), "--format", "json"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "line 5: neither") {
		t.Errorf("exit %d, stderr %q; want 1 and line 5 reported", code, errb.String())
	}
	var alerts []model.Alert
	if err := json.Unmarshal(out.Bytes(), &alerts); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range alerts {
		got = append(got, a.Cluster+" "+a.Type)
	}
	sort.Strings(got)
	want := []string{"aks-prod BinaryDrift", "aks-prod ClusterAdminBinding", "local ExposedDashboard", "local ReverseShell"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}

	out.Reset()
	errb.Reset()
	if code := Detect(t.Context(), []string{"--input", filepath.Join("testdata", "mixed.jsonl"), "--cluster", "ci"}, &out, &errb); code != 1 {
		t.Errorf("table: exit %d", code)
	}
	if s := out.String(); !strings.Contains(s, "K8S.NODE_ReverseShell") || !strings.Contains(s, "4 alerts") || !strings.HasPrefix(s, "LAST SEEN") {
		t.Errorf("table output:\n%s", s)
	}
	for _, args := range [][]string{{}, {"--input", "x", "--format", "xml"}, {"--bogus"}} {
		if code := Detect(t.Context(), args, &out, &errb); code != 2 {
			t.Errorf("Detect(%v) = %d, want 2", args, code)
		}
	}
}

func TestLineKind(t *testing.T) {
	for line, want := range map[string]string{
		`{"records":[]}`: lineDiagnostic,
		`{"kind":"Event","apiVersion":"audit.k8s.io/v1"}`: lineAuditEvent,
		`{"v":1,"rule":"x"}`:                              lineEnvelope,
		`{"rule":"x","output":"y"}`:                       lineFalco,
		`{"rule":"x"}`:                                    "",
		`[1,2]`:                                           "",
	} {
		got, err := lineKind([]byte(line))
		if got != want || (want == "") != (err != nil) {
			t.Errorf("lineKind(%s) = %q, %v; want %q", line, got, err, want)
		}
	}
}

// TestDetectEnvelopes: --format envelopes prints the envelope of each
// runtime line (Falco lines decoded and stamped as the sensor does) and
// skips audit records.
func TestDetectEnvelopes(t *testing.T) {
	var out, errb bytes.Buffer
	code := Detect(t.Context(), []string{"--input", filepath.Join("testdata", "mixed.jsonl"), "--format", "envelopes", "--cluster", "aks-ci"}, &out, &errb)
	if code != ExitPolicy || !strings.Contains(errb.String(), "line 5: neither") {
		t.Errorf("exit %d, stderr %q; want 1 and line 5 reported", code, errb.String())
	}
	var envs []model.Envelope
	dec := json.NewDecoder(&out)
	for dec.More() {
		var e model.Envelope
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		envs = append(envs, e)
	}
	if len(envs) != 2 {
		t.Fatalf("%d envelopes, want 2 (one Falco line, one envelope line)", len(envs))
	}
	falco := envs[0]
	if falco.Cluster != "aks-ci" || falco.Node != "aks-nodepool1-12345678-vmss000001" || len(falco.ID) != 32 ||
		falco.Rule != "Netcat Remote Code Execution in Container" || falco.K8s == nil || falco.K8s.Workload != "" {
		t.Errorf("Falco line's envelope: %+v", falco)
	}
	if envs[1].ID != "evt-7f3a" || envs[1].Cluster != "aks-prod" {
		t.Errorf("envelope line not passed through: %+v", envs[1])
	}
}

// TestDetectFailOn: an alert at or above --fail-on exits 1.
func TestDetectFailOn(t *testing.T) {
	input := filepath.Join("..", "..", "shared", "detection", "testdata", "falco", "netcat_rce.json")
	for _, tc := range []struct {
		failOn string
		want   int
	}{{"", ExitOK}, {"medium", ExitPolicy}, {"high", ExitOK}} {
		var out, errb bytes.Buffer
		args := []string{"--input", input}
		if tc.failOn != "" {
			args = append(args, "--fail-on", tc.failOn)
		}
		if code := Detect(t.Context(), args, &out, &errb); code != tc.want {
			t.Errorf("--fail-on %q: exit %d, want %d\n%s%s", tc.failOn, code, tc.want, out.String(), errb.String())
		}
	}
}

// TestDetectRulesFlags: the threat list and the changes to the exposure
// lists reach the audit rules; records of other diagnostic categories are
// skipped and counted.
func TestDetectRulesFlags(t *testing.T) {
	event := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "shared", "audit", "testdata", "events", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	rec := func(cat, log string) map[string]any {
		return map[string]any{"resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-CI",
			"category": cat, "properties": map[string]any{"log": log}}
	}
	line, err := json.Marshal(map[string]any{"records": []any{
		rec("kube-audit", event("ti_tor")), rec("kube-audit-admin", event("exposed_service")),
		rec("kube-apiserver", "I0501 12:00:00.123456 1 controller.go:624] quota"), rec("guard", `{"msg":"ok"}`),
	}})
	if err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(input, append(line, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	ti := filepath.Join("..", "..", "shared", "audit", "testdata", "threat-intel.txt")
	for _, tc := range []struct {
		flags   []string
		code    int
		want    []string
		wantErr string
	}{
		{nil, ExitOK, []string{"ExposedService"}, "2 records of other diagnostic categories skipped: guard 1, kube-apiserver 1"},
		{[]string{"--ti-list", ti}, ExitOK, []string{"ExposedService", "ProxySourceAddress"}, ""},
		{[]string{"--sensitive-names", "-admin"}, ExitOK, nil, ""},
		{[]string{"--sensitive-names", "-admin", "--sensitive-ports", "8080:internal-api"}, ExitOK, []string{"ExposedService"}, ""},
		{[]string{"--sensitive-ports", "70000"}, ExitUsage, nil, `--sensitive-ports: "70000" is not a port`},
		{[]string{"--ti-list", filepath.Join(t.TempDir(), "none.txt")}, ExitUsage, nil, "--ti-list: open"},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Detect(t.Context(), append([]string{"--input", input, "--format", "json"}, tc.flags...), &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errb.String(), tc.code, tc.wantErr)
			}
			if code != ExitOK {
				return
			}
			var alerts []model.Alert
			if err := json.Unmarshal(out.Bytes(), &alerts); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range alerts {
				got = append(got, a.Type)
			}
			sort.Strings(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("alerts (-want +got):\n%s", diff)
			}
		})
	}
}
