package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/palisade-sec/palisade/shared/model"
)

// CNIKind is a network policy kind of a CNI plugin.
type CNIKind struct {
	// ClusterWide kinds have no namespace and select across namespaces.
	ClusterWide bool
}

// CNIPolicyKinds are the network policies of Cilium and Calico that count
// as network-policy coverage.
var CNIPolicyKinds = map[schema.GroupVersionKind]CNIKind{
	{Group: "cilium.io", Version: "v2", Kind: "CiliumNetworkPolicy"}:             {},
	{Group: "cilium.io", Version: "v2", Kind: "CiliumClusterwideNetworkPolicy"}:  {ClusterWide: true},
	{Group: "projectcalico.org", Version: "v3", Kind: "NetworkPolicy"}:           {},
	{Group: "projectcalico.org", Version: "v3", Kind: "GlobalNetworkPolicy"}:     {ClusterWide: true},
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "NetworkPolicy"}:       {},
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "GlobalNetworkPolicy"}: {ClusterWide: true},
}

// ReasonCustomResource is why a custom resource is not assessed: no check
// reads its kind.
const ReasonCustomResource = "custom resource of a kind no check reads"

// BuiltinGroup reports whether group is one of Kubernetes' own API groups.
func BuiltinGroup(group string) bool { return scheme.Scheme.IsGroupRegistered(group) }

// listPage bounds the objects per list call.
const listPage = 500

// notCustom are API groups served beside the built-in ones that hold no
// objects to assess: the metrics APIs answer with live measurements.
var notCustom = map[string]bool{"metrics.k8s.io": true, "custom.metrics.k8s.io": true, "external.metrics.k8s.io": true}

// CollectCustom reads the custom resources the API server serves: Cilium
// and Calico network policies into o.CNIPolicies, and a NotAssessed entry
// for every other kind that has objects (or that could not be listed). A
// group whose discovery fails is reported as not assessed too. With no
// dynamic client (dc nil), CNI policy kinds served are reported as not
// assessed. Both posture's direct path and palisade-agent use it, so a
// snapshot holds what a direct read would.
func CollectCustom(ctx context.Context, disc discovery.DiscoveryInterface, dc dynamic.Interface, o *Objects) error {
	lists, err := disc.ServerPreferredResources()
	if err != nil {
		var failed *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &failed) {
			return fmt.Errorf("discover API resources: %w", err)
		}
		groups := make([]schema.GroupVersion, 0, len(failed.Groups))
		for gv := range failed.Groups {
			groups = append(groups, gv)
		}
		slices.SortFunc(groups, func(a, b schema.GroupVersion) int { return strings.Compare(a.String(), b.String()) })
		for _, gv := range groups {
			o.NotAssessed = append(o.NotAssessed, model.PostureNotAssessed{Kind: "*", APIVersion: gv.String(), Source: "cluster",
				Reason: "discovery of the API group failed: " + failed.Groups[gv].Error()})
		}
	}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil || BuiltinGroup(gv.Group) || notCustom[gv.Group] {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			gvr, gvk := gv.WithResource(r.Name), gv.WithKind(r.Kind)
			na := model.PostureNotAssessed{Kind: r.Kind, APIVersion: gv.String(), Source: "cluster", Reason: ReasonCustomResource}
			_, cni := CNIPolicyKinds[gvk]
			if dc == nil {
				if cni {
					na.Reason = "no dynamic client to read this network policy kind"
					o.NotAssessed = append(o.NotAssessed, na)
				}
				continue
			}
			if cni {
				if err := listAll(ctx, dc.Resource(gvr), func(u *unstructured.Unstructured) {
					u.SetAPIVersion(gv.String())
					u.SetKind(r.Kind)
					u.SetManagedFields(nil)
					o.CNIPolicies = append(o.CNIPolicies, *u)
				}); err != nil {
					return fmt.Errorf("list %s: %w", gvr, err)
				}
				continue
			}
			n, err := countObjects(ctx, dc.Resource(gvr))
			if err != nil {
				na.Reason = "could not be listed: " + err.Error()
			} else if na.Count = n; n == 0 {
				continue
			}
			o.NotAssessed = append(o.NotAssessed, na)
		}
	}
	return nil
}

// listAll calls fn on every object of a resource, page by page.
func listAll(ctx context.Context, ri dynamic.ResourceInterface, fn func(*unstructured.Unstructured)) error {
	lo := metav1.ListOptions{Limit: listPage}
	for {
		l, err := ri.List(ctx, lo)
		if err != nil {
			return err
		}
		for i := range l.Items {
			fn(&l.Items[i])
		}
		if lo.Continue = l.GetContinue(); lo.Continue == "" {
			return nil
		}
	}
}

// countObjects counts the objects of a resource with a list of one item
// and the server's remainingItemCount, paging only when the server does not
// say.
func countObjects(ctx context.Context, ri dynamic.ResourceInterface) (int, error) {
	l, err := ri.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return 0, err
	}
	n := len(l.Items)
	if l.GetContinue() == "" {
		return n, nil
	}
	if rest := l.GetRemainingItemCount(); rest != nil {
		return n + int(*rest), nil
	}
	n = 0
	err = listAll(ctx, ri, func(*unstructured.Unstructured) { n++ })
	return n, err
}
