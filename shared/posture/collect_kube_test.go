package posture

import (
	"fmt"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/tests/kubeapi"
)

func TestMain(m *testing.M) { kubeapi.Main(m) }

func object(apiVersion, kind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "spec": spec}}
	u.SetName(name)
	u.SetNamespace(ns)
	return u
}

// TestCollectCNIPoliciesLive reads Cilium and Calico policies from a real
// API server through the dynamic client once their CRDs exist, and reports
// the custom resources no check reads, with their counts.
func TestCollectCNIPoliciesLive(t *testing.T) {
	s := kubeapi.Shared(t)
	ctx := t.Context()
	dc, err := dynamic.NewForConfig(s.Config())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range [][5]string{
		{"cilium.io", "v2", "CiliumNetworkPolicy", "ciliumnetworkpolicies", "Namespaced"},
		{"cilium.io", "v2", "CiliumClusterwideNetworkPolicy", "ciliumclusterwidenetworkpolicies", "Cluster"},
		{"crd.projectcalico.org", "v1", "NetworkPolicy", "networkpolicies", "Namespaced"},
		{"crd.projectcalico.org", "v1", "GlobalNetworkPolicy", "globalnetworkpolicies", "Cluster"},
		{"example.com", "v1", "Widget", "widgets", "Namespaced"},
		{"example.com", "v1", "Gadget", "gadgets", "Namespaced"},
	} {
		s.CRD(t, d[0], d[1], d[2], d[3], d[4])
	}

	local := s.Namespace(t, nil)
	pci := s.Namespace(t, map[string]string{"tier": "pci"})
	calico := s.Namespace(t, nil)
	calicoCRD := s.Namespace(t, nil)
	open := s.Namespace(t, map[string]string{"tier": "public"})
	create := func(gvr schema.GroupVersionResource, u *unstructured.Unstructured) {
		t.Helper()
		ri := dynamic.ResourceInterface(dc.Resource(gvr))
		if ns := u.GetNamespace(); ns != "" {
			ri = dc.Resource(gvr).Namespace(ns)
		}
		if _, err := ri.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	gvr := func(group, version, plural string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: group, Version: version, Resource: plural}
	}
	create(gvr("cilium.io", "v2", "ciliumnetworkpolicies"), object("cilium.io/v2", "CiliumNetworkPolicy", local, "deny", map[string]any{"endpointSelector": map[string]any{}}))
	create(gvr("cilium.io", "v2", "ciliumclusterwidenetworkpolicies"), object("cilium.io/v2", "CiliumClusterwideNetworkPolicy", "", "pci",
		map[string]any{"endpointSelector": map[string]any{"matchLabels": map[string]any{"k8s:io.cilium.k8s.namespace.labels.tier": "pci"}}}))
	create(gvr("crd.projectcalico.org", "v1", "globalnetworkpolicies"), object("crd.projectcalico.org/v1", "GlobalNetworkPolicy", "", "one",
		map[string]any{"namespaceSelector": fmt.Sprintf("projectcalico.org/name == '%s'", calico)}))
	create(gvr("crd.projectcalico.org", "v1", "networkpolicies"), object("crd.projectcalico.org/v1", "NetworkPolicy", calicoCRD, "deny", map[string]any{"selector": "all()"}))
	for i := range 2 {
		create(gvr("example.com", "v1", "widgets"), object("example.com/v1", "Widget", open, fmt.Sprintf("w%d", i), map[string]any{}))
	}

	clients, err := NewClients(s.Config())
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Collect(ctx, clients)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := NewEngine(testConfig(t, ""), nil, nil, nil, nil, clock).Assess(ctx, &Snapshot{Name: "live", Objects: objs})
	if err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[string]string{
		local:     "covered by CiliumNetworkPolicy/deny",
		pci:       "covered by CiliumClusterwideNetworkPolicy/pci",
		calico:    "covered by GlobalNetworkPolicy/one",
		calicoCRD: "covered by NetworkPolicy/deny",
		open:      "no NetworkPolicy, CiliumNetworkPolicy or Calico network policy covers the namespace",
	} {
		if r := result(t, rep, "namespace-network-policy", "Namespace/"+ns); r.Message != want {
			t.Errorf("%s: %s %q, want %q", ns, r.Status, r.Message, want)
		}
	}
	widget := model.PostureNotAssessed{Kind: "Widget", APIVersion: "example.com/v1", Source: "cluster", Count: 2, Reason: ReasonCustomResource}
	if !slices.Contains(rep.NotAssessed, widget) {
		t.Errorf("not assessed %+v lacks %+v", rep.NotAssessed, widget)
	}
	for _, na := range rep.NotAssessed {
		if na.Kind == "Gadget" || na.APIVersion == "cilium.io/v2" || na.APIVersion == "crd.projectcalico.org/v1" {
			t.Errorf("wrongly not assessed: %+v", na)
		}
	}

	// Without a dynamic client the policies cannot be read: that is said.
	objs, err = Collect(ctx, s.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	var unread []string
	for _, na := range objs.NotAssessed {
		unread = append(unread, na.Kind)
	}
	slices.Sort(unread)
	want := []string{"CiliumClusterwideNetworkPolicy", "CiliumNetworkPolicy", "GlobalNetworkPolicy", "NetworkPolicy"}
	if !slices.Equal(unread, want) || len(objs.CNIPolicies) != 0 {
		t.Errorf("without a dynamic client: not assessed %v, want %v; %d policies", unread, want, len(objs.CNIPolicies))
	}
}
