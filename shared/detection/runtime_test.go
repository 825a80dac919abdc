package detection

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/falcoevent"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/tests/golden"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testConfig() Options {
	return Options{Window: time.Hour, AlertTTL: 90 * 24 * time.Hour, MinFalcoPriority: "warning", FailedAuthBurst: 10, SecretReadBurst: 20, ReconBurst: 3}
}

func newTestDetector(t testing.TB) *Detector {
	t.Helper()
	d, err := NewDetector(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func loadFalco(t testing.TB, name string) model.Envelope {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "falco", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := falcoevent.DecodeJSON(b)
	if err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	falcoevent.Stamp(&ev.Envelope, "aks-prod", "")
	return ev.Envelope
}

// TestRuntimeRules checks that each real Falco output line raises exactly
// the named alert types.
func TestRuntimeRules(t *testing.T) {
	cases := []struct {
		file string
		want []string
	}{
		{"terminal_shell", []string{"ShellInContainer"}},
		{"terminal_shell_privileged", []string{"PrivilegedExecution", "ShellInContainer"}},
		{"read_sensitive_file", []string{"PasswordFileAccess"}},
		{"drop_execute", []string{"BinaryDrift"}},
		{"c2_connection", []string{"SocksConnection"}},
		{"miner_pool_port", []string{"DigitalCurrencyMining"}},
		{"stratum", []string{"CryptoMinerExecution", "CryptoMinerProcess", "DigitalCurrencyMining"}},
		{"imds", []string{"ImdsAccess"}},
		{"clear_log", []string{"LogTampering"}},
		{"search_keys", []string{"CredentialAccessTool"}},
		{"netcat_rce", []string{"ReverseShell"}},
		{"redirect_stdin", []string{"ReverseShell"}},
		{"shell_history", []string{"HistoryFileCleared"}},
		{"kubeconfig", []string{"KubeConfigAccess", "PasswordFileAccess"}},
		{"download_run", []string{"DownloadAndRun", "MaliciousDownload", "SuspiciousDownload"}},
		{"sshd_in_container", []string{"ContainerSSH"}},
		{"launch_privileged", []string{"PrivilegedContainerStarted"}},
		{"nmap", []string{"AttackTool"}},
		{"k8s_api", []string{"KubernetesAPIAccess"}},
		{"webshell", []string{"WebShell"}},
		{"useradd", []string{"UserAdded"}},
		{"release_agent", []string{"ExploitAttempt"}},
		{"unshare", []string{"NamespaceChange"}},
		{"ssh_keys", []string{"SSHKeyAccess"}},
		{"kmod", []string{"Backdoor"}},
		{"unmapped_warning", []string{"FalcoRule"}},
		{"unmapped_notice", nil},
		{"redirect_low_priority", []string{"ReverseShell"}},
		{"timestomp", []string{"TimestampTampering"}},
		{"kill_falco", []string{"SecurityProcessTermination"}},
		{"eicar", []string{"TestAlert"}},
		{"socat_forward", []string{"PortForwarding"}},
		{"passwd_change", []string{"PasswordChange"}},
		{"nohup_tmp", []string{"SuspiciousNohup"}},
		{"socks", []string{"SocksConnection"}},
		{"old_format_shell", []string{"ShellInContainer"}},
	}
	d := newTestDetector(t)
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			e := loadFalco(t, tc.file)
			var got []string
			for _, h := range d.runtimeHits(&e, nil) {
				got = append(got, h.Type)
				if _, ok := d.types[h.Type]; !ok {
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

// TestRuntimeGolden folds every sample into alerts and compares them with
// testdata/golden/runtime.json.
func TestRuntimeGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "falco", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	d := newTestDetector(t)
	b := d.NewBatch()
	for _, f := range files {
		e := loadFalco(t, strings.TrimSuffix(filepath.Base(f), ".json"))
		b.AddEnvelope(&e)
	}
	got, err := json.MarshalIndent(b.Alerts(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Compare(t, filepath.Join("testdata", "golden", "runtime.json"), got, *update)
}

// TestCatalogueCoverage keeps the promise of at least 30 runtime reference
// types and 15 control-plane ones, each complete.
func TestCatalogueCoverage(t *testing.T) {
	node, plane := 0, 0
	refs := map[string]bool{}
	for _, at := range Types() {
		if at.Title == "" || at.Description == "" || len(at.Remediation) == 0 || at.Severity.Rank() == 0 {
			t.Errorf("type %s is incomplete: %+v", at.Name, at)
		}
		if at.RefType != "" {
			if refs[at.RefType] {
				t.Errorf("reference type %s used twice", at.RefType)
			}
			refs[at.RefType] = true
			if len(at.Tactics) == 0 {
				t.Errorf("type %s has no MITRE tactic", at.Name)
			}
		}
		switch {
		case strings.HasPrefix(at.RefType, "K8S.NODE_"):
			node++
		case strings.HasPrefix(at.RefType, "K8S_"):
			plane++
		}
	}
	if node < 30 || plane < 15 {
		t.Errorf("catalogue has %d K8S.NODE_ and %d K8S_ types; want at least 30 and 15", node, plane)
	}
	for rule, typ := range falcoRuleTypes {
		if _, ok := LookupType(typ); !ok {
			t.Errorf("Falco rule %q maps to undeclared type %s", rule, typ)
		}
	}
	for proc, typ := range processTypes {
		if _, ok := LookupType(typ); !ok {
			t.Errorf("process %q maps to undeclared type %s", proc, typ)
		}
	}
}

func TestWorkloadFromPod(t *testing.T) {
	for pod, want := range map[string]string{
		"web-7d4b9c8f5-x2x7q": "web", "agent-x2x7q": "agent", "db-0": "db", "my-app-5f6d7c8b9d-bcdfg": "my-app", "api-xk2pd": "api", "web-abcde": "web-abcde",
		"standalone": "standalone", "falco-5tjrp": "falco", "web--x2x7q": "web-", "-x2x7q": "", "": "", "a-b-0": "a-b", "web-7d4b9c8f5-": "web-7d4b9c8f5-", "node-debugger-aks-nodepool1-12345678-vmss000001-xk2pd": "node-debugger-aks-nodepool1-12345678-vmss000001",
	} {
		if got := WorkloadFromPod(pod); got != want {
			t.Errorf("WorkloadFromPod(%q) = %q, want %q", pod, got, want)
		}
	}
}
