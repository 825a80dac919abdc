package audit

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/tests/golden"
)

var update = flag.Bool("update", false, "rewrite golden files")

const resourceID = "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-AKS/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-PROD"

func newDetector(t testing.TB) *detection.Detector {
	t.Helper()
	d, err := detection.NewDetector(detection.Options{Window: time.Hour, MinFalcoPriority: "warning", FailedAuthBurst: 3, SecretReadBurst: 20, ReconBurst: 5})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testAnalyzer is the default analyzer with the test threat-intelligence
// list.
func testAnalyzer(t testing.TB) Analyzer {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "threat-intel.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ti, err := ParseThreatList(f)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{ThreatIntel: ti})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func readEvent(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "events", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// diagnosticBody wraps audit events the way AKS diagnostics do: each event
// is a JSON string in properties.log of a record.
func diagnosticBody(t testing.TB, events ...[]byte) []byte {
	t.Helper()
	var d struct {
		Records []map[string]any `json:"records"`
	}
	for _, e := range events {
		d.Records = append(d.Records, map[string]any{
			"time": "2024-05-01T12:00:00.0000000Z", "resourceId": resourceID, "category": "kube-audit",
			"operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
			"properties":    map[string]any{"log": string(e), "stream": "stdout", "pod": "kube-apiserver-5b7f8c6d9-abcde"},
		})
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAuditRules(t *testing.T) {
	cases := []struct {
		file string
		want []string
	}{
		{"privileged_pod", []string{"PrivilegedPod"}},
		{"privileged_deployment", []string{"PrivilegedPod"}},
		{"hostpath_docker_sock", []string{"SensitiveMount"}},
		{"hostpath_benign", nil},
		{"host_network", []string{"HostNamespacePod"}},
		{"cluster_admin_binding", []string{"ClusterAdminBinding"}},
		{"view_binding", nil},
		{"high_priv_role", []string{"HighPrivilegesRole"}},
		{"aggregated_role", nil},
		{"kube_system_pod", []string{"KubeSystemContainer"}},
		{"kube_system_controller", nil},
		{"webhook", []string{"AdmissionWebhook"}},
		{"coredns_patch", []string{"CoreDNSModification"}},
		{"events_deleted", []string{"EventsDeleted"}},
		{"exposed_dashboard", []string{"ExposedDashboard"}},
		{"exposed_service", []string{"ExposedService"}},
		{"exposed_redis", []string{"ExposedRedis"}},
		{"exposed_postgres", []string{"ExposedPostgres"}},
		{"internal_lb", nil},
		{"restricted_lb", nil},
		{"exec", []string{"ExecIntoPod"}},
		{"exec_request_received", nil},
		{"portforward", []string{"PortForwardToPod"}},
		{"anonymous_allowed", []string{"AnonymousAccess"}},
		{"anonymous_healthz", nil},
		{"forbidden", []string{"FailedAuthBurst"}},
		{"secret_list", []string{"SecretEnumeration"}},
		{"secret_list_controller", nil},
		{"secret_get", []string{"SecretReadBurst"}},
		{"kube_hunter", []string{"FailedAuthBurst", "PenTestTool"}},
		{"miner_image", []string{"MinerImage"}},
		{"denied_create", []string{"FailedAuthBurst"}},
		{"plain_get", nil},
		{"exposed_kubeflow", []string{"ExposedKubeflow"}},
		{"exposed_web_gitops", nil},
		{"exposed_notebook", []string{"ExposedService"}},
		{"exposed_kubelet_port", []string{"ExposedService"}},
		{"exposed_mysql_restricted", nil},
		{"postgres_trust_env", []string{"ExposedPostgresTrustAuth"}},
		{"postgres_trust_hba", []string{"ExposedPostgresTrustAuth"}},
		{"postgres_hba_safe", nil},
		{"cnpg_trust", []string{"ExposedPostgresTrustAuth"}},
		{"ti_tor", []string{"ProxySourceAddress"}},
		{"ti_malicious", []string{"FailedAuthBurst", "MaliciousSourceAddress"}},
		{"coredns_replace", []string{"CoreDNSModification"}},
		{"coredns_custom_create", []string{"CoreDNSModification"}},
		{"coredns_deployment_conf", []string{"CoreDNSModification"}},
		{"coredns_rollout_restart", nil},
		{"pentest_image", []string{"PenTestTool"}},
		{"pentest_sa", []string{"PenTestTool"}},
		{"ephemeral_container", []string{"ExecIntoPod"}},
		{"webhook_cainjector_patch", nil},
		{"secret_watch_argocd", nil},
		{"secret_list_helm", nil},
		{"secret_list_sa_kubectl", []string{"SecretEnumeration"}},
		{"forbidden_controller", nil},
	}
	a := testAnalyzer(t)
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			e, err := DecodeEvent(readEvent(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, h := range a.Hits("aks-prod", &e, nil) {
				got = append(got, h.Type)
				if _, ok := detection.LookupType(h.Type); !ok {
					t.Errorf("hit of undeclared type %s", h.Type)
				}
			}
			sort.Strings(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("alert types (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAuditGolden runs every sample through the diagnostic wrapper and
// compares the folded alerts with testdata/golden/audit.json.
func TestAuditGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var events [][]byte
	for _, f := range files {
		events = append(events, readEvent(t, strings.TrimSuffix(filepath.Base(f), ".json")))
	}
	b := newDetector(t).NewBatch()
	n, bad, err := testAnalyzer(t).AddBody(b, diagnosticBody(t, events...))
	if err != nil || len(bad) != 0 || n != len(events) {
		t.Fatalf("AddBody: %d events, bad %v, err %v; want %d, none, nil", n, bad, err, len(events))
	}
	got, err := json.MarshalIndent(b.Alerts(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Compare(t, filepath.Join("testdata", "golden", "audit.json"), got, *update)
}

// TestBurstThreshold: failed requests from one source stay pending until
// the configured count, then the alert is active.
func TestBurstThreshold(t *testing.T) {
	base := readEvent(t, "forbidden")
	b := newDetector(t).NewBatch()
	for i := range 3 {
		ev := strings.Replace(string(base), `"a-forbidden"`, `"a-forbidden-`+string(rune('a'+i))+`"`, 1)
		if _, _, err := (Analyzer{}).AddBody(b, diagnosticBody(t, []byte(ev))); err != nil {
			t.Fatal(err)
		}
		alerts := b.Alerts()
		if len(alerts) != 1 {
			t.Fatalf("after %d events: %d alerts, want 1", i+1, len(alerts))
		}
		want := "pending"
		if i == 2 {
			want = "new"
		}
		if alerts[0].Status != want || alerts[0].Count != i+1 {
			t.Errorf("after %d events: status %s count %d, want %s %d", i+1, alerts[0].Status, alerts[0].Count, want, i+1)
		}
	}
}

// TestCorruptRecord: one bad record is reported, the others analysed.
func TestCorruptRecord(t *testing.T) {
	body := diagnosticBody(t, readEvent(t, "exec"), []byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":`), readEvent(t, "privileged_pod"))
	b := newDetector(t).NewBatch()
	n, bad, err := (Analyzer{}).AddBody(b, body)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || len(bad) != 1 || bad[0].Index != 1 || !strings.Contains(bad[0].Reason, "record 1") {
		t.Fatalf("got %d events and bad %+v; want 2 events and record 1 bad", n, bad)
	}
	if b.Len() != 2 {
		t.Errorf("got %d alerts, want 2", b.Len())
	}
	if _, _, err := (Analyzer{}).AddBody(b, []byte(`{"value":[]}`)); !errors.Is(err, ErrDecode) {
		t.Errorf("body without records: err %v, want ErrDecode", err)
	}
}

func TestClusterFromResourceID(t *testing.T) {
	if got, err := ClusterFromResourceID(resourceID); err != nil || got != "aks-prod" {
		t.Errorf("got %q, %v", got, err)
	}
	for _, bad := range []string{"", "/subscriptions/x/resourceGroups/y", "/x/MANAGEDCLUSTERS/"} {
		if _, err := ClusterFromResourceID(bad); err == nil {
			t.Errorf("ClusterFromResourceID(%q): no error", bad)
		}
	}
}
