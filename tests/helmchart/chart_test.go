// Package helmchart renders the Helm charts under infra/helm with Helm's own
// Go packages (what `helm template` runs) and checks what they produce.
package helmchart

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"

	"github.com/palisade-sec/palisade/tests/testenv"
)

// sensorChart is the sensor chart's folder.
func sensorChart(t *testing.T) string {
	return filepath.Join(testenv.Root(t), "infra", "helm", "palisade-sensor")
}

// render is `helm template` of the sensor chart with vals over values.yaml.
func render(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	return renderRelease(t, sensorChart(t), "palisade", "security", vals)
}

// renderRelease is `helm template --namespace ns release chart` with vals
// over the chart's values.yaml.
func renderRelease(t *testing.T, chart, release, ns string, vals map[string]any) (map[string]string, error) {
	t.Helper()
	chrt, err := loader.Load(chart)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	rv, err := util.ToRenderValues(chrt, vals, common.ReleaseOptions{Name: release, Namespace: ns, IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	return engine.Render(chrt, rv)
}

// isAgent reports whether a rendered template is the agent's.
func isAgent(name string) bool { return strings.Contains(name, "/templates/agent-") }

// objects decodes every rendered manifest of the sensor by kind.
func objects(t *testing.T, out map[string]string) map[string]map[string]any {
	t.Helper()
	objs := map[string]map[string]any{}
	for name, o := range manifests(t, out) {
		if !isAgent(name) {
			objs[o["kind"].(string)] = o
		}
	}
	return objs
}

// agentObjects decodes the agent's manifests, by "Kind/name".
func agentObjects(t *testing.T, out map[string]string) map[string]map[string]any {
	t.Helper()
	objs := map[string]map[string]any{}
	for name, o := range manifests(t, out) {
		if isAgent(name) {
			objs[o["kind"].(string)+"/"+get(t, o, "metadata", "name").(string)] = o
		}
	}
	return objs
}

// manifests decodes every document of every rendered template, by
// "template#index".
func manifests(t *testing.T, out map[string]string) map[string]map[string]any {
	t.Helper()
	objs := map[string]map[string]any{}
	for name, text := range out {
		if strings.TrimSpace(text) == "" || strings.HasSuffix(name, ".tpl") {
			continue
		}
		for i, doc := range strings.Split(text, "\n---\n") {
			var o map[string]any
			if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Fatalf("%s is not YAML: %v\n%s", name, err, doc)
			}
			if o != nil {
				objs[name+"#"+strconv.Itoa(i)] = o
			}
		}
	}
	return objs
}

// get walks a decoded object: get(o, "spec", "template", 0, "name").
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: not a map", p)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at %v: not a list of more than %d", p, k)
			}
			v = l[k]
		}
	}
	return v
}

