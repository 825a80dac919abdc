package detectcli

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
)

func TestRunCLI(t *testing.T) {
	var out, errb bytes.Buffer
	code := RunCLI(t.Context(), []string{"--input", filepath.Join("testdata", "mixed.jsonl"), "--format", "json"}, &out, &errb)
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
	if code := RunCLI(t.Context(), []string{"--input", filepath.Join("testdata", "mixed.jsonl"), "--cluster", "ci"}, &out, &errb); code != 1 {
		t.Errorf("table: exit %d", code)
	}
	if s := out.String(); !strings.Contains(s, "K8S.NODE_ReverseShell") || !strings.Contains(s, "4 alerts") || !strings.HasPrefix(s, "LAST SEEN") {
		t.Errorf("table output:\n%s", s)
	}
	for _, args := range [][]string{{}, {"--input", "x", "--format", "xml"}, {"--bogus"}} {
		if code := RunCLI(t.Context(), args, &out, &errb); code != 2 {
			t.Errorf("RunCLI(%v) = %d, want 2", args, code)
		}
	}
}

func TestDetect(t *testing.T) {
	for line, want := range map[string]string{
		`{"records":[]}`: FormatDiagnostic,
		`{"kind":"Event","apiVersion":"audit.k8s.io/v1"}`: FormatAuditEvent,
		`{"v":1,"rule":"x"}`:                              FormatEnvelope,
		`{"rule":"x","output":"y"}`:                       FormatFalco,
		`{"rule":"x"}`:                                    "",
		`[1,2]`:                                           "",
	} {
		got, err := Detect([]byte(line))
		if got != want || (want == "") != (err != nil) {
			t.Errorf("Detect(%s) = %q, %v; want %q", line, got, err, want)
		}
	}
}
