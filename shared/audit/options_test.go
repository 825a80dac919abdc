package audit

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseThreatList(t *testing.T) {
	ti, err := ParseThreatList(strings.NewReader("# feed\n\n185.220.101.0/24 tor\n185.220.101.47,malicious # more specific\n2001:db8:bad::/48\tproxy\n203.0.113.9\n::ffff:192.0.2.1 vpn\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ti.Len() != 5 {
		t.Errorf("Len %d, want 5", ti.Len())
	}
	for addr, want := range map[string]string{
		"185.220.101.1": "tor", "185.220.101.47": "malicious", "2001:db8:bad:1::9": "proxy", "203.0.113.9": "malicious",
		"192.0.2.1": "vpn", "::ffff:185.220.101.2": "tor", "185.220.102.1": "", "2001:db8:bae::1": "", "10.0.0.1": "",
	} {
		got, ok := ti.Lookup(netip.MustParseAddr(addr))
		if got != want || ok != (want != "") {
			t.Errorf("Lookup(%s) = %q, %v; want %q", addr, got, ok, want)
		}
	}
	for _, bad := range []string{"not-an-ip tor\n", "10.0.0.0/33\n", "1.2.3.4 tor extra\n"} {
		_, err := ParseThreatList(strings.NewReader("# ok\n" + bad))
		if !errors.Is(err, ErrThreatList) || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("ParseThreatList(%q): err %v, want ErrThreatList naming line 2", bad, err)
		}
	}
	var none *ThreatList
	if _, ok := none.Lookup(netip.MustParseAddr("185.220.101.1")); ok || none.Len() != 0 {
		t.Error("nil list matched")
	}
}

func TestNew(t *testing.T) {
	if _, err := New(Options{SensitivePorts: map[int]string{70000: "x"}}); err == nil {
		t.Error("port 70000 accepted")
	}
	if _, err := New(Options{SensitiveNames: []string{"two words"}}); err == nil {
		t.Error("name with a space accepted")
	}
	a, err := New(Options{SensitivePorts: map[int]string{8080: "internal api"}, SensitiveNames: []string{"storefront"}})
	if err != nil {
		t.Fatal(err)
	}
	// With custom lists, an ordinary web service is sensitive and port
	// 5432 is not a reason on its own any more (it still raises its own
	// ExposedPostgres type).
	c := a.config()
	if why := c.sensitiveService([]string{"web"}, []servicePort{{Port: 80, TargetPort: "8080"}}); why != "target port 8080 (internal api)" {
		t.Errorf("custom port: %q", why)
	}
	if why := c.sensitiveService([]string{"shop-storefront-v2"}, nil); why != "name shop-storefront-v2 (storefront)" {
		t.Errorf("custom name: %q", why)
	}
	if why := c.sensitiveService([]string{"grafana"}, nil); why != "" {
		t.Errorf("default name with custom list: %q", why)
	}
}

