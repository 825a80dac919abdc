package posture

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/rbacrisk"
)

// objectChecks are the checks of services, ingresses, RBAC and namespaces.
func objectChecks() []Check {
	return []Check{
		{
			ID: "service-allowed-ports", Title: "Services should listen on allowed ports only",
			Severity: model.SeverityMedium, Scope: ScopeService,
			Benchmarks:  []string{"AzurePolicy 233a2a17"},
			Remediation: "Expose only ports listed in PALISADE_ALLOWED_SERVICE_PORTS.",
			Evaluate: func(_ context.Context, env *Env) []Outcome {
				var out []Outcome
				for i := range env.Snap.Objects.Services {
					s := &env.Snap.Objects.Services[i]
					if env.Excluded(s.Namespace) || isAPIService(s.Namespace, s.Name) {
						continue
					}
					var bad []string
					for _, p := range s.Spec.Ports {
						if !env.svcPorts[int(p.Port)] {
							bad = append(bad, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
						}
					}
					msg := ""
					if bad != nil {
						msg = fmt.Sprintf("listens on %s; allowed: %s", strings.Join(bad, ", "), portsString(env.Opts.AllowedServicePorts))
					}
					out = append(out, Outcome{Resource: resourceName("Service", s.Namespace, s.Name), Namespace: s.Namespace,
						Labels: s.Labels, Pass: bad == nil, Message: msg})
				}
				return out
			},
		},
		{
			ID: "https-ingress", Title: "Kubernetes clusters should be accessible only over HTTPS",
			Severity: model.SeverityHigh, Scope: ScopeService,
			Benchmarks:  []string{"AzurePolicy 1a5b4dca"},
			Remediation: "Add a spec.tls section with a certificate secret covering the ingress hosts.",
			Evaluate: func(_ context.Context, env *Env) []Outcome {
				var out []Outcome
				for i := range env.Snap.Objects.Ingresses {
					in := &env.Snap.Objects.Ingresses[i]
					if env.Excluded(in.Namespace) {
						continue
					}
					var missing []string
					covered := map[string]bool{}
					for _, t := range in.Spec.TLS {
						for _, h := range t.Hosts {
							covered[h] = true
						}
					}
					for _, r := range in.Spec.Rules {
						if r.Host != "" && !covered[r.Host] && len(in.Spec.TLS) > 0 {
							missing = append(missing, r.Host)
						}
					}
					msg := ""
					pass := len(in.Spec.TLS) > 0 && missing == nil
					switch {
					case len(in.Spec.TLS) == 0:
						msg = "no spec.tls: served over plain HTTP"
					case missing != nil:
						msg = "hosts without TLS: " + strings.Join(missing, ", ")
					}
					out = append(out, Outcome{Resource: resourceName("Ingress", in.Namespace, in.Name), Namespace: in.Namespace,
						Labels: in.Labels, Pass: pass, Message: msg})
				}
				return out
			},
		},
		{
			ID: "default-namespace", Title: "Kubernetes clusters should not use the default namespace",
			Severity: model.SeverityLow, Scope: ScopeNamespace,
			Benchmarks:  []string{"AzurePolicy 9f061a12", "CIS-Kubernetes 5.7.4", "CIS-AKS 4.5.4"},
			Remediation: "Move the resource to a dedicated namespace.",
			Evaluate: func(_ context.Context, env *Env) []Outcome {
				var out []Outcome
				add := func(res string, labels map[string]string, ns string) {
					msg := ""
					if ns == "default" {
						msg = "in the default namespace"
					}
					out = append(out, Outcome{Resource: res, Namespace: ns, Labels: labels, Pass: ns != "default", Message: msg})
				}
				for i := range env.Workloads {
					w := &env.Workloads[i]
					if !env.Excluded(w.Namespace) {
						add(w.Resource(), w.Labels, w.Namespace)
					}
				}
				for i := range env.Snap.Objects.Services {
					s := &env.Snap.Objects.Services[i]
					if !env.Excluded(s.Namespace) && !isAPIService(s.Namespace, s.Name) {
						add(resourceName("Service", s.Namespace, s.Name), s.Labels, s.Namespace)
					}
				}
				for i := range env.Snap.Objects.Ingresses {
					in := &env.Snap.Objects.Ingresses[i]
					if !env.Excluded(in.Namespace) {
						add(resourceName("Ingress", in.Namespace, in.Name), in.Labels, in.Namespace)
					}
				}
				return out
			},
		},
		{
			ID: "namespace-network-policy", Title: "Namespaces should have a network policy",
			Severity: model.SeverityMedium, Scope: ScopeNamespace,
			Benchmarks:  []string{"CIS-Kubernetes 5.3.2", "CIS-AKS 4.3.2"},
			Remediation: "Add a NetworkPolicy (or a CiliumNetworkPolicy or Calico NetworkPolicy) to the namespace, starting with a default deny of ingress and egress.",
			Evaluate: func(_ context.Context, env *Env) []Outcome {
				cov := newCoverage(&env.Snap.Objects)
				var out []Outcome
				for i := range env.Snap.Objects.Namespaces {
					ns := &env.Snap.Objects.Namespaces[i]
					if env.Excluded(ns.Name) || isSystemNamespace(ns.Name) {
						continue
					}
					by, broken := cov.of(ns)
					o := Outcome{Resource: resourceName("Namespace", "", ns.Name), Namespace: ns.Name, Labels: ns.Labels, Pass: by != nil}
					switch {
					case by != nil:
						o.Message = "covered by " + strings.Join(by, ", ")
					case broken != nil:
						o.Err = fmt.Errorf("cluster-wide policies could not be read: %s", strings.Join(broken, "; "))
						o.Message = o.Err.Error()
					default:
						o.Message = "no NetworkPolicy, CiliumNetworkPolicy or Calico network policy covers the namespace"
					}
					out = append(out, o)
				}
				return out
			},
		},
		{
			ID: "cluster-admin-binding", Title: "The cluster-admin role should only be used where required",
			Severity: model.SeverityHigh, Scope: ScopeRBAC,
			Benchmarks:  []string{"CIS-Kubernetes 5.1.1", "CIS-AKS 4.1.1"},
			Remediation: "Bind a narrower role, or delete the binding: kubectl delete clusterrolebinding NAME.",
			Evaluate: func(_ context.Context, env *Env) []Outcome {
				var out []Outcome
				for _, b := range env.Snap.Objects.ClusterRoleBindings {
					if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.Name != "cluster-admin" {
						continue
					}
					var bad []string
					for _, s := range b.Subjects {
						if !systemSubject(s) {
							bad = append(bad, s.Kind+" "+subjectName(s))
						}
					}
					msg := ""
					if bad != nil {
						msg = "grants cluster-admin to " + strings.Join(bad, ", ")
					}
					out = append(out, Outcome{Resource: resourceName("ClusterRoleBinding", "", b.Name), Labels: b.Labels,
						Pass: bad == nil, Message: msg})
				}
				return out
			},
		},
		roleCheck("secrets-access", "Access to secrets should be minimized", model.SeverityMedium,
			[]string{"CIS-Kubernetes 5.1.2", "CIS-AKS 4.1.2"},
			"Remove get, list and watch on secrets from the role, or scope it with resourceNames.",
			func(r rbacv1.PolicyRule) string {
				if len(r.ResourceNames) == 0 && grants(r, "", "secrets", "get", "list", "watch") {
					return "reads secrets"
				}
				return ""
			}),
		roleCheck("rbac-wildcards", "Wildcard use in Roles and ClusterRoles should be minimized", model.SeverityMedium,
			[]string{"CIS-Kubernetes 5.1.3", "CIS-AKS 4.1.3"},
			"Replace * in apiGroups, resources and verbs with the specific items needed.",
			func(r rbacv1.PolicyRule) string {
				if slices.Contains(r.APIGroups, "*") || slices.Contains(r.Resources, "*") || slices.Contains(r.Verbs, "*") {
					return "uses a wildcard"
				}
				return ""
			}),
		roleCheck("create-pods-access", "Access to create pods should be minimized", model.SeverityMedium,
			[]string{"CIS-Kubernetes 5.1.4", "CIS-AKS 4.1.4"},
			"Remove create on pods (and on workload controllers) from the role unless it is needed.",
			func(r rbacv1.PolicyRule) string {
				if grants(r, "", "pods", "create") {
					return "creates pods"
				}
				return ""
			}),
		roleCheck("high-privilege-roles", "Roles should not grant high privileges: reading every Secret, exec into pods, escalation or the kubelet API", model.SeverityHigh,
			[]string{"CIS-Kubernetes 5.1.2", "CIS-Kubernetes 5.1.8", "CIS-Kubernetes 5.1.10"},
			"Grant the specific resources and verbs needed: no wildcards on the core API group or on pods, no pods/exec, pods/attach or nodes/proxy, no escalate, bind or impersonate.",
			func(r rbacv1.PolicyRule) string {
				return strings.Join(rbacrisk.Reasons(rbacrisk.Rule(r)), ", ")
			}),
		{
			ID: "service-account-token-automount", Title: "Service accounts should not mount their API token in every pod",
			Severity: model.SeverityLow, Scope: ScopeRBAC,
			Benchmarks:  []string{"CIS-Kubernetes 5.1.6", "CIS-AKS 4.1.6"},
			Remediation: "Set automountServiceAccountToken: false on the service account, and true only on the pod specs that call the Kubernetes API: kubectl patch serviceaccount NAME -n NAMESPACE -p '{\"automountServiceAccountToken\": false}'.",
			Evaluate: func(_ context.Context, env *Env) []Outcome {
				mounting := map[string][]string{} // namespace/service account -> workloads mounting its token
				for i := range env.Workloads {
					w := &env.Workloads[i]
					if a := w.Spec.AutomountServiceAccountToken; a != nil && !*a {
						continue
					}
					key := w.Namespace + "/" + serviceAccountOf(w.Spec)
					mounting[key] = append(mounting[key], w.Resource())
				}
				var out []Outcome
				for _, sa := range env.Snap.Objects.ServiceAccounts {
					if env.Excluded(sa.Namespace) || isSystemNamespace(sa.Namespace) {
						continue
					}
					msg := ""
					if a := sa.AutomountServiceAccountToken; a != nil && *a {
						msg = "automountServiceAccountToken: true; no workload uses it"
						if ws := mounting[sa.Namespace+"/"+sa.Name]; ws != nil {
							msg = "automountServiceAccountToken: true; mounted by " + strings.Join(ws, ", ")
						}
					}
					out = append(out, Outcome{Resource: resourceName("ServiceAccount", sa.Namespace, sa.Name), Namespace: sa.Namespace,
						Labels: sa.Labels, Pass: msg == "", Message: msg})
				}
				return out
			},
		},
		{
			ID: "default-service-account", Title: "Default service accounts should not be actively used",
			Severity: model.SeverityMedium, Scope: ScopeRBAC,
			Benchmarks:  []string{"CIS-Kubernetes 5.1.5", "CIS-AKS 4.1.5"},
			Remediation: "Set automountServiceAccountToken: false on the default service account and bind no roles to it: kubectl patch serviceaccount default -n NAMESPACE -p '{\"automountServiceAccountToken\": false}'.",
			Evaluate: func(_ context.Context, env *Env) []Outcome {
				bound := map[string][]string{}
				note := func(s rbacv1.Subject, ns, binding string) {
					if s.Kind == "ServiceAccount" && s.Name == "default" {
						if s.Namespace != "" {
							ns = s.Namespace
						}
						bound[ns] = append(bound[ns], binding)
					}
				}
				for _, b := range env.Snap.Objects.RoleBindings {
					for _, s := range b.Subjects {
						note(s, b.Namespace, "RoleBinding "+b.Name)
					}
				}
				for _, b := range env.Snap.Objects.ClusterRoleBindings {
					for _, s := range b.Subjects {
						note(s, "", "ClusterRoleBinding "+b.Name)
					}
				}
				var out []Outcome
				for _, sa := range env.Snap.Objects.ServiceAccounts {
					if sa.Name != "default" || env.Excluded(sa.Namespace) || isSystemNamespace(sa.Namespace) {
						continue
					}
					var r []string
					if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
						r = append(r, "automountServiceAccountToken is not false")
					}
					if b := bound[sa.Namespace]; b != nil {
						r = append(r, "bound by "+strings.Join(b, ", "))
					}
					out = append(out, Outcome{Resource: resourceName("ServiceAccount", sa.Namespace, sa.Name), Namespace: sa.Namespace,
						Labels: sa.Labels, Pass: r == nil, Message: strings.Join(r, "; ")})
				}
				return out
			},
		},
	}
}

