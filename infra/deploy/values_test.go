package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

const clusterID = "/subscriptions/0000/resourceGroups/aks-rg/providers/Microsoft.ContainerService/managedClusters/prod-aks"

// outputsFile writes a `tofu output -json` file holding values.
func outputsFile(t *testing.T, values map[string]any) string {
	t.Helper()
	out := map[string]any{}
	for k, v := range values {
		out[k] = map[string]any{"sensitive": false, "type": "string", "value": v}
	}
	b, _ := json.Marshal(out)
	path := filepath.Join(t.TempDir(), "outputs.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func goodOutputs() map[string]any {
	return map[string]any{
		"aks_cluster_ids":             map[string]string{"prod": clusterID},
		"sensor_service_account":      map[string]string{"namespace": "palisade", "name": "palisade-sensor"},
		"sensor_client_id":            "11111111-2222-3333-4444-555555555555",
		"eventhubs_namespace_fqdn":    "ns.servicebus.windows.net",
		"runtime_eventhub":            "runtime",
		"image_registry_login_server": "reg.azurecr.io",
		"agent_service_account":       map[string]string{"namespace": "palisade", "name": "palisade-agent"},
		"agent_client_id":             "66666666-7777-8888-9999-000000000000",
		"inventory_eventhub":          "inventory",
	}
}

func TestParseImageRef(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := map[string]imageRef{
		"ghcr.io/o/palisade-sensor:0.2.0":          {Repository: "ghcr.io/o/palisade-sensor", Tag: "0.2.0"},
		"localhost:5000/palisade-sensor:dev":       {Repository: "localhost:5000/palisade-sensor", Tag: "dev"},
		"reg.azurecr.io/palisade-sensor@" + digest: {Repository: "reg.azurecr.io/palisade-sensor", Digest: digest},
	}
	for in, want := range tests {
		got, err := parseImageRef(in, "PALISADE_SENSOR_IMAGE")
		if err != nil || got != want {
			t.Errorf("parseImageRef(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"localhost:5000/palisade-sensor", "reg.azurecr.io/x@sha256:12", "UPPER/case:1", ""} {
		if got, err := parseImageRef(bad, "PALISADE_SENSOR_IMAGE"); err == nil {
			t.Errorf("parseImageRef(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestValuesRefuseIncompleteOutputs(t *testing.T) {
	tests := map[string]struct {
		change func(map[string]any)
		want   string
	}{
		"no clusters output": {func(o map[string]any) { delete(o, "aks_cluster_ids") }, `no output "aks_cluster_ids": apply this version's Terraform first`},
		"no registry output": {func(o map[string]any) { delete(o, "image_registry_login_server") }, `no output "image_registry_login_server"`},
		"empty client id":    {func(o map[string]any) { o["sensor_client_id"] = "" }, `output "sensor_client_id" in`},
		"wrong type":         {func(o map[string]any) { o["aks_cluster_ids"] = []string{clusterID} }, `output "aks_cluster_ids" in`},
		"not a cluster id": {func(o map[string]any) {
			o["aks_cluster_ids"] = map[string]string{"prod": "/subscriptions/0000/resourceGroups/rg"}
		}, `cluster prod: "/subscriptions/0000/resourceGroups/rg" is not an AKS resource id`},
		"key unfit for a file": {func(o map[string]any) { o["aks_cluster_ids"] = map[string]string{"../x": clusterID} }, `cluster key "../x"`},
		"no service account":   {func(o map[string]any) { o["sensor_service_account"] = map[string]string{"namespace": "palisade"} }, "needs namespace and name"},
		"no agent identity":    {func(o map[string]any) { delete(o, "agent_client_id") }, `no output "agent_client_id"`},
		"agent elsewhere": {func(o map[string]any) {
			o["agent_service_account"] = map[string]string{"namespace": "other", "name": "palisade-agent"}
		}, `must name a service account in the sensor's namespace "palisade"`},
	}
	// A built sensor image, so the values name it by digest in the registry.
	images := t.TempDir()
	idx, err := random.Index(64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"palisade-sensor", "palisade-agent"} {
		if err := writeLayoutFile(filepath.Join(images, name+".tar"), idx, "1", time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			o := goodOutputs()
			tt.change(o)
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{"values", "-outputs", outputsFile(t, o), "-out", t.TempDir(), "-images", images}, func(string) string { return "" }, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrOutputs) {
				t.Errorf("error %v; want ErrOutputs saying %q", err, tt.want)
			}
		})
	}
}

func TestValuesNeedAnImage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"values", "-outputs", outputsFile(t, goodOutputs()), "-out", t.TempDir(), "-images", t.TempDir()},
		func(string) string { return "" }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "run make images, or set PALISADE_SENSOR_IMAGE") {
		t.Errorf("error %v", err)
	}
}

// TestValuesFromOverride: PALISADE_SENSOR_IMAGE names the image; the file
// is written and listed with the cluster's coordinates.
func TestValuesFromOverride(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		return map[string]string{"PALISADE_SENSOR_IMAGE": "ghcr.io/o/palisade-sensor:0.2.0", "PALISADE_AGENT_IMAGE": "ghcr.io/o/palisade-agent:0.2.0"}[k]
	}
	if err := run(t.Context(), []string{"values", "-outputs", outputsFile(t, goodOutputs()), "-out", out}, getenv, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(out, "palisade-sensor-prod.yaml")
	if diff := cmp.Diff("prod\t0000\taks-rg\tprod-aks\tpalisade\t"+file+"\n", stdout.String()); diff != "" {
		t.Errorf("listing (-want +got):\n%s", diff)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "  repository: ghcr.io/o/palisade-sensor\n  tag: 0.2.0\n") || strings.Contains(string(b), "digest") ||
		!strings.Contains(string(b), "    repository: ghcr.io/o/palisade-agent\n    tag: 0.2.0\n") {
		t.Errorf("values file:\n%s", b)
	}
}

func TestOutputAndClusters(t *testing.T) {
	f := outputsFile(t, goodOutputs())
	var stdout, stderr bytes.Buffer
	getenv := func(string) string { return "" }
	if err := run(t.Context(), []string{"output", "-outputs", f, "runtime_eventhub"}, getenv, &stdout, &stderr); err != nil || stdout.String() != "runtime\n" {
		t.Errorf("output = %q, %v", stdout.String(), err)
	}
	stdout.Reset()
	if err := run(t.Context(), []string{"clusters", "-outputs", f}, getenv, &stdout, &stderr); err != nil || stdout.String() != "prod\t0000\taks-rg\tprod-aks\tpalisade\n" {
		t.Errorf("clusters = %q, %v", stdout.String(), err)
	}
	for _, args := range [][]string{{}, {"nope"}, {"output", "-outputs", f}, {"push", "x.tar"}, {"values", "-outputs", f}, {"clusters"}} {
		if err := run(t.Context(), args, getenv, &stdout, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("run %q: %v, want a usage error", args, err)
		}
	}
}

// TestValuesNameTheBuiltImage: without an override, the values name the
// image `make images` built, at its digest, in the deployment's registry.
func TestValuesNameTheBuiltImage(t *testing.T) {
	images, out := t.TempDir(), t.TempDir()
	idx, err := random.Index(64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	agentIdx, err := random.Index(64, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeLayoutFile(filepath.Join(images, "palisade-sensor.tar"), idx, "1", time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"values", "-outputs", outputsFile(t, goodOutputs()), "-out", out, "-images", images},
		func(string) string { return "" }, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "no palisade-agent image") {
		t.Errorf("without the agent image: %v", err)
	}
	if err := writeLayoutFile(filepath.Join(images, "palisade-agent.tar"), agentIdx, "1", time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), []string{"values", "-outputs", outputsFile(t, goodOutputs()), "-out", out, "-images", images},
		func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "palisade-sensor-prod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	if want := "image:\n  repository: reg.azurecr.io/palisade/palisade-sensor\n  digest: " + d.String() + "\n"; !strings.Contains(string(b), want) {
		t.Errorf("values file does not hold\n%s\n%s", want, b)
	}
	ad, _ := agentIdx.Digest()
	if want := "  image:\n    repository: reg.azurecr.io/palisade/palisade-agent\n    digest: " + ad.String() + "\n"; !strings.Contains(string(b), want) {
		t.Errorf("values file does not hold\n%s\n%s", want, b)
	}
}
