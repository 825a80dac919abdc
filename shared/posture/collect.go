package posture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/palisade-sec/palisade/shared/model"
)

// listPage bounds the objects per list call.
const listPage = 500

// Clients are a cluster's typed client and the dynamic client, with the same
// connection, that reads custom resources. The Sources' Kube methods return
// them.
type Clients struct {
	kubernetes.Interface
	Dynamic dynamic.Interface
}

// DynamicClient returns the dynamic client.
func (c *Clients) DynamicClient() dynamic.Interface { return c.Dynamic }

// NewClients opens both clients of rc.
func NewClients(rc *rest.Config) (*Clients, error) {
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &Clients{Interface: kc, Dynamic: dc}, nil
}

// DynamicClient is a Kubernetes client that also reads custom resources,
// as Clients does.
type DynamicClient interface {
	DynamicClient() dynamic.Interface
}

// Collect reads the objects the checks need from a cluster, page by page.
// When kc is also a DynamicClient (Clients), the API server's discovery
// tells which custom resources it serves: the network policies of Cilium
// and Calico are read, and every other custom resource kind with objects
// is listed in NotAssessed with its count.
func Collect(ctx context.Context, kc kubernetes.Interface) (Objects, error) {
	var o Objects
	steps := []struct {
		what string
		fn   func(context.Context, metav1.ListOptions) (string, error)
	}{
		{"namespaces", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.CoreV1().Namespaces().List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"pods", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.CoreV1().Pods("").List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"deployments", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.AppsV1().Deployments("").List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"daemonsets", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.AppsV1().DaemonSets("").List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"statefulsets", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.AppsV1().StatefulSets("").List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"replicasets", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.AppsV1().ReplicaSets("").List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"jobs", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.BatchV1().Jobs("").List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"cronjobs", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.BatchV1().CronJobs("").List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"services", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.CoreV1().Services("").List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"serviceaccounts", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.CoreV1().ServiceAccounts("").List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"ingresses", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.NetworkingV1().Ingresses("").List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"networkpolicies", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.NetworkingV1().NetworkPolicies("").List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"roles", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.RbacV1().Roles("").List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"clusterroles", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.RbacV1().ClusterRoles().List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"rolebindings", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.RbacV1().RoleBindings("").List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
		{"clusterrolebindings", func(ctx context.Context, lo metav1.ListOptions) (string, error) {
			l, err := kc.RbacV1().ClusterRoleBindings().List(ctx, lo)
			return addAll(&o, l, err, func() []runtime.Object { return ptrs(l.Items) })
		}},
	}
	for _, s := range steps {
		lo := metav1.ListOptions{Limit: listPage}
		for {
			next, err := s.fn(ctx, lo)
			if err != nil {
				return o, fmt.Errorf("list %s: %w", s.what, err)
			}
			if next == "" {
				break
			}
			lo.Continue = next
		}
	}
	var dc dynamic.Interface
	if d, ok := kc.(DynamicClient); ok {
		dc = d.DynamicClient()
	}
	if err := collectCustom(ctx, kc.Discovery(), dc, &o); err != nil {
		return o, err
	}
	return o, nil
}

// notCustom are API groups served beside the built-in ones that hold no
// objects to assess: the metrics APIs answer with live measurements.
var notCustom = map[string]bool{"metrics.k8s.io": true, "custom.metrics.k8s.io": true, "external.metrics.k8s.io": true}

// collectCustom reads the custom resources the API server serves: Cilium and
// Calico network policies into o.CNIPolicies, and a NotAssessed entry for
// every other kind that has objects. A group whose discovery fails is
// reported as not assessed too.
func collectCustom(ctx context.Context, disc discovery.DiscoveryInterface, dc dynamic.Interface, o *Objects) error {
	lists, err := disc.ServerPreferredResources()
	if err != nil {
		var failed *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &failed) {
			return fmt.Errorf("discover API resources: %w", err)
		}
		for gv, gerr := range failed.Groups {
			o.NotAssessed = append(o.NotAssessed, model.PostureNotAssessed{Kind: "*", APIVersion: gv.String(), Source: "cluster",
				Reason: "discovery of the API group failed: " + gerr.Error()})
		}
	}
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil || builtinGroup(gv.Group) || notCustom[gv.Group] {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			gvr, gvk := gv.WithResource(r.Name), gv.WithKind(r.Kind)
			na := model.PostureNotAssessed{Kind: r.Kind, APIVersion: gv.String(), Source: "cluster", Reason: ReasonCustomResource}
			if dc == nil {
				if _, ok := cniPolicyKinds[gvk]; ok {
					na.Reason = "no dynamic client to read this network policy kind"
					o.NotAssessed = append(o.NotAssessed, na)
				}
				continue
			}
			if _, ok := cniPolicyKinds[gvk]; ok {
				if err := listAll(ctx, dc.Resource(gvr), func(u *unstructured.Unstructured) {
					u.SetAPIVersion(gv.String())
					u.SetKind(r.Kind)
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

// addAll adds one page of a list to o and returns its continue token.
func addAll(o *Objects, list interface{ GetContinue() string }, err error, items func() []runtime.Object) (string, error) {
	if err != nil {
		return "", err
	}
	for _, obj := range items() {
		o.Add(obj)
	}
	return list.GetContinue(), nil
}

// ptrs returns pointers to the items of a list as runtime objects.
func ptrs[T any, P interface {
	*T
	runtime.Object
}](items []T) []runtime.Object {
	out := make([]runtime.Object, len(items))
	for i := range items {
		out[i] = P(&items[i])
	}
	return out
}
