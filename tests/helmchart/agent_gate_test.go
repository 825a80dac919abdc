package helmchart

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/tests/kubeapi"
)

func gateValues(extra map[string]any) map[string]any {
	g := map[string]any{"enabled": true, "rules": map[string]any{
		"rules": []any{map[string]any{"name": "deny-critical", "mode": "deny", "conditions": map[string]any{"minSeverity": "critical"}}}}}
	for k, v := range extra {
		g[k] = v
	}
	return map[string]any{"clusterId": "c", "eventHubs": base["eventHubs"], "agent": map[string]any{
		"workloadIdentity": map[string]any{"clientId": "x"}, "gate": g,
		"api": map[string]any{"url": "https://palisade.azurewebsites.net", "keySecret": "palisade-api"}}}
}

// TestGateRenders: with agent.gate on, the rules reach the agent as a
// file the gate parses (the release's namespace among the system ones),
// the API server reaches the webhook through a Service and an ingress
// rule, and the agent gets its settings; without the API it refuses.
func TestGateRenders(t *testing.T) {
	out, err := render(t, gateValues(nil))
	if err != nil {
		t.Fatal(err)
	}
	objs := agentObjects(t, out)
	cm := objs["ConfigMap/palisade-palisade-sensor-agent-gate-rules"]
	if cm == nil {
		t.Fatalf("no rules ConfigMap among %v", keys(objs))
	}
	rules, err := gate.Parse([]byte(get(t, cm, "data", "rules.yaml").(string)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules.Rules) != 1 || rules.Rules[0].Mode != gate.ModeDeny || !slices.Contains(rules.Exempt(), "security") || !slices.Contains(rules.Exempt(), "kube-system") {
		t.Errorf("rules %+v, exempt %v", rules.Rules, rules.Exempt())
	}
	svc := objs["Service/palisade-palisade-sensor-agent-webhook"]
	if svc == nil || get(t, svc, "spec", "ports", 0, "port") != float64(443) && get(t, svc, "spec", "ports", 0, "port") != 443 {
		t.Fatalf("webhook Service %v", svc)
	}
	d := agentDeployment(t, objs)
	c := get(t, d, "spec", "template", "spec", "containers", 0).(map[string]any)
	e := env(t, c)
	if e["PALISADE_GATE_ADDR"] != ":9443" || e["PALISADE_GATE_SERVICE"] != "palisade-palisade-sensor-agent-webhook" ||
		e["PALISADE_GATE_SECRET"] != "palisade-palisade-sensor-agent-webhook-tls" || e["PALISADE_GATE_FAIL_CLOSED"] != "false" ||
		e["PALISADE_GATE_RULES"] != "/etc/palisade/gate/rules.yaml" || e["PALISADE_AGENT_API_URL"] == nil {
		t.Errorf("agent env %v", e)
	}
	if get(t, c, "volumeMounts", 0, "mountPath") != "/etc/palisade/gate" || get(t, d, "spec", "template", "spec", "volumes", 0, "configMap", "name") != get(t, cm, "metadata", "name") {
		t.Errorf("rules volume: %v", get(t, d, "spec", "template", "spec"))
	}
	var ingress []any
	for _, np := range ofKind(objs, "NetworkPolicy") {
		for _, r := range get(t, np, "spec").(map[string]any)["ingress"].([]any) {
			for _, p := range r.(map[string]any)["ports"].([]any) {
				ingress = append(ingress, p.(map[string]any)["port"])
			}
		}
	}
	if !slices.ContainsFunc(ingress, func(p any) bool { return p == float64(9443) || p == 9443 }) {
		t.Errorf("no ingress to the webhook port: %v", ingress)
	}

	vals := gateValues(nil)
	delete(vals["agent"].(map[string]any), "api")
	if _, err := render(t, vals); err == nil || !strings.Contains(err.Error(), "agent.gate.enabled needs agent.api.url") {
		t.Errorf("gate without the API: %v", err)
	}
}

// TestGateRBACInARealServer: the gate's rights, asked of a real API
// server's authorizer: its own certificate Secret and webhook
// configuration, nothing else.
func TestGateRBACInARealServer(t *testing.T) {
	s := kubeapi.Shared(t)
	kc := s.Client(t)
	ns := s.Namespace(t, nil)
	release := "g" + ns[len(ns)-6:]
	out, err := renderRelease(t, sensorChart(t), release, ns, gateValues(map[string]any{"configName": "gate-" + ns}))
	if err != nil {
		t.Fatal(err)
	}
	gateRBAC := func(name string) bool {
		return strings.Contains(name, "/templates/agent-gate.yaml#") || strings.Contains(name, "/templates/agent-serviceaccount.yaml#")
	}
	sa, roles := applyRBAC(t, kc, ns, out, gateRBAC)
	var secret string
	if len(roles) == 1 && len(roles[0].Rules) == 2 && len(roles[0].Rules[1].ResourceNames) == 1 {
		secret = roles[0].Rules[1].ResourceNames[0]
	}
	if sa == "" || secret == "" {
		t.Fatalf("service account %q, secret %q", sa, secret)
	}
	can := access(t, kc, ns, sa)
	const ar = "admissionregistration.k8s.io"
	for _, c := range []struct {
		verb, group, resource, ns, name string
		want                            bool
	}{
		{"get", "", "secrets", ns, secret, true},
		{"update", "", "secrets", ns, secret, true},
		{"create", "", "secrets", ns, "", true},
		{"get", "", "secrets", ns, "other", false},
		{"list", "", "secrets", ns, "", false},
		{"get", "", "secrets", "kube-system", secret, false},
		{"get", ar, "validatingwebhookconfigurations", "", "gate-" + ns, true},
		{"update", ar, "validatingwebhookconfigurations", "", "gate-" + ns, true},
		{"create", ar, "validatingwebhookconfigurations", "", "", true},
		{"update", ar, "validatingwebhookconfigurations", "", "other", false},
		{"delete", ar, "validatingwebhookconfigurations", "", "gate-" + ns, false},
		{"update", ar, "mutatingwebhookconfigurations", "", "gate-" + ns, false},
	} {
		if got := can(c.verb, c.group, c.resource, c.ns, c.name); got != c.want {
			t.Errorf("%s %s %s/%s: %v, want %v", c.verb, c.resource, c.ns, c.name, got, c.want)
		}
	}
}

// TestGateCertManager: agent.gate.certManager has cert-manager issue the
// Secret the agent reads (for the service names the API server calls),
// from the release's own bootstrapped CA or a given issuer, and leaves the
// agent only reading that Secret; off, no cert-manager object is rendered.
func TestGateCertManager(t *testing.T) {
	const name, secret = "palisade-palisade-sensor-agent", "palisade-palisade-sensor-agent-webhook-tls"
	for _, tc := range []struct {
		name       string
		certs      map[string]any
		issuer     string // the serving Certificate's issuerRef, "Kind/name"
		bootstraps bool
	}{
		{name: "off", certs: map[string]any{"enabled": false}},
		{name: "own CA", certs: map[string]any{"enabled": true}, issuer: "Issuer/" + name + "-gate-ca", bootstraps: true},
		{name: "given issuer", certs: map[string]any{"enabled": true, "issuerRef": map[string]any{"name": "corp-ca", "kind": "ClusterIssuer"}}, issuer: "ClusterIssuer/corp-ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := render(t, gateValues(map[string]any{"certManager": tc.certs}))
			if err != nil {
				t.Fatal(err)
			}
			objs := agentObjects(t, out)
			e := env(t, get(t, agentDeployment(t, objs), "spec", "template", "spec", "containers", 0).(map[string]any))
			if want := fmt.Sprint(tc.issuer != ""); e["PALISADE_GATE_CERT_MANAGER"] != want || e["PALISADE_GATE_SECRET"] != secret {
				t.Errorf("PALISADE_GATE_CERT_MANAGER %v, PALISADE_GATE_SECRET %v", e["PALISADE_GATE_CERT_MANAGER"], e["PALISADE_GATE_SECRET"])
			}
			cert := objs["Certificate/"+name+"-webhook"]
			_, selfSigned := objs["Issuer/"+name+"-gate-selfsigned"]
			if _, ca := objs["Certificate/"+name+"-gate-ca"]; selfSigned != tc.bootstraps || ca != tc.bootstraps {
				t.Errorf("bootstrap CA rendered: issuer %v, CA certificate %v; want %v", selfSigned, ca, tc.bootstraps)
			}
			verbs := fmt.Sprint(get(t, objs["Role/"+name+"-gate"], "rules"))
			if tc.issuer == "" {
				if cert != nil || !strings.Contains(verbs, "update") {
					t.Errorf("off: certificate %v, role %s", cert, verbs)
				}
				return
			}
			if cert == nil {
				t.Fatalf("no serving Certificate among %v", keys(objs))
			}
			if got := fmt.Sprint(get(t, cert, "spec", "issuerRef", "kind"), "/", get(t, cert, "spec", "issuerRef", "name")); got != tc.issuer {
				t.Errorf("issuerRef %s, want %s", got, tc.issuer)
			}
			if get(t, cert, "spec", "secretName") != secret {
				t.Errorf("secretName %v", get(t, cert, "spec", "secretName"))
			}
			dns := fmt.Sprint(get(t, cert, "spec", "dnsNames"))
			for _, h := range []string{e["PALISADE_GATE_SERVICE"].(string), e["PALISADE_GATE_SERVICE"].(string) + ".security.svc"} {
				if !strings.Contains(dns, h+" ") && !strings.HasSuffix(dns, h+"]") {
					t.Errorf("dnsNames %s lack %s", dns, h)
				}
			}
			if strings.Contains(verbs, "update") || strings.Contains(verbs, "create") {
				t.Errorf("the agent may write the issued secret: %s", verbs)
			}
		})
	}
}

