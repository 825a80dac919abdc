package posture

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
)

// fidelity assesses testdata/fidelity with the test settings, changed by
// edit, and the manifest options.
func fidelity(t *testing.T, mo ManifestOptions, edit func(*Options)) *Report {
	t.Helper()
	objs, err := LoadManifestDir("testdata/fidelity", mo)
	if err != nil {
		t.Fatal(err)
	}
	opts := testConfig(t, "")
	if edit != nil {
		edit(&opts)
	}
	rep, err := NewEngine(opts, nil, nil, nil, nil, clock).Assess(t.Context(), &Snapshot{Name: "fidelity", Objects: objs})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func result(t *testing.T, rep *Report, check, resource string) model.PostureResult {
	t.Helper()
	for _, r := range rep.Results {
		if r.CheckID == check && r.Resource == resource {
			return r
		}
	}
	t.Fatalf("no %s result for %s", check, resource)
	return model.PostureResult{}
}

// TestManifestShapes: objects in removed API versions, Cilium and Calico
// policies, objects without a namespace and a service account mounting its
// token give the results a user expects.
func TestManifestShapes(t *testing.T) {
	rep := fidelity(t, ManifestOptions{}, nil)
	tests := []struct {
		name, check, resource, status, message string
	}{
		{"batch/v1beta1 CronJob", "privileged-containers", "CronJob/legacy/nightly", model.PostureFail, "container backup: privileged: true"},
		{"batch/v2alpha1 CronJob", "privileged-containers", "CronJob/legacy/hourly", model.PostureFail, "container ping: privileged: true"},
		{"extensions/v1beta1 Ingress", "https-ingress", "Ingress/legacy/old-web", model.PostureFail, "no spec.tls: served over plain HTTP"},
		{"networking/v1beta1 Ingress", "https-ingress", "Ingress/legacy/tls-web", model.PosturePass, ""},
		{"apps/v1beta1 Deployment", "host-network-ports", "Deployment/legacy/api", model.PostureFail, "hostNetwork: true"},
		{"apps/v1beta2 DaemonSet", "host-namespaces", "DaemonSet/legacy/logs", model.PostureFail, "hostPID: true"},
		{"extensions/v1beta1 ReplicaSet", "sys-admin-capability", "ReplicaSet/legacy/worker", model.PostureFail, "container worker: adds SYS_ADMIN"},
		{"extensions/v1beta1 NetworkPolicy", "namespace-network-policy", "Namespace/legacy", model.PosturePass, "covered by NetworkPolicy/deny-all"},
		{"rbac v1beta1 ClusterRole", "high-privilege-roles", "ClusterRole/old-reader", model.PostureFail,
			"rule 1 reads every resource of the core API group, Secrets included, exec into or attach to pods (get or create on pods/exec or pods/attach), the kubelet API through nodes/proxy"},
		{"CiliumNetworkPolicy", "namespace-network-policy", "Namespace/cilium-local", model.PosturePass, "covered by CiliumNetworkPolicy/deny-ingress"},
		{"CiliumClusterwideNetworkPolicy and GlobalNetworkPolicy", "namespace-network-policy", "Namespace/payments", model.PosturePass,
			"covered by CiliumClusterwideNetworkPolicy/pci-lockdown, GlobalNetworkPolicy/billing-and-payments"},
		{"no policy selects it", "namespace-network-policy", "Namespace/marketing", model.PostureFail,
			"no NetworkPolicy, CiliumNetworkPolicy or Calico network policy covers the namespace"},
		{"Calico v3 NetworkPolicy", "namespace-network-policy", "Namespace/calico-v3", model.PosturePass, "covered by NetworkPolicy/allow-web"},
		{"Calico CRD NetworkPolicy", "namespace-network-policy", "Namespace/calico-crd", model.PosturePass, "covered by NetworkPolicy/default.deny"},
		{"GlobalNetworkPolicy namespaceSelector", "namespace-network-policy", "Namespace/billing", model.PosturePass, "covered by GlobalNetworkPolicy/billing-and-payments"},
		{"GlobalNetworkPolicy selector", "namespace-network-policy", "Namespace/ops", model.PosturePass, "covered by GlobalNetworkPolicy/default.pods-only-in-ops"},
		{"no namespace: default", "default-namespace", "Deployment/default/builder", model.PostureFail, "in the default namespace"},
		{"service account link without namespaces", "automount-service-account-token", "Deployment/default/quiet", model.PosturePass, ""},
		{"token-mounting service account", "service-account-token-automount", "ServiceAccount/default/builder", model.PostureFail,
			"automountServiceAccountToken: true; mounted by Deployment/default/builder"},
		{"quiet service account", "service-account-token-automount", "ServiceAccount/default/quiet", model.PosturePass, ""},
		{"Localhost seccomp, default allow-list", "seccomp-profile", "Deployment/default/builder", model.PostureFail,
			"container builder: seccomp profile localhost/profiles/builder.json not allowed (allowed: runtime/default, docker/default)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := result(t, rep, tt.check, tt.resource)
			if diff := cmp.Diff([]string{tt.status, tt.message}, []string{r.Status, r.Message}); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
	want := []model.PostureNotAssessed{
		{Kind: "PodSecurityPolicy", APIVersion: "policy/v1beta1", Name: "restricted", Source: "testdata/fidelity/deprecated.yaml", Document: 11, Reason: ReasonRemovedKind},
		{Kind: "Certificate", APIVersion: "cert-manager.io/v1", Name: "builder-tls", Source: "testdata/fidelity/workloads.yaml", Document: 4, Reason: ReasonCustomResource},
		{Kind: "Deploymnet", APIVersion: "apps/v1", Name: "typo", Source: "testdata/fidelity/workloads.yaml", Document: 5, Reason: "kind Deploymnet is not known in API version apps/v1"},
	}
	if diff := cmp.Diff(want, rep.NotAssessed); diff != "" {
		t.Errorf("not assessed (-want +got)\n%s", diff)
	}
}

// TestManifestOther: built-in kinds no check reads are kept, older versions
// as the current one, for custom policies.
func TestManifestOther(t *testing.T) {
	objs, err := LoadManifestDir("testdata/fidelity", ManifestOptions{Namespace: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range objs.Other {
		got = append(got, u.GetAPIVersion()+" "+u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName())
	}
	want := []string{"policy/v1 PodDisruptionBudget legacy/api", "v1 ConfigMap ci/builder-config"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("other objects (-want +got)\n%s", diff)
	}
	for _, in := range objs.Ingresses {
		if in.Name == "old-web" {
			b := in.Spec.DefaultBackend
			if b == nil || b.Service == nil || b.Service.Name != "web" || b.Service.Port.Number != 80 {
				t.Errorf("spec.backend not read as defaultBackend: %+v", b)
			}
			p := in.Spec.Rules[0].HTTP.Paths[0]
			if p.Backend.Service == nil || p.Backend.Service.Port.Name != "http" || p.PathType == nil || *p.PathType != "ImplementationSpecific" {
				t.Errorf("path backend not upgraded: %+v", p)
			}
		}
	}
}

// TestManifestNamespace: with a manifest namespace, objects without one
// land there, and the service-account links follow them.
func TestManifestNamespace(t *testing.T) {
	rep := fidelity(t, ManifestOptions{Namespace: "ci"}, nil)
	if r := result(t, rep, "default-namespace", "Deployment/ci/builder"); r.Status != model.PosturePass {
		t.Errorf("Deployment/ci/builder: %s %s", r.Status, r.Message)
	}
	if r := result(t, rep, "service-account-token-automount", "ServiceAccount/ci/builder"); !strings.Contains(r.Message, "mounted by Deployment/ci/builder") {
		t.Errorf("ServiceAccount/ci/builder: %s", r.Message)
	}
	if r := result(t, rep, "automount-service-account-token", "Deployment/ci/quiet"); r.Status != model.PosturePass {
		t.Errorf("Deployment/ci/quiet: %s %s", r.Status, r.Message)
	}
	if r := result(t, rep, "https-ingress", "Ingress/legacy/old-web"); r.Namespace != "legacy" {
		t.Errorf("an object with a namespace moved to %s", r.Namespace)
	}
}

// TestManifestSeccompAllowList: the Localhost profile passes once listed.
func TestManifestSeccompAllowList(t *testing.T) {
	rep := fidelity(t, ManifestOptions{}, func(o *Options) {
		o.AllowedSeccompProfiles = []string{"runtime/default", "localhost/profiles/builder.json"}
	})
	if r := result(t, rep, "seccomp-profile", "Deployment/default/builder"); r.Status != model.PosturePass {
		t.Errorf("%s %s", r.Status, r.Message)
	}
}

// TestPoliciesSeeOtherKinds: custom policies evaluate kinds no built-in
// check reads, older versions as the current one, and the Cilium and
// Calico policies.
func TestPoliciesSeeOtherKinds(t *testing.T) {
	p, perr := CompilePolicy(t.Context(), "pdb.rego", `# METADATA
# custom:
#   kinds: [PodDisruptionBudget, CiliumClusterwideNetworkPolicy]
package palisade.pdb

violation contains {"msg": msg} if {
	msg := sprintf("%s %s", [input.apiVersion, input.kind])
}
`)
	if perr != nil {
		t.Fatal(perr)
	}
	objs, err := LoadManifestDir("testdata/fidelity", ManifestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := NewEngine(testConfig(t, ""), []*Policy{p}, nil, nil, nil, clock).Assess(t.Context(), &Snapshot{Name: "c", Objects: objs})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rep.Results {
		if r.CheckID == p.ID {
			got[r.Resource] = r.Message
		}
	}
	want := map[string]string{
		"PodDisruptionBudget/legacy/api":               "policy/v1 PodDisruptionBudget",
		"CiliumClusterwideNetworkPolicy/pci-lockdown":  "cilium.io/v2 CiliumClusterwideNetworkPolicy",
		"CiliumClusterwideNetworkPolicy/host-firewall": "cilium.io/v2 CiliumClusterwideNetworkPolicy",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("policy results (-want +got)\n%s", diff)
	}
}
