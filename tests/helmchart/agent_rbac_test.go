package helmchart

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/tests/kubeapi"
)

func TestMain(m *testing.M) { kubeapi.Main(m) }

// TestAgentRBACInARealServer installs the chart's RBAC for the agent in a
// real API server and asks its authorizer: the agent may list and watch
// every kind the inventory carries (found through discovery), hold its
// Lease, read no Secret, and patch workloads only with remediation on.
func TestAgentRBACInARealServer(t *testing.T) {
	s := kubeapi.Shared(t)
	kc := s.Client(t)
	groups, err := restmapper.GetAPIGroupResources(kc.Discovery())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	for _, remediation := range []bool{false, true} {
		t.Run(fmt.Sprintf("remediation=%v", remediation), func(t *testing.T) {
			ns := s.Namespace(t, nil)
			release := "r" + ns[len(ns)-6:] // cluster-scoped names stay apart
			agent := map[string]any{"workloadIdentity": map[string]any{"clientId": "x"}}
			if remediation {
				agent["remediation"] = map[string]any{"enabled": true}
				agent["api"] = map[string]any{"url": "https://palisade.azurewebsites.net", "keySecret": "k"}
			}
			out, err := renderRelease(t, sensorChart(t), release, ns, map[string]any{"clusterId": "c", "eventHubs": base["eventHubs"], "agent": agent})
			if err != nil {
				t.Fatal(err)
			}
			sa, _ := applyRBAC(t, kc, ns, out, isAgent)
			can := access(t, kc, ns, sa)
			for _, k := range inventory.Kinds {
				m, err := mapper.RESTMapping(schema.GroupKind{Group: k.GroupVersion.Group, Kind: k.Name}, k.GroupVersion.Version)
				if err != nil {
					t.Fatalf("%s: %v", k.Name, err)
				}
				for _, verb := range []string{"list", "watch"} {
					if !can(verb, m.Resource.Group, m.Resource.Resource, "", "") {
						t.Errorf("the agent cannot %s %s cluster-wide", verb, m.Resource.Resource)
					}
				}
				if can("delete", m.Resource.Group, m.Resource.Resource, "shop", "x") {
					t.Errorf("the agent can delete %s", m.Resource.Resource)
				}
			}
			for _, verb := range []string{"get", "update"} {
				if !can(verb, "coordination.k8s.io", "leases", ns, "palisade-agent") {
					t.Errorf("the agent cannot %s its Lease", verb)
				}
			}
			if !can("create", "coordination.k8s.io", "leases", ns, "") || can("update", "coordination.k8s.io", "leases", ns, "kube-scheduler") ||
				can("update", "coordination.k8s.io", "leases", "kube-system", "palisade-agent") {
				t.Error("lease rights are not limited to its own Lease")
			}
			if can("get", "", "secrets", ns, "") || can("list", "", "configmaps", "", "") || can("create", "", "pods", "shop", "") {
				t.Error("the agent reads secrets or config maps, or creates pods")
			}
			for _, r := range []struct{ group, resource string }{{"apps", "deployments"}, {"apps", "daemonsets"}, {"apps", "statefulsets"}, {"apps", "replicasets"}, {"batch", "cronjobs"}} {
				if got := can("patch", r.group, r.resource, "shop", "x"); got != remediation {
					t.Errorf("patch %s: %v with remediation %v", r.resource, got, remediation)
				}
				if can("create", r.group, r.resource, "shop", "") || can("update", r.group, r.resource, "shop", "x") {
					t.Errorf("the agent can create or update %s", r.resource)
				}
			}
			if can("patch", "", "pods", "shop", "x") || can("patch", "batch", "jobs", "shop", "x") {
				t.Error("the agent can patch pods or jobs")
			}
		})
	}
}

// applyRBAC creates in a real API server the service account's RBAC
// objects among the rendered templates keep selects (by template name),
// waits until the authorizer grants the first rule of each role, and
// returns the service account's name and the Roles created.
func applyRBAC(t *testing.T, kc kubernetes.Interface, ns string, out map[string]string, keep func(name string) bool) (sa string, roles []rbacv1.Role) {
	t.Helper()
	ctx := t.Context()
	var first []rbacv1.PolicyRule // of each role, with its namespace in want
	var where []string
	for name, o := range manifests(t, out) {
		if !keep(name) {
			continue
		}
		raw, _ := yaml.Marshal(o)
		switch o["kind"] {
		case "ServiceAccount":
			sa = get(t, o, "metadata", "name").(string)
		case "ClusterRole":
			var r rbacv1.ClusterRole
			mustYAML(t, raw, &r)
			create(t, func() error { _, err := kc.RbacV1().ClusterRoles().Create(ctx, &r, metav1.CreateOptions{}); return err })
			first, where = append(first, r.Rules[0]), append(where, "")
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			mustYAML(t, raw, &b)
			create(t, func() error {
				_, err := kc.RbacV1().ClusterRoleBindings().Create(ctx, &b, metav1.CreateOptions{})
				return err
			})
		case "Role":
			var r rbacv1.Role
			mustYAML(t, raw, &r)
			create(t, func() error { _, err := kc.RbacV1().Roles(ns).Create(ctx, &r, metav1.CreateOptions{}); return err })
			roles = append(roles, r)
			first, where = append(first, r.Rules[0]), append(where, ns)
		case "RoleBinding":
			var b rbacv1.RoleBinding
			mustYAML(t, raw, &b)
			create(t, func() error {
				_, err := kc.RbacV1().RoleBindings(ns).Create(ctx, &b, metav1.CreateOptions{})
				return err
			})
		}
	}
	// The authorizer learns new roles through its informers.
	can := access(t, kc, ns, sa)
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		for i, r := range first {
			name := ""
			if len(r.ResourceNames) > 0 {
				name = r.ResourceNames[0]
			}
			if !can(r.Verbs[0], r.APIGroups[0], r.Resources[0], where[i], name) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the roles of %s never took effect: %v", sa, err)
	}
	return sa, roles
}

// access asks the API server's authorizer whether service account sa of
// ns may do verb on a resource (namespace and name may be empty).
func access(t *testing.T, kc kubernetes.Interface, ns, sa string) func(verb, group, resource, namespace, name string) bool {
	user := "system:serviceaccount:" + ns + ":" + sa
	return func(verb, group, resource, namespace, name string) bool {
		t.Helper()
		r, err := kc.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Namespace: namespace, Name: name},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
}

func mustYAML(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(raw, v); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
}

func create(t *testing.T, fn func() error) {
	t.Helper()
	if err := fn(); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
}
