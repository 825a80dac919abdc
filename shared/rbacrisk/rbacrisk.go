// Package rbacrisk is the one definition of a dangerous RBAC role, shared by
// the posture checks of Roles and ClusterRoles (shared/posture) and the
// audit rule that raises an alert when such a role is written
// (shared/audit), so that both always agree on what "high privileges"
// means.
//
// A rule is dangerous when it grants any of:
//   - every verb on every resource of the core API group (or of every
//     group): cluster-admin by another name, reported alone;
//   - read verbs (get, list, watch) on every resource of the core API group:
//     that reads every Secret;
//   - create, update or patch on every resource of the core, apps, batch or
//     RBAC API group (or of every group): that runs pods, writes Secrets or
//     grants roles;
//   - every verb on pods, or on secrets;
//   - get or create on pods/exec or pods/attach: a shell in any pod
//     (WebSocket clients exec with get, SPDY clients with create);
//   - escalate, bind or impersonate, which step around RBAC itself;
//   - any verb on nodes/proxy: the kubelet API, exec in every pod of the
//     node included.
//
// Matching follows the API server's RBAC authorizer: "*" matches every
// verb, group or resource, and "*/SUB" every resource's subresource SUB.
// ResourceNames are not considered: a role that may exec into one named pod
// may still exec.
package rbacrisk

import (
	"slices"
	"strings"
)

// Rule is an RBAC policy rule, field for field as rbacv1.PolicyRule (which
// converts to it) and as audit events carry it (JSON).
type Rule struct {
	Verbs           []string `json:"verbs,omitempty"`
	APIGroups       []string `json:"apiGroups,omitempty"`
	Resources       []string `json:"resources,omitempty"`
	ResourceNames   []string `json:"resourceNames,omitempty"`
	NonResourceURLs []string `json:"nonResourceURLs,omitempty"`
}

// The reasons a rule is dangerous, as messages and alert evidence show them.
const (
	Everything        = "all verbs on all resources"
	ReadsEverything   = "reads every resource of the core API group, Secrets included"
	WritesEverything  = "creates or changes every resource of the core, apps, batch or RBAC API group"
	AllVerbsOnPods    = "all verbs on pods"
	AllVerbsOnSecrets = "all verbs on secrets"
	ExecIntoPods      = "exec into or attach to pods (get or create on pods/exec or pods/attach)"
	Escalates         = "escalate, bind or impersonate"
	NodesProxy        = "the kubelet API through nodes/proxy"
)

// writeGroups are the API groups where writing every resource means running
// pods, writing Secrets or granting roles.
var writeGroups = []string{"", "apps", "batch", "rbac.authorization.k8s.io"}

// Reasons returns why r is dangerous, in the order of the package
// documentation; nil when it is not.
func Reasons(r Rule) []string {
	var out []string
	core := r.group("")
	if core && r.resource("*") && slices.Contains(r.Verbs, "*") {
		return []string{Everything}
	}
	if core && r.resource("*") && r.verb("get", "list", "watch") {
		out = append(out, ReadsEverything)
	}
	if r.resource("*") && r.verb("create", "update", "patch") && slices.ContainsFunc(writeGroups, r.group) {
		out = append(out, WritesEverything)
	}
	if core && r.resource("pods") && slices.Contains(r.Verbs, "*") {
		out = append(out, AllVerbsOnPods)
	}
	if core && r.resource("secrets") && slices.Contains(r.Verbs, "*") {
		out = append(out, AllVerbsOnSecrets)
	}
	if core && (r.resource("pods/exec") || r.resource("pods/attach")) && r.verb("get", "create") {
		out = append(out, ExecIntoPods)
	}
	if r.escalates() {
		out = append(out, Escalates)
	}
	if core && r.resource("nodes/proxy") && len(r.Verbs) > 0 {
		out = append(out, NodesProxy)
	}
	return out
}

// Dangerous returns the first reason r is dangerous, or "".
func Dangerous(r Rule) string {
	if rs := Reasons(r); len(rs) > 0 {
		return rs[0]
	}
	return ""
}

// escalates reports whether r grants escalate or bind on roles, or
// impersonate on identities, by name or through "*".
func (r Rule) escalates() bool {
	for _, v := range []string{"escalate", "bind", "impersonate"} {
		if slices.Contains(r.Verbs, v) {
			return true
		}
	}
	if !slices.Contains(r.Verbs, "*") {
		return false
	}
	if r.group("rbac.authorization.k8s.io") {
		for _, res := range []string{"roles", "clusterroles"} {
			if r.resource(res) {
				return true
			}
		}
	}
	if r.group("") {
		for _, res := range []string{"users", "groups", "serviceaccounts"} {
			if r.resource(res) {
				return true
			}
		}
	}
	return false
}

// group reports whether r applies to API group g.
func (r Rule) group(g string) bool {
	return slices.Contains(r.APIGroups, g) || slices.Contains(r.APIGroups, "*")
}

// resource reports whether r applies to res ("pods" or "pods/exec").
func (r Rule) resource(res string) bool {
	_, sub, hasSub := strings.Cut(res, "/")
	for _, x := range r.Resources {
		if x == "*" || x == res || hasSub && x == "*/"+sub {
			return true
		}
	}
	return false
}

// verb reports whether r grants any of verbs.
func (r Rule) verb(verbs ...string) bool {
	if slices.Contains(r.Verbs, "*") {
		return true
	}
	for _, v := range verbs {
		if slices.Contains(r.Verbs, v) {
			return true
		}
	}
	return false
}