func container(t *testing.T, ds map[string]any, name string) map[string]any {
	t.Helper()
	for _, c := range get(t, ds, "spec", "template", "spec", "containers").([]any) {
		if c.(map[string]any)["name"] == name {
			return c.(map[string]any)
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

func env(t *testing.T, c map[string]any) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, e := range c["env"].([]any) {
		m := e.(map[string]any)
		if v, ok := m["value"]; ok {
			out[m["name"].(string)] = v
		} else {
			out[m["name"].(string)] = m["valueFrom"]
		}
	}
	return out
}

var base = map[string]any{
	"clusterId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1",
	"eventHubs": map[string]any{
		"namespace":        "palisade.servicebus.windows.net",
		"workloadIdentity": map[string]any{"clientId": "00000000-0000-0000-0000-000000000001"},
	},
	"agent": map[string]any{"workloadIdentity": map[string]any{"clientId": "00000000-0000-0000-0000-000000000002"}},
}

func TestDefaultRenderIsHardenedWithWorkloadIdentity(t *testing.T) {
	out, err := render(t, base)
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t, out)
	for _, kind := range []string{"DaemonSet", "ServiceAccount", "ConfigMap"} {
		if objs[kind] == nil {
			t.Fatalf("no %s rendered; got %v", kind, out)
		}
	}
	ds := objs["DaemonSet"]
	sensor := container(t, ds, "sensor")
	sc := sensor["securityContext"].(map[string]any)
	if sc["runAsNonRoot"] != true || sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false ||
		sc["privileged"] != false || !slices.Equal(get(t, sc, "capabilities", "drop").([]any), []any{"ALL"}) {
		t.Errorf("sensor security context %v", sc)
	}
	if _, ok := get(t, sc, "capabilities").(map[string]any)["add"]; ok {
		t.Error("sensor container adds capabilities")
	}
	lim := get(t, sensor, "resources", "limits").(map[string]any)
	if lim["cpu"] == nil || lim["memory"] == nil {
		t.Errorf("sensor limits %v", lim)
	}
	e := env(t, sensor)
	if e["PALISADE_SENSOR_EVENTHUBS_NAMESPACE"] != "palisade.servicebus.windows.net" || e["PALISADE_SENSOR_EVENTHUB_NAME"] != "runtime" ||
		e["PALISADE_SENSOR_HTTP_ADDR"] != "127.0.0.1:2802" || e["PALISADE_SENSOR_SPOOL_DIR"] == nil || e["PALISADE_SENSOR_CLUSTER_ID"] != base["clusterId"] {
		t.Errorf("sensor env %v", e)
	}
	if _, ok := e["PALISADE_SENSOR_EVENTHUBS_CONNECTION_STRING"]; ok {
		t.Error("connection string set with workload identity")
	}
	if get(t, e["PALISADE_SENSOR_NODE_NAME"], "fieldRef", "fieldPath") != "spec.nodeName" {
		t.Errorf("node name %v", e["PALISADE_SENSOR_NODE_NAME"])
	}
	if get(t, ds, "spec", "template", "metadata", "labels", "azure.workload.identity/use") != "true" {
		t.Error("pod not labelled for workload identity")
	}
	sa := objs["ServiceAccount"]
	if get(t, sa, "metadata", "annotations", "azure.workload.identity/client-id") != "00000000-0000-0000-0000-000000000001" {
		t.Errorf("service account annotations %v", get(t, sa, "metadata", "annotations"))
	}
	if get(t, ds, "spec", "template", "spec", "serviceAccountName") != get(t, sa, "metadata", "name") {
		t.Error("daemonset does not use the chart's service account")
	}
	// Falco beside the sensor, posting its JSON to the sensor's loopback port.
	container(t, ds, "falco")
	var falcoCfg map[string]any
	if err := yaml.Unmarshal([]byte(get(t, objs["ConfigMap"], "data", "palisade.yaml").(string)), &falcoCfg); err != nil {
		t.Fatal(err)
	}
	if get(t, falcoCfg, "json_output") != true || get(t, falcoCfg, "http_output", "enabled") != true ||
		get(t, falcoCfg, "http_output", "url") != "http://127.0.0.1:2802/" || get(t, falcoCfg, "grpc_output", "enabled") != false {
		t.Errorf("falco config %v", falcoCfg)
	}
	// The hostPath spool is handed to the sensor's user by a minimal init container.
	ic := get(t, ds, "spec", "template", "spec", "initContainers", 0).(map[string]any)
	if !slices.Equal(get(t, ic, "securityContext", "capabilities", "add").([]any), []any{"CHOWN", "FOWNER"}) {
		t.Errorf("init container capabilities %v", get(t, ic, "securityContext", "capabilities"))
	}
}

func TestGRPCInputAndConnectionString(t *testing.T) {
	out, err := render(t, map[string]any{
		"clusterId": "c1",
		"sensor":    map[string]any{"input": "grpc", "spool": map[string]any{"type": "emptyDir"}},
		"eventHubs": map[string]any{"connectionString": map[string]any{"existingSecret": "eh"}},
		"agent":     map[string]any{"connectionString": map[string]any{"existingSecret": "eh-inventory"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t, out)
	ds := objs["DaemonSet"]
	e := env(t, container(t, ds, "sensor"))
	if e["PALISADE_SENSOR_GRPC_ADDR"] != "unix:///run/falco/falco.sock" || e["PALISADE_SENSOR_HTTP_ADDR"] != "" {
		t.Errorf("sensor env %v", e)
	}
	if get(t, e["PALISADE_SENSOR_EVENTHUBS_CONNECTION_STRING"], "secretKeyRef", "name") != "eh" {
		t.Errorf("connection string from %v", e["PALISADE_SENSOR_EVENTHUBS_CONNECTION_STRING"])
	}
	if _, ok := get(t, ds, "spec", "template", "spec").(map[string]any)["initContainers"]; ok {
		t.Error("init container rendered for an emptyDir spool")
	}
	if _, ok := get(t, ds, "spec", "template", "metadata", "labels").(map[string]any)["azure.workload.identity/use"]; ok {
		t.Error("workload identity label with a connection string")
	}
	var falcoCfg map[string]any
	if err := yaml.Unmarshal([]byte(get(t, objs["ConfigMap"], "data", "palisade.yaml").(string)), &falcoCfg); err != nil {
		t.Fatal(err)
	}
	if get(t, falcoCfg, "grpc_output", "enabled") != true || get(t, falcoCfg, "grpc", "bind_address") != "unix:///run/falco/falco.sock" {
		t.Errorf("falco config %v", falcoCfg)
	}
}

func TestRequiredValuesFail(t *testing.T) {
	tests := map[string]map[string]any{
		"no cluster id": {"eventHubs": base["eventHubs"]},
		"no namespace":  {"clusterId": "c", "eventHubs": map[string]any{"workloadIdentity": map[string]any{"clientId": "x"}}},
		"no client id":  {"clusterId": "c", "eventHubs": map[string]any{"namespace": "n"}},
		"unknown input": {"clusterId": "c", "eventHubs": base["eventHubs"], "sensor": map[string]any{"input": "kafka"}},
		"unknown spool": {"clusterId": "c", "eventHubs": base["eventHubs"], "sensor": map[string]any{"spool": map[string]any{"type": "nfs"}}},
		"short digest":  {"clusterId": "c", "eventHubs": base["eventHubs"], "image": map[string]any{"digest": "sha256:abc"}},
		"tag as digest": {"clusterId": "c", "eventHubs": base["eventHubs"], "image": map[string]any{"digest": "0.1.0"}},
	}
	for name, vals := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := render(t, vals); err == nil {
				t.Error("rendered without error")
			}
		})
	}
}

// TestImageByDigestOrTag: a digest pins both the sensor and its init
// container to repository@digest; without one the tag (or appVersion) is used.
func TestImageByDigestOrTag(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := map[string]struct {
		image map[string]any
		want  string
	}{
		"digest":     {map[string]any{"repository": "r.azurecr.io/palisade/palisade-sensor", "digest": digest, "tag": "ignored"}, "r.azurecr.io/palisade/palisade-sensor@" + digest},
		"tag":        {map[string]any{"repository": "r.azurecr.io/palisade-sensor", "tag": "0.2.0"}, "r.azurecr.io/palisade-sensor:0.2.0"},
		"appVersion": {map[string]any{}, "ghcr.io/palisade-sec/palisade-sensor:0.1.0"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := render(t, map[string]any{"clusterId": "c", "eventHubs": base["eventHubs"], "agent": base["agent"], "image": tt.image})
			if err != nil {
				t.Fatal(err)
			}
			ds := objects(t, out)["DaemonSet"]
			if got := container(t, ds, "sensor")["image"]; got != tt.want {
				t.Errorf("sensor image %v, want %s", got, tt.want)
			}
			if got := get(t, ds, "spec", "template", "spec", "initContainers", 0, "image"); got != tt.want {
				t.Errorf("init container image %v, want %s", got, tt.want)
			}
		})
	}
}
