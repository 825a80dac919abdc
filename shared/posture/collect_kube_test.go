package posture

import (
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/tests/kubeapi"
)

func TestMain(m *testing.M) { kubeapi.Main(m) }

// crd defines a custom resource that keeps any field.
func crd(group, version, kind, plural, scope string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": plural + "." + group},
		"spec": map[string]any{
			"group": group, "scope": scope,
			"names": map[string]any{"kind": kind, "plural": plural, "listKind": kind + "List", "singular": ""},
			"versions": []any{map[string]any{"name": version, "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
}

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
	crdRes := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	type def struct{ group, version, kind, plural, scope string }
	defs := []def{
		{"cilium.io", "v2", "CiliumNetworkPolicy", "ciliumnetworkpolicies", "Namespaced"},
		{"cilium.io", "v2", "CiliumClusterwideNetworkPolicy", "ciliumclusterwidenetworkpolicies", "Cluster"},
		{"crd.projectcalico.org", "v1", "NetworkPolicy", "networkpolicies", "Namespaced"},
		{"crd.projectcalico.org", "v1", "GlobalNetworkPolicy", "globalnetworkpolicies", "Cluster"},
		{"example.com", "v1", "Widget", "widgets", "Namespaced"},
		{"example.com", "v1", "Gadget", "gadgets", "Namespaced"},
	}
	for _, d := range defs {
		if _, err := dc.Resource(crdRes).Create(ctx, crd(d.group, d.version, d.kind, d.plural, d.scope), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create CRD %s: %v", d.plural, err)
		}
	}
	// The API server serves a CRD's resource once it is established.
	for _, d := range defs {
		gvr := schema.GroupVersionResource{Group: d.group, Version: d.version, Resource: d.plural}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := dc.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("%s not served: %v", gvr, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
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
