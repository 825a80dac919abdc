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

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return testNow }

// testConfig is the settings' defaults (shared/config) with a trusted
// registry, one allowed capability and host path, limits and one excluded
// namespace, and custom policies from policyDir.
func testConfig(_ testing.TB, policyDir string) Options {
	return Options{
		TrustedRegistries:       []string{"myacr.azurecr.io"},
		AllowedServicePorts:     []int{80, 443},
		AllowedCapabilities:     []string{"NET_BIND_SERVICE"},
		AllowedHostPaths:        []string{"/var/log:ro"},
		AllowedAppArmorProfiles: []string{"runtime/default"},
		AllowedSeccompProfiles:  []string{"runtime/default", "docker/default"},
		MaxCPULimit:             "2",
		MaxMemoryLimit:          "4Gi",
		MinKubernetesVersion:    "1.30",
		ExcludedNamespaces:      []string{"kube-system"},
		VulnSeverity:            model.SeverityHigh,
		PolicyDir:               policyDir,
	}
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
	at := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	finding := func(digest, vuln, pkg, version string, sev model.Severity) model.Finding {
		return model.Finding{ID: model.FindingID(digest, vuln, pkg, "", version), Digest: digest, VulnID: vuln, PkgName: pkg,
			InstalledVersion: version, Severity: sev, SeverityRank: sev.Rank()}
	}
	libwebp := finding(digestLegacy, "CVE-2023-4863", "libwebp", "1.2.4", model.SeverityHigh)
	for _, sc := range []vulnstore.Scan{
		{Image: model.Image{Digest: digestClean, Registry: "myacr.azurecr.io", Repository: "shop/web", Status: model.ImageActive},
			Findings: []model.Finding{finding(digestClean, "CVE-2024-0001", "zlib", "1.3", model.SeverityLow)}},
		{Image: model.Image{Digest: digestVulnerable, Registry: "docker.io", Repository: "library/busybox", Status: model.ImageActive},
			Findings: []model.Finding{finding(digestVulnerable, "CVE-2024-58251", "busybox", "1.36.1", model.SeverityHigh),
				finding(digestVulnerable, "CVE-2023-42363", "busybox", "1.36.1", model.SeverityMedium)}},
		// Scanned with libwebp vulnerable, then rescanned with it fixed.
		{Image: model.Image{Digest: digestLegacy, Registry: "legacyacr.azurecr.io", Repository: "billing/api", Status: model.ImageActive},
			Findings: []model.Finding{finding(digestLegacy, "CVE-2024-3094", "xz-utils", "5.6.0", model.SeverityCritical), libwebp}},
		{Image: model.Image{Digest: digestLegacy, Registry: "legacyacr.azurecr.io", Repository: "billing/api", Status: model.ImageActive},
			Findings: []model.Finding{finding(digestLegacy, "CVE-2024-3094", "xz-utils", "5.6.0", model.SeverityCritical)}},
	} {
		sc.SeenAt = at
		at = at.Add(time.Hour)
		if _, err := vulnstore.Record(ctx, st, sc); err != nil {
			t.Fatal(err)
		}
	}
}

func podSpecMounting(volume string, readOnly bool) *corev1.PodSpec {
	return &corev1.PodSpec{Containers: []corev1.Container{{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: volume, MountPath: "/m", ReadOnly: readOnly}}}}}
}
