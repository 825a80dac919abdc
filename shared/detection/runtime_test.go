package detection

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
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
	e, err := decodeFalco(b)
	if err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return e
}

// decodeFalco decodes one Falco JSON line as the sensor would on a node of
// the cluster "aks-prod".
func decodeFalco(line []byte) (model.Envelope, error) {
	ev, err := falcoevent.DecodeJSON(line)
	if err != nil {
		return model.Envelope{}, err
	}
	falcoevent.Stamp(&ev.Envelope, "aks-prod", "")
	return ev.Envelope, nil
}

// loadSample reads testdata/falco/name.json (one Falco line) or
// name.jsonl (several, e.g. a burst).
func loadSample(t testing.TB, name string) []model.Envelope {
	t.Helper()
	if _, err := os.Stat(filepath.Join("testdata", "falco", name+".json")); err == nil {
		return []model.Envelope{loadFalco(t, name)}
	}
	b, err := os.ReadFile(filepath.Join("testdata", "falco", name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []model.Envelope
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		e, err := decodeFalco([]byte(line))
		if err != nil {
			t.Fatalf("decode %s line %d: %v", name, i+1, err)
		}
		out = append(out, e)
	}
	return out
}

// sampleNames lists the Falco samples by name.
func sampleNames(t testing.TB) []string {
	t.Helper()
	var names []string
	for _, pat := range []string{"*.json", "*.jsonl"} {
		files, err := filepath.Glob(filepath.Join("testdata", "falco", pat))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			names = append(names, strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".json"), ".jsonl"))
		}
	}
	sort.Strings(names)
	return names
}