func TestSensitiveName(t *testing.T) {
	c := defaultConfig
	for name, want := range map[string]string{
		"grafana": "grafana", "team-a-jupyter": "jupyter", "Kube-Prometheus-Stack-Grafana": "prometheus", "argo_workflows.ui": "argo-workflows",
		"argo-workflows-server": "argo-workflows", "ray-dashboard-svc": "dashboard", "badminton": "", "storefront": "", "mongo": "mongo",
		"web": "", "admin-api": "admin", "ml-pipeline-ui": "ml-pipeline-ui",
	} {
		if got := c.sensitiveName(name); got != want {
			t.Errorf("sensitiveName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestHBATrustsAnyone(t *testing.T) {
	for line, want := range map[string]bool{
		"host all all 0.0.0.0/0 trust":                 true,
		"hostssl all all ::/0 trust":                   true,
		"host all all all trust # open":                true,
		"host all all 0.0.0.0 0.0.0.0 trust":           true,
		"host replication all 10.0.0.0/8 trust":        true,
		"host all all 10.244.0.0/16 trust":             false,
		"host all all 0.0.0.0/0 scram-sha-256":         false,
		"local all all trust":                          false,
		"# host all all 0.0.0.0/0 trust":               false,
		"host all all 127.0.0.1 255.255.255.255 trust": false,
		"host all all .example.com trust":              false,
		"host all all":                                 false,
	} {
		if got := hbaTrustsAnyone(line); got != want {
			t.Errorf("hbaTrustsAnyone(%q) = %v, want %v", line, got, want)
		}
	}
}

// TestMixedCategories: records of the other diagnostic categories that
// share the audit hub are skipped and counted by category; only a
// malformed kube-audit record is returned as bad.
func TestMixedCategories(t *testing.T) {
	rec := func(cat, log string) map[string]any {
		return map[string]any{"time": "2024-05-01T12:00:00.0000000Z", "resourceId": resourceID, "category": cat,
			"operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
			"properties":    map[string]any{"log": log, "stream": "stderr", "pod": cat + "-5b7f8c6d9-abcde"}}
	}
	body, err := json.Marshal(map[string]any{"records": []any{
		rec("kube-audit", string(readEvent(t, "exec"))),
		rec("kube-apiserver", "I0501 12:00:00.000001       1 alloc.go:330] \"allocated clusterIPs\" service=\"shop/web\""),
		rec("kube-controller-manager", "I0501 12:00:00.000002       1 event.go:307] \"Event occurred\" object=\"shop/web\" reason=\"ScalingReplicaSet\""),
		rec("kube-scheduler", "I0501 12:00:00.000003       1 schedule_one.go:252] \"Successfully bound pod to node\""),
		rec("cluster-autoscaler", "I0501 12:00:00.000004       1 static_autoscaler.go:289] Starting main loop"),
		rec("guard", "{\"level\":\"info\",\"msg\":\"token review succeeded\"}"),
		rec("cloud-controller-manager", "I0501 12:00:00.000005       1 azure_loadbalancer.go:118] ensuring load balancer"),
		rec("csi-azuredisk-controller", "I0501 12:00:00.000006       1 utils.go:77] GRPC call: /csi.v1.Controller/ControllerPublishVolume"),
		rec("csi-snapshot-controller", "I0501 12:00:00.000007       1 snapshot_controller_base.go:213] syncing snapshots"),
		rec("kube-apiserver", "not even klog"),
		rec("KUBE-AUDIT-ADMIN", string(readEvent(t, "privileged_pod"))),
		rec("kube-audit", "{\"kind\":\"Event\""),
	}})
	if err != nil {
		t.Fatal(err)
	}
	b := newDetector(t).NewBatch()
	var c Counts
	bad, err := (Analyzer{}).Analyze(b, body, &c)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"kube-apiserver": 2, "kube-controller-manager": 1, "kube-scheduler": 1, "cluster-autoscaler": 1, "guard": 1,
		"cloud-controller-manager": 1, "csi-azuredisk-controller": 1, "csi-snapshot-controller": 1}
	if diff := cmp.Diff(want, c.Skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if c.Events != 2 || c.SkippedTotal() != 9 || len(bad) != 1 || bad[0].Index != 11 || b.Len() != 2 {
		t.Errorf("events %d, skipped %d, bad %+v, alerts %d; want 2, 9, record 11, 2", c.Events, c.SkippedTotal(), bad, b.Len())
	}
	// Category names come from the input: bounded.
	var many []any
	for i := range MaxSkippedCategories + 5 {
		many = append(many, rec("csi-driver-"+strings.Repeat("x", i), "I0501 x"))
	}
	body, _ = json.Marshal(map[string]any{"records": many})
	var c2 Counts
	if _, err := (Analyzer{}).Analyze(b, body, &c2); err != nil {
		t.Fatal(err)
	}
	if len(c2.Skipped) != MaxSkippedCategories+1 || c2.Skipped["other"] != 5 {
		t.Errorf("%d categories kept, other %d; want %d and 5", len(c2.Skipped), c2.Skipped["other"], MaxSkippedCategories+1)
	}
}

func TestAttackTool(t *testing.T) {
	for name, want := range map[string]string{
		"kube-hunter": "kube-hunter", "kali-rolling": "kali", "cdk": "cdk", "cdk-deployer": "", "peirates-runner": "peirates",
		"hunter": "", "kube-hunters": "", "metasploit-framework": "metasploit", "": "",
	} {
		if got := attackTool(name); got != want {
			t.Errorf("attackTool(%q) = %q, want %q", name, got, want)
		}
	}
	for ref, want := range map[string]string{
		"docker.io/aquasec/kube-hunter:0.6.8": "kube-hunter", "kalilinux/kali-rolling@sha256:abc": "kali-rolling", "cdk": "cdk", "registry:5000/team/app:1": "app",
	} {
		if got := imageName(ref); got != want {
			t.Errorf("imageName(%q) = %q, want %q", ref, got, want)
		}
	}
}
