package helmchart

import (
	"slices"
	"testing"
)

func agentDeployment(t *testing.T, objs map[string]map[string]any) map[string]any {
	t.Helper()
	for k, o := range objs {
		if o["kind"] == "Deployment" {
			return objs[k]
		}
	}
	t.Fatalf("no agent Deployment among %v", keys(objs))
	return nil
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func ofKind(objs map[string]map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, k := range keys(objs) {
		if objs[k]["kind"] == kind {
			out = append(out, objs[k])
		}
	}
	return out
}

// TestAgentRenders: the agent's Deployment is hardened, runs as its own
// service account with its own workload identity, shares the Event Hubs
// namespace, sends to the inventory hub, and has a PDB and a NetworkPolicy
// that lets it reach out to DNS and the given ports only; its RBAC reads
// and writes nothing else, and patches only with remediation on.
func TestAgentRenders(t *testing.T) {
	out, err := render(t, base)
	if err != nil {
		t.Fatal(err)
	}
	objs := agentObjects(t, out)
	d := agentDeployment(t, objs)
	sensor := objects(t, out)["DaemonSet"]
	sel := get(t, sensor, "spec", "selector", "matchLabels").(map[string]any)
	podLabels := get(t, d, "spec", "template", "metadata", "labels").(map[string]any)
	overlap := true
	for k, v := range sel {
		overlap = overlap && podLabels[k] == v
	}
	if overlap {
		t.Errorf("the sensor DaemonSet's selector %v matches the agent's pods %v", sel, podLabels)
	}
	if podLabels["azure.workload.identity/use"] != "true" || get(t, d, "spec", "replicas") != float64(1) && get(t, d, "spec", "replicas") != 1 {
		t.Errorf("agent pod labels %v, replicas %v", podLabels, get(t, d, "spec", "replicas"))
	}
	c := get(t, d, "spec", "template", "spec", "containers", 0).(map[string]any)
	sc := c["securityContext"].(map[string]any)
	if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false || sc["privileged"] != false ||
		!slices.Equal(get(t, sc, "capabilities", "drop").([]any), []any{"ALL"}) {
		t.Errorf("agent security context %v", sc)
	}
	e := env(t, c)
	if e["PALISADE_AGENT_CLUSTER_ID"] != base["clusterId"] || e["PALISADE_AGENT_EVENTHUBS_NAMESPACE"] != "palisade.servicebus.windows.net" ||
		e["PALISADE_AGENT_EVENTHUB_NAME"] != "inventory" || e["PALISADE_AGENT_REMEDIATION"] != "false" || e["PALISADE_AGENT_LEADER_ELECTION"] != "true" {
		t.Errorf("agent env %v", e)
	}
	if get(t, e["PALISADE_AGENT_NAME"], "fieldRef", "fieldPath") != "metadata.name" || get(t, e["GOMEMLIMIT"], "resourceFieldRef", "resource") != "limits.memory" {
		t.Errorf("agent name %v, GOMEMLIMIT %v", e["PALISADE_AGENT_NAME"], e["GOMEMLIMIT"])
	}
	sas := ofKind(objs, "ServiceAccount")
	if len(sas) != 1 || get(t, sas[0], "metadata", "annotations", "azure.workload.identity/client-id") != "00000000-0000-0000-0000-000000000002" ||
		get(t, d, "spec", "template", "spec", "serviceAccountName") != get(t, sas[0], "metadata", "name") {
		t.Errorf("agent service account %v", sas)
	}
	if pdb := ofKind(objs, "PodDisruptionBudget"); len(pdb) != 1 || get(t, pdb[0], "spec", "maxUnavailable") != 1 && get(t, pdb[0], "spec", "maxUnavailable") != float64(1) {
		t.Errorf("PDB %v", pdb)
	}
	np := ofKind(objs, "NetworkPolicy")
	if len(np) != 1 || !slices.Equal(get(t, np[0], "spec", "policyTypes").([]any), []any{"Ingress", "Egress"}) {
		t.Fatalf("NetworkPolicy %v", np)
	}
	var ports []any
	for _, rule := range get(t, np[0], "spec", "egress").([]any) {
		for _, p := range rule.(map[string]any)["ports"].([]any) {
			ports = append(ports, p.(map[string]any)["port"])
		}
	}
	if len(ports) != 5 { // 53/udp, 53/tcp, 443, 5671, 6443
		t.Errorf("egress ports %v", ports)
	}
	var verbs []any
	for _, role := range append(ofKind(objs, "ClusterRole"), ofKind(objs, "Role")...) {
		for _, r := range role["rules"].([]any) {
			verbs = append(verbs, r.(map[string]any)["verbs"].([]any)...)
			for _, res := range r.(map[string]any)["resources"].([]any) {
				if res == "secrets" || res == "configmaps" {
					t.Errorf("%s grants %s", get(t, role, "metadata", "name"), res)
				}
			}
		}
	}
	for _, v := range verbs {
		if !slices.Contains([]any{"get", "list", "watch", "create", "update"}, v) {
			t.Errorf("the default RBAC grants %v", v)
		}
	}

	// Remediation on: patch on the workloads, nothing more; it needs the API.
	vals := map[string]any{"clusterId": "c", "eventHubs": base["eventHubs"], "agent": map[string]any{
		"workloadIdentity": map[string]any{"clientId": "x"}, "remediation": map[string]any{"enabled": true},
		"api": map[string]any{"url": "https://palisade.azurewebsites.net", "keySecret": "palisade-api"}}}
	out, err = render(t, vals)
	if err != nil {
		t.Fatal(err)
	}
	objs = agentObjects(t, out)
	var patch []string
	for _, role := range ofKind(objs, "ClusterRole") {
		for _, r := range role["rules"].([]any) {
			rule := r.(map[string]any)
			if slices.Contains(rule["verbs"].([]any), "patch") {
				if !slices.Equal(rule["verbs"].([]any), []any{"patch"}) {
					t.Errorf("remediation rule %v", rule)
				}
				for _, res := range rule["resources"].([]any) {
					patch = append(patch, res.(string))
				}
			}
		}
	}
	slices.Sort(patch)
	if !slices.Equal(patch, []string{"cronjobs", "daemonsets", "deployments", "replicasets", "statefulsets"}) {
		t.Errorf("patchable %v", patch)
	}
	e = env(t, get(t, agentDeployment(t, objs), "spec", "template", "spec", "containers", 0).(map[string]any))
	if e["PALISADE_AGENT_REMEDIATION"] != "true" || e["PALISADE_AGENT_API_URL"] != "https://palisade.azurewebsites.net" ||
		get(t, e["PALISADE_AGENT_API_KEY"], "secretKeyRef", "name") != "palisade-api" {
		t.Errorf("agent env with remediation %v", e)
	}
	delete(vals["agent"].(map[string]any), "api")
	if _, err := render(t, vals); err == nil {
		t.Error("remediation without the API rendered")
	}
	// Turned off, nothing of the agent is rendered.
	if out, err := render(t, map[string]any{"clusterId": "c", "eventHubs": base["eventHubs"], "agent": map[string]any{"enabled": false}}); err != nil || len(agentObjects(t, out)) != 0 {
		t.Errorf("agent disabled: %v, %v", keys(agentObjects(t, out)), err)
	}
}