// TestRuntimeRules checks that each real Falco output line (or burst of
// lines) raises exactly the named alert types.
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
		{"crypto_miner_download", []string{"CryptoMinerDownload", "SuspiciousDownload"}},
		{"timer_disabled", []string{"PrivilegedExecution", "ShellInContainer", "TimerServiceDisabled"}},
		{"linux_bot", []string{"BinaryDrift", "LinuxBot"}},
		{"image_build_node", []string{"ImageBuildOnNode", "KubernetesAPIAccess", "PrivilegedExecution"}},
		{"ddos_toolkit", []string{"BinaryDrift", "DDoSToolkit"}},
		{"dashboard_access", []string{"KubernetesDashboardAccess", "SuspiciousDownload"}},
		{"recon_burst", []string{"ReconnaissanceBurst"}},
		{"caldera", []string{"BinaryDrift", "CalderaAgent"}},
		{"exec_from_shm", []string{"ExploitAttempt"}},
		{"exec_memfd", []string{"ExploitAttempt"}},
		{"exec_tmp", []string{"BinaryDrift"}},
		{"privileged_mount", []string{"ExploitAttempt", "PrivilegedExecution"}},
		{"csi_mount", nil},
		{"privileged_insmod", []string{"Backdoor", "PrivilegedExecution"}},
		{"privileged_nsenter", []string{"ExploitAttempt", "NamespaceChange"}},
		{"kubectl_in_container", []string{"BinaryDrift", "KubernetesAPIAccess"}},
		{"controller_api_contact", nil},
		{"docker_socket", []string{"ExploitAttempt", "SuspiciousDownload"}},
		{"k8saudit_privileged_pod", []string{"PrivilegedPod"}},
	}
	d := newTestDetector(t)
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			var got []string
			for _, e := range loadSample(t, tc.file) {
				for _, h := range d.runtimeHits(&e, nil) {
					if !slices.Contains(got, h.Type) {
						got = append(got, h.Type)
					}
					if _, ok := d.types[h.Type]; !ok {
						t.Errorf("hit of undeclared type %s", h.Type)
					}
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
	d := newTestDetector(t)
	b := d.NewBatch()
	for _, name := range sampleNames(t) {
		for _, e := range loadSample(t, name) {
			b.AddEnvelope(&e)
		}
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

// ruleMapRow is one row of testdata/falco-rule-map.tsv.
type ruleMapRow struct {
	ruleset, rule, priority, typ, note string
	fields                             map[string]string
}

func readRuleMap(t *testing.T) (rows []ruleMapRow, counts map[string]int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "falco-rule-map.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	counts = map[string]int{}
	header := false
	for i, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if c, ok := strings.CutPrefix(line, "# counts: "); ok {
			for _, kv := range strings.Fields(c) {
				k, v, _ := strings.Cut(kv, "=")
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("line %d: count %q", i+1, kv)
				}
				counts[k] = n
			}
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			t.Fatalf("line %d: %d columns, want 6", i+1, len(f))
		}
		if !header {
			header = true
			continue
		}
		r := ruleMapRow{ruleset: f[0], rule: f[1], priority: f[2], typ: f[3], note: f[5], fields: map[string]string{}}
		for _, kv := range strings.Fields(f[4]) {
			k, v, _ := strings.Cut(kv, "=")
			r.fields[k] = v
		}
		rows = append(rows, r)
	}
	return rows, counts
}

// TestFalcoRuleMap walks the mapping table: every rule of the Falco
// rulesets and of the k8saudit plugin, sent as Falco JSON through the real
// decoder and rules, raises the type the table names (or, for the generic
// FalcoRule, exactly that alert when its priority is at or above the
// configured minimum); every rule the code maps is in the table.
func TestFalcoRuleMap(t *testing.T) {
	rows, counts := readRuleMap(t)
	d := newTestDetector(t)
	perSet := map[string]int{}
	inTable := map[string]string{}
	for _, r := range rows {
		perSet[r.ruleset]++
		if _, dup := inTable[r.rule]; dup {
			t.Errorf("rule %q is listed twice", r.rule)
		}
		inTable[r.rule] = r.typ
		if _, ok := d.types[r.typ]; !ok {
			t.Errorf("rule %q maps to undeclared type %s", r.rule, r.typ)
			continue
		}
		if r.typ == "FalcoRule" && r.note == "" {
			t.Errorf("rule %q: a generic mapping needs a note saying why", r.rule)
		}
		source := "syscall"
		if r.ruleset == "k8saudit" {
			source = "k8s_audit"
		}
		line, err := json.Marshal(map[string]any{"output": "12:00:00.000000000: " + r.priority + " " + r.rule, "priority": r.priority, "rule": r.rule,
			"source": source, "time": "2026-07-10T20:12:53.504372321Z", "hostname": "aks-nodepool1-12345678-vmss000001", "output_fields": r.fields})
		if err != nil {
			t.Fatal(err)
		}
		e, err := decodeFalco(line)
		if err != nil {
			t.Fatalf("rule %q: %v", r.rule, err)
		}
		var got []string
		for _, h := range d.runtimeHits(&e, nil) {
			got = append(got, h.Type)
		}
		switch {
		case r.typ == "FalcoRule" && priorityRank(r.priority) >= d.minPriority:
			if len(got) != 1 || got[0] != "FalcoRule" {
				t.Errorf("%s rule %q (%s): types %v, want the generic FalcoRule", r.ruleset, r.rule, r.priority, got)
			}
		case r.typ == "FalcoRule":
			if len(got) != 0 {
				t.Errorf("%s rule %q (%s): types %v, want none below the minimum priority", r.ruleset, r.rule, r.priority, got)
			}
		case !slices.Contains(got, r.typ) || slices.Contains(got, "FalcoRule"):
			t.Errorf("%s rule %q: types %v, want %s", r.ruleset, r.rule, got, r.typ)
		}
	}
	if diff := cmp.Diff(counts, perSet); diff != "" || len(counts) < 5 {
		t.Errorf("rules per ruleset differ from the upstream counts (-want +got):\n%s", diff)
	}
	for rule, typ := range falcoRuleTypes {
		if inTable[rule] != typ {
			t.Errorf("code maps %q to %s, the table to %q", rule, typ, inTable[rule])
		}
	}
	for rule := range conditionalRules {
		if _, ok := inTable[rule]; !ok {
			t.Errorf("conditional rule %q is not in the table", rule)
		}
	}
}

// TestRuntimeHeuristics: the process, command-line and path checks that
// apply whatever Falco rule reported the event.
func TestRuntimeHeuristics(t *testing.T) {
	app := &model.ContainerRef{ID: "253a53abf758", Name: "web", Image: "shopacr.azurecr.io/shop/web"}
	priv := &model.ContainerRef{ID: "4f2a9c1b7d3e", Name: "agent", Image: "docker.io/library/busybox", Privileged: true}
	csi := &model.ContainerRef{ID: "7c1d2e3f4a5b", Name: "blob", Image: "mcr.microsoft.com/oss/kubernetes-csi/blob-csi", Privileged: true}
	cases := []struct {
		name      string
		c         *model.ContainerRef
		ns        string
		fields    map[string]string
		want, not string
	}{
		{"mozi", app, "shop", map[string]string{"proc.name": "mozi.m", "proc.cmdline": "./mozi.m"}, "LinuxBot", ""},
		{"buildkit", nil, "", map[string]string{"proc.name": "buildctl", "proc.cmdline": "buildctl build --frontend dockerfile.v0 --local context=."}, "ImageBuildOnNode", ""},
		{"slowloris script", app, "shop", map[string]string{"proc.name": "python3", "proc.cmdline": "python3 slowloris.py 203.0.113.9 -s 500"}, "DDoSToolkit", ""},
		{"caldera ragdoll", app, "shop", map[string]string{"proc.name": "python3", "proc.cmdline": "python3 ragdoll.py -W http://10.0.4.20:8888#"}, "CalderaAgent", ""},
		{"recon ps", app, "shop", map[string]string{"proc.name": "ps", "proc.cmdline": "ps aux"}, "ReconnaissanceBurst", ""},
		{"memfd exe", nil, "", map[string]string{"proc.name": "3", "proc.exepath": "/memfd:x (deleted)", "proc.is_exe_from_memfd": "true"}, "ExploitAttempt", ""},
		{"shm script", app, "shop", map[string]string{"proc.name": "sh", "proc.cmdline": "sh /dev/shm/.s"}, "ExploitAttempt", ""},
		{"tmp binary", app, "shop", map[string]string{"proc.name": "x", "proc.exepath": "/var/tmp/x"}, "BinaryDrift", ""},
		{"go test binary", app, "ci", map[string]string{"proc.name": "pkg.test", "proc.exepath": "/tmp/go-build123/b001/pkg.test"}, "", "BinaryDrift"},
		{"tmp binary on the node", nil, "", map[string]string{"proc.name": "x", "proc.exepath": "/tmp/x"}, "", "BinaryDrift"},
		{"kubectl in container", app, "shop", map[string]string{"proc.name": "kubectl", "proc.cmdline": "kubectl auth can-i --list"}, "KubernetesAPIAccess", ""},
		{"kubectl on the node", nil, "", map[string]string{"proc.name": "kubectl", "proc.cmdline": "kubectl get nodes"}, "", "KubernetesAPIAccess"},
		{"mount in privileged", priv, "shop", map[string]string{"proc.name": "mount", "proc.cmdline": "mount -t cgroup -o memory cgroup /tmp/cg"}, "ExploitAttempt", ""},
		{"mount listing", priv, "shop", map[string]string{"proc.name": "mount", "proc.cmdline": "mount"}, "", "ExploitAttempt"},
		{"modprobe in privileged", priv, "shop", map[string]string{"proc.name": "modprobe", "proc.cmdline": "modprobe rootkit"}, "Backdoor", ""},
		{"chroot to host", priv, "shop", map[string]string{"proc.name": "chroot", "proc.cmdline": "chroot /host bash"}, "ExploitAttempt", ""},
		{"unshare in privileged", priv, "shop", map[string]string{"proc.name": "unshare", "proc.cmdline": "unshare -m -p -f bash"}, "NamespaceChange", ""},
		{"csi mount", csi, "kube-system", map[string]string{"proc.name": "mount", "proc.cmdline": "mount -t ext4 /dev/sdc /var/lib/kubelet/plugins/x"}, "", "ExploitAttempt"},
		{"csi image outside kube-system", csi, "shop", map[string]string{"proc.name": "mount", "proc.cmdline": "mount /dev/sda1 /mnt"}, "ExploitAttempt", ""},
		{"core_pattern", priv, "shop", map[string]string{"proc.name": "sh", "proc.cmdline": "sh -c echo '|/tmp/x' > /proc/sys/kernel/core_pattern"}, "ExploitAttempt", ""},
		{"dashboard by name", app, "shop", map[string]string{"proc.name": "python3", "fd.sip.name": "kubernetes-dashboard.kubernetes-dashboard.svc.cluster.local", "fd.sip": "10.0.88.1", "fd.sport": "443"}, "KubernetesDashboardAccess", ""},
	}
	d := newTestDetector(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := model.Envelope{Version: 1, ID: "h-" + tc.name, Cluster: "aks-prod", Node: "node-1", Rule: "A custom rule", Priority: "Notice",
				Time: time.Date(2026, 7, 10, 20, 0, 0, 0, time.UTC), OutputFields: map[string]string{"evt.type": "execve"}, Container: tc.c}
			for k, v := range tc.fields {
				e.OutputFields[k] = v
			}
			if tc.c != nil {
				e.K8s = &model.K8sRef{Namespace: tc.ns, Pod: "p-x2x7q"}
			}
			var got []string
			for _, h := range d.runtimeHits(&e, nil) {
				got = append(got, h.Type)
			}
			if tc.want != "" && !slices.Contains(got, tc.want) || tc.not != "" && slices.Contains(got, tc.not) {
				t.Errorf("types %v; want %q, not %q", got, tc.want, tc.not)
			}
		})
	}
}

// TestByteSet: hasAll is true exactly when every byte of the pattern is in
// the set, across the four words.
func TestByteSet(t *testing.T) {
	var in byteSet
	in.add("a\x00?@\x7f\x80é\xff")
	for s, want := range map[string]bool{
		"": true, "a": true, "\x00\xff": true, "?@": true, "é": true, "\x7f\x80": true,
		"b": false, "a b": false, "\x01": false, ">": false, "A": false, "\xfe": false,
	} {
		if got := in.hasAll(s); got != want {
			t.Errorf("hasAll(%q) = %v, want %v", s, got, want)
		}
	}
}
