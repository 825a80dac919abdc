package posture

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
)

// listPage bounds the objects per list call.
const listPage = 500

// Collect reads the objects the checks need from a cluster, page by page.
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
