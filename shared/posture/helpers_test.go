package posture

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return testNow }

// testConfig loads the posture settings through the real loader.
func testConfig(t testing.TB, extra map[string]string) config.Posture {
	t.Helper()
	env := map[string]string{
		"PALISADE_TRUSTED_REGISTRIES":          "myacr.azurecr.io",
		"PALISADE_ALLOWED_CAPABILITIES":        "NET_BIND_SERVICE",
		"PALISADE_ALLOWED_HOST_PATHS":          "/var/log:ro",
		"PALISADE_MAX_CPU_LIMIT":               "2",
		"PALISADE_MAX_MEMORY_LIMIT":            "4Gi",
		"PALISADE_POSTURE_EXCLUDED_NAMESPACES": "kube-system",
	}
	for k, v := range extra {
		env[k] = v
	}
	c, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("load settings: %v", err)
	}
	return c.Posture
}

// readObjects decodes every manifest of a folder into typed objects, as a
// fake clientset takes them.
func readObjects(t testing.TB, dir string) []runtime.Object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	var out []runtime.Object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, obj)
		}
	}
	return out
}

// clusterSnapshot loads manifests into a fake clientset, collects them
// through client-go and adds the recorded ARM JSON.
func clusterSnapshot(t testing.TB, manifests, clusterJSON, diagJSON, registryJSON string) (*Snapshot, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset(readObjects(t, manifests)...)
	objs, err := Collect(t.Context(), cs)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	snap := &Snapshot{Objects: objs}
	if clusterJSON != "" {
		cl, err := DecodeCluster(readFile(t, clusterJSON))
		if err != nil {
			t.Fatal(err)
		}
		snap.Cluster, snap.Name = cl, cl.ID
	}
	if diagJSON != "" {
		ds, err := DecodeDiagnosticSettings(readFile(t, diagJSON))
		if err != nil {
			t.Fatal(err)
		}
		snap.Diagnostics = ds
	}
	if registryJSON != "" {
		r, err := DecodeRegistry(readFile(t, registryJSON))
		if err != nil {
			t.Fatal(err)
		}
		snap.Registries = []Registry{*r}
	}
	return snap, cs
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Digests of the test images.
const (
	digestClean      = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digestVulnerable = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	digestLegacy     = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

// seedVulns stores scan results: a clean image of myacr, a vulnerable
// busybox and a vulnerable image of legacyacr.
func seedVulns(t testing.TB, st store.Store) {
	t.Helper()
	ctx := t.Context()
	put := func(c store.Container, pk, id string, v any) {
		if _, err := st.Put(ctx, c, pk, id, v, store.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, img := range []model.Image{
		{ID: digestClean, Digest: digestClean, Registry: "myacr.azurecr.io", Repository: "shop/web", Status: model.ImageActive},
		{ID: digestVulnerable, Digest: digestVulnerable, Registry: "docker.io", Repository: "library/busybox", Status: model.ImageActive},
		{ID: digestLegacy, Digest: digestLegacy, Registry: "legacyacr.azurecr.io", Repository: "billing/api", Status: model.ImageActive},
	} {
		put(store.Images, img.Digest, img.ID, img)
	}
	for _, f := range []model.Finding{
		{Digest: digestClean, VulnID: "CVE-2024-0001", PkgName: "zlib", InstalledVersion: "1.3", Severity: model.SeverityLow, Status: model.FindingOpen},
		{Digest: digestVulnerable, VulnID: "CVE-2024-58251", PkgName: "busybox", InstalledVersion: "1.36.1", Severity: model.SeverityHigh, Status: model.FindingOpen},
		{Digest: digestVulnerable, VulnID: "CVE-2023-42363", PkgName: "busybox", InstalledVersion: "1.36.1", Severity: model.SeverityMedium, Status: model.FindingOpen},
		{Digest: digestLegacy, VulnID: "CVE-2024-3094", PkgName: "xz-utils", InstalledVersion: "5.6.0", Severity: model.SeverityCritical, Status: model.FindingOpen},
		{Digest: digestLegacy, VulnID: "CVE-2023-4863", PkgName: "libwebp", InstalledVersion: "1.2.4", Severity: model.SeverityHigh, Status: model.FindingResolved},
	} {
		f.ID = model.FindingID(f.Digest, f.VulnID, f.PkgName, "", f.InstalledVersion)
		f.SeverityRank = f.Severity.Rank()
		put(store.Findings, f.Digest, f.ID, f)
	}
}

func podSpecMounting(volume string, readOnly bool) *corev1.PodSpec {
	return &corev1.PodSpec{Containers: []corev1.Container{{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: volume, MountPath: "/m", ReadOnly: readOnly}}}}}
}