// TestGateRulesRollTheAgents: the agent's pod template carries a checksum
// of the rules, so changed rules roll the agents (they read them at start).
func TestGateRulesRollTheAgents(t *testing.T) {
	sum := func(vals map[string]any) any {
		t.Helper()
		out, err := render(t, vals)
		if err != nil {
			t.Fatal(err)
		}
		return get(t, agentDeployment(t, agentObjects(t, out)), "spec", "template", "metadata", "annotations")
	}
	a, b := sum(gateValues(nil)), sum(gateValues(nil))
	other := gateValues(nil)
	other["agent"].(map[string]any)["gate"].(map[string]any)["rules"] = map[string]any{"rules": []any{map[string]any{"name": "audit-high", "mode": "audit", "conditions": map[string]any{"minSeverity": "high"}}}}
	c := sum(other)
	key := "checksum/gate-rules"
	if a.(map[string]any)[key] == nil || a.(map[string]any)[key] != b.(map[string]any)[key] || a.(map[string]any)[key] == c.(map[string]any)[key] {
		t.Errorf("rules checksum: %v, %v, then %v for other rules", a, b, c)
	}
	if a.(map[string]any)["prometheus.io/scrape"] != "true" {
		t.Errorf("the pod annotations were lost: %v", a)
	}
}