// roleCheck builds a check failing Roles and ClusterRoles with a rule that
// bad flags. Built-in roles (system:*, the bootstrap admin/edit/view
// aggregates, cluster-admin) are not assessed.
func roleCheck(id, title string, sev model.Severity, benchmarks []string, remediation string, bad func(rbacv1.PolicyRule) string) Check {
	return Check{ID: id, Title: title, Severity: sev, Scope: ScopeRBAC, Benchmarks: benchmarks, Remediation: remediation,
		Evaluate: func(_ context.Context, env *Env) []Outcome {
			var out []Outcome
			eval := func(kind, ns, name string, labels map[string]string, rules []rbacv1.PolicyRule) {
				if builtinRole(name, labels) || env.Excluded(ns) {
					return
				}
				var r []string
				for i, rule := range rules {
					if why := bad(rule); why != "" {
						r = append(r, fmt.Sprintf("rule %d %s", i+1, why))
					}
				}
				out = append(out, Outcome{Resource: resourceName(kind, ns, name), Namespace: ns, Labels: labels,
					Pass: r == nil, Message: strings.Join(r, "; ")})
			}
			for _, role := range env.Snap.Objects.Roles {
				eval("Role", role.Namespace, role.Name, role.Labels, role.Rules)
			}
			for _, role := range env.Snap.Objects.ClusterRoles {
				eval("ClusterRole", "", role.Name, role.Labels, role.Rules)
			}
			return out
		}}
}

