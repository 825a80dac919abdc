package posture

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/palisade-sec/palisade/shared/inventory"
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
	if err := inventory.CollectCustom(ctx, kc.Discovery(), dc, &o); err != nil {
		return o, err
	}
	return o, nil
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