// grants reports whether rule grants any of verbs on resource of group.
func grants(r rbacv1.PolicyRule, group, resource string, verbs ...string) bool {
	if !slices.Contains(r.APIGroups, group) && !slices.Contains(r.APIGroups, "*") {
		return false
	}
	if !slices.Contains(r.Resources, resource) && !slices.Contains(r.Resources, "*") {
		return false
	}
	for _, v := range verbs {
		if slices.Contains(r.Verbs, v) || slices.Contains(r.Verbs, "*") {
			return true
		}
	}
	return false
}

func builtinRole(name string, labels map[string]string) bool {
	if strings.HasPrefix(name, "system:") || labels["kubernetes.io/bootstrapping"] == "rbac-defaults" {
		return true
	}
	switch name {
	case "cluster-admin", "admin", "edit", "view":
		return true
	}
	return false
}

func systemSubject(s rbacv1.Subject) bool {
	return strings.HasPrefix(s.Name, "system:") || (s.Kind == "ServiceAccount" && s.Namespace == "kube-system")
}

func subjectName(s rbacv1.Subject) string {
	if s.Namespace != "" {
		return s.Namespace + "/" + s.Name
	}
	return s.Name
}

// serviceAccountOf is the service account a pod spec runs as.
func serviceAccountOf(spec *corev1.PodSpec) string {
	switch {
	case spec.ServiceAccountName != "":
		return spec.ServiceAccountName
	case spec.DeprecatedServiceAccount != "":
		return spec.DeprecatedServiceAccount
	}
	return "default"
}

func isSystemNamespace(ns string) bool {
	return ns == "kube-system" || ns == "kube-public" || ns == "kube-node-lease"
}

func isAPIService(ns, name string) bool { return ns == "default" && name == "kubernetes" }
