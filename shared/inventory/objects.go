// Package inventory is what a cluster's palisade-agent tells the function
// app about the cluster: the Kubernetes objects posture evaluates and the
// images that run, sent over the "inventory" event hub as versioned
// envelopes (see Envelope): full snapshots cut into parts and the changes in
// between. It holds the object set itself (Objects, which shared/posture
// assesses), the envelope, a size-bounded message writer for the agent and
// the decoder for ingestinventory. It imports no Azure, store or policy code,
// so the agent stays small.
package inventory

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/palisade-sec/palisade/shared/model"
)

// Objects are the Kubernetes objects the posture checks read. Every object
// carries its apiVersion and kind (set by Add and by the agent), as Rego
// policies see them. Its JSON is the "objects" field of an envelope.
type Objects struct {
	Namespaces          []corev1.Namespace           `json:"namespaces,omitempty"`
	Pods                []corev1.Pod                 `json:"pods,omitempty"`
	Deployments         []appsv1.Deployment          `json:"deployments,omitempty"`
	DaemonSets          []appsv1.DaemonSet           `json:"daemonSets,omitempty"`
	StatefulSets        []appsv1.StatefulSet         `json:"statefulSets,omitempty"`
	ReplicaSets         []appsv1.ReplicaSet          `json:"replicaSets,omitempty"`
	Jobs                []batchv1.Job                `json:"jobs,omitempty"`
	CronJobs            []batchv1.CronJob            `json:"cronJobs,omitempty"`
	Services            []corev1.Service             `json:"services,omitempty"`
	ServiceAccounts     []corev1.ServiceAccount      `json:"serviceAccounts,omitempty"`
	Ingresses           []networkingv1.Ingress       `json:"ingresses,omitempty"`
	NetworkPolicies     []networkingv1.NetworkPolicy `json:"networkPolicies,omitempty"`
	Roles               []rbacv1.Role                `json:"roles,omitempty"`
	ClusterRoles        []rbacv1.ClusterRole         `json:"clusterRoles,omitempty"`
	RoleBindings        []rbacv1.RoleBinding         `json:"roleBindings,omitempty"`
	ClusterRoleBindings []rbacv1.ClusterRoleBinding  `json:"clusterRoleBindings,omitempty"`
	// CNIPolicies are the network policies of Cilium and Calico (the kinds
	// of CNIPolicyKinds), as the API server serves them.
	CNIPolicies []unstructured.Unstructured `json:"cniPolicies,omitempty"`
	// Other are objects of built-in kinds no built-in check reads
	// (ConfigMap, PodDisruptionBudget, ...), from manifests: custom
	// policies see them. An agent does not send them.
	Other []unstructured.Unstructured `json:"other,omitempty"`
	// NotAssessed lists what was read but cannot be assessed, and why.
	NotAssessed []model.PostureNotAssessed `json:"notAssessed,omitempty"`
}

// Kind is one kind of object the inventory carries.
type Kind struct {
	// Name is the Kubernetes kind ("Pod"); Field is its Objects field's
	// JSON name ("pods"); GroupVersion is its API group and version.
	Name, Field  string
	GroupVersion schema.GroupVersion
	// Namespaced is false for cluster-scoped kinds.
	Namespaced bool
}

// Kinds lists every kind of Objects, in the order snapshots carry them.
var Kinds = []Kind{
	{"Namespace", "namespaces", corev1.SchemeGroupVersion, false},
	{"Pod", "pods", corev1.SchemeGroupVersion, true},
	{"Deployment", "deployments", appsv1.SchemeGroupVersion, true},
	{"DaemonSet", "daemonSets", appsv1.SchemeGroupVersion, true},
	{"StatefulSet", "statefulSets", appsv1.SchemeGroupVersion, true},
	{"ReplicaSet", "replicaSets", appsv1.SchemeGroupVersion, true},
	{"Job", "jobs", batchv1.SchemeGroupVersion, true},
	{"CronJob", "cronJobs", batchv1.SchemeGroupVersion, true},
	{"Service", "services", corev1.SchemeGroupVersion, true},
	{"ServiceAccount", "serviceAccounts", corev1.SchemeGroupVersion, true},
	{"Ingress", "ingresses", networkingv1.SchemeGroupVersion, true},
	{"NetworkPolicy", "networkPolicies", networkingv1.SchemeGroupVersion, true},
	{"Role", "roles", rbacv1.SchemeGroupVersion, true},
	{"ClusterRole", "clusterRoles", rbacv1.SchemeGroupVersion, false},
	{"RoleBinding", "roleBindings", rbacv1.SchemeGroupVersion, true},
	{"ClusterRoleBinding", "clusterRoleBindings", rbacv1.SchemeGroupVersion, false},
}

// LookupKind returns the kind named name.
func LookupKind(name string) (Kind, bool) {
	for _, k := range Kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// Count returns the number of objects.
func (o *Objects) Count() int {
	n := 0
	o.Each(func(string, metav1.Object, runtime.Object) { n++ })
	return n
}

// Add appends a decoded object of a kind the checks read, setting its
// apiVersion and kind. Objects of other kinds are reported as skipped (ok
// false) so callers can count them.
func (o *Objects) Add(obj runtime.Object) (ok bool) {
	switch v := obj.(type) {
	case *corev1.Namespace:
		o.Namespaces = append(o.Namespaces, *typed(v, "Namespace"))
	case *corev1.Pod:
		o.Pods = append(o.Pods, *typed(v, "Pod"))
	case *appsv1.Deployment:
		o.Deployments = append(o.Deployments, *typed(v, "Deployment"))
	case *appsv1.DaemonSet:
		o.DaemonSets = append(o.DaemonSets, *typed(v, "DaemonSet"))
	case *appsv1.StatefulSet:
		o.StatefulSets = append(o.StatefulSets, *typed(v, "StatefulSet"))
	case *appsv1.ReplicaSet:
		o.ReplicaSets = append(o.ReplicaSets, *typed(v, "ReplicaSet"))
	case *batchv1.Job:
		o.Jobs = append(o.Jobs, *typed(v, "Job"))
	case *batchv1.CronJob:
		o.CronJobs = append(o.CronJobs, *typed(v, "CronJob"))
	case *corev1.Service:
		o.Services = append(o.Services, *typed(v, "Service"))
	case *corev1.ServiceAccount:
		o.ServiceAccounts = append(o.ServiceAccounts, *typed(v, "ServiceAccount"))
	case *networkingv1.Ingress:
		o.Ingresses = append(o.Ingresses, *typed(v, "Ingress"))
	case *networkingv1.NetworkPolicy:
		o.NetworkPolicies = append(o.NetworkPolicies, *typed(v, "NetworkPolicy"))
	case *rbacv1.Role:
		o.Roles = append(o.Roles, *typed(v, "Role"))
	case *rbacv1.ClusterRole:
		o.ClusterRoles = append(o.ClusterRoles, *typed(v, "ClusterRole"))
	case *rbacv1.RoleBinding:
		o.RoleBindings = append(o.RoleBindings, *typed(v, "RoleBinding"))
	case *rbacv1.ClusterRoleBinding:
		o.ClusterRoleBindings = append(o.ClusterRoleBindings, *typed(v, "ClusterRoleBinding"))
	case *corev1.List:
		all := true
		for _, item := range v.Items {
			if item.Object != nil {
				all = o.Add(item.Object) && all
			}
		}
		return all
	default:
		return false
	}
	return true
}

// SetType sets the apiVersion and kind of obj (list and watch calls leave
// them empty) when it is of a kind the inventory carries. It reports
// whether it was.
func SetType(obj runtime.Object, kind string) bool {
	k, ok := LookupKind(kind)
	if ok {
		obj.GetObjectKind().SetGroupVersionKind(k.GroupVersion.WithKind(kind))
	}
	return ok
}

// KindOf returns the kind of an object the inventory carries ("" for any
// other), from its Go type: list and watch calls leave apiVersion and kind
// empty.
func KindOf(obj runtime.Object) string {
	switch obj.(type) {
	case *corev1.Namespace:
		return "Namespace"
	case *corev1.Pod:
		return "Pod"
	case *appsv1.Deployment:
		return "Deployment"
	case *appsv1.DaemonSet:
		return "DaemonSet"
	case *appsv1.StatefulSet:
		return "StatefulSet"
	case *appsv1.ReplicaSet:
		return "ReplicaSet"
	case *batchv1.Job:
		return "Job"
	case *batchv1.CronJob:
		return "CronJob"
	case *corev1.Service:
		return "Service"
	case *corev1.ServiceAccount:
		return "ServiceAccount"
	case *networkingv1.Ingress:
		return "Ingress"
	case *networkingv1.NetworkPolicy:
		return "NetworkPolicy"
	case *rbacv1.Role:
		return "Role"
	case *rbacv1.ClusterRole:
		return "ClusterRole"
	case *rbacv1.RoleBinding:
		return "RoleBinding"
	case *rbacv1.ClusterRoleBinding:
		return "ClusterRoleBinding"
	}
	return ""
}

func typed[T runtime.Object](obj T, kind string) T {
	SetType(obj, kind)
	return obj
}

// Each calls fn on every object with its kind and metadata, kind by kind in
// the order of Kinds, then the CNI policies and the other objects.
func (o *Objects) Each(fn func(kind string, meta metav1.Object, obj runtime.Object)) {
	o.eachTyped(func(kind string, meta *metav1.ObjectMeta, obj runtime.Object) { fn(kind, meta, obj) })
	for _, list := range [][]unstructured.Unstructured{o.CNIPolicies, o.Other} {
		for i := range list {
			fn(list[i].GetKind(), &list[i], &list[i])
		}
	}
}

// eachTyped calls fn on every object of Kinds.
func (o *Objects) eachTyped(fn func(kind string, meta *metav1.ObjectMeta, obj runtime.Object)) {
	for i := range o.Namespaces {
		fn("Namespace", &o.Namespaces[i].ObjectMeta, &o.Namespaces[i])
	}
	for i := range o.Pods {
		fn("Pod", &o.Pods[i].ObjectMeta, &o.Pods[i])
	}
	for i := range o.Deployments {
		fn("Deployment", &o.Deployments[i].ObjectMeta, &o.Deployments[i])
	}
	for i := range o.DaemonSets {
		fn("DaemonSet", &o.DaemonSets[i].ObjectMeta, &o.DaemonSets[i])
	}
	for i := range o.StatefulSets {
		fn("StatefulSet", &o.StatefulSets[i].ObjectMeta, &o.StatefulSets[i])
	}
	for i := range o.ReplicaSets {
		fn("ReplicaSet", &o.ReplicaSets[i].ObjectMeta, &o.ReplicaSets[i])
	}
	for i := range o.Jobs {
		fn("Job", &o.Jobs[i].ObjectMeta, &o.Jobs[i])
	}
	for i := range o.CronJobs {
		fn("CronJob", &o.CronJobs[i].ObjectMeta, &o.CronJobs[i])
	}
	for i := range o.Services {
		fn("Service", &o.Services[i].ObjectMeta, &o.Services[i])
	}
	for i := range o.ServiceAccounts {
		fn("ServiceAccount", &o.ServiceAccounts[i].ObjectMeta, &o.ServiceAccounts[i])
	}
	for i := range o.Ingresses {
		fn("Ingress", &o.Ingresses[i].ObjectMeta, &o.Ingresses[i])
	}
	for i := range o.NetworkPolicies {
		fn("NetworkPolicy", &o.NetworkPolicies[i].ObjectMeta, &o.NetworkPolicies[i])
	}
	for i := range o.Roles {
		fn("Role", &o.Roles[i].ObjectMeta, &o.Roles[i])
	}
	for i := range o.ClusterRoles {
		fn("ClusterRole", &o.ClusterRoles[i].ObjectMeta, &o.ClusterRoles[i])
	}
	for i := range o.RoleBindings {
		fn("RoleBinding", &o.RoleBindings[i].ObjectMeta, &o.RoleBindings[i])
	}
	for i := range o.ClusterRoleBindings {
		fn("ClusterRoleBinding", &o.ClusterRoleBindings[i].ObjectMeta, &o.ClusterRoleBindings[i])
	}
}

// Ref names one object.
type Ref struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String is the ref as "Kind/namespace/name" ("Kind/name" when
// cluster-scoped), the resource name posture results use.
func (r Ref) String() string { return ResourceName(r.Kind, r.Namespace, r.Name) }

// ResourceName is "Kind/namespace/name", or "Kind/name" when cluster-scoped.
func ResourceName(kind, ns, name string) string {
	if ns == "" {
		return kind + "/" + name
	}
	return kind + "/" + ns + "/" + name
}

// Apply brings o up to date with a change: each object of changed replaces
// the object of o with the same kind, namespace and name (or is added), and
// each object of deleted is removed. A replaced object keeps its place and
// new ones are appended in the order given, so applying the same changes to
// the same objects always gives the same result.
func (o *Objects) Apply(changed *Objects, deleted []Ref) {
	gone := map[Ref]bool{}
	for _, r := range deleted {
		gone[r] = true
	}
	applyList(&o.Namespaces, changed.Namespaces, "Namespace", gone)
	applyList(&o.Pods, changed.Pods, "Pod", gone)
	applyList(&o.Deployments, changed.Deployments, "Deployment", gone)
	applyList(&o.DaemonSets, changed.DaemonSets, "DaemonSet", gone)
	applyList(&o.StatefulSets, changed.StatefulSets, "StatefulSet", gone)
	applyList(&o.ReplicaSets, changed.ReplicaSets, "ReplicaSet", gone)
	applyList(&o.Jobs, changed.Jobs, "Job", gone)
	applyList(&o.CronJobs, changed.CronJobs, "CronJob", gone)
	applyList(&o.Services, changed.Services, "Service", gone)
	applyList(&o.ServiceAccounts, changed.ServiceAccounts, "ServiceAccount", gone)
	applyList(&o.Ingresses, changed.Ingresses, "Ingress", gone)
	applyList(&o.NetworkPolicies, changed.NetworkPolicies, "NetworkPolicy", gone)
	applyList(&o.Roles, changed.Roles, "Role", gone)
	applyList(&o.ClusterRoles, changed.ClusterRoles, "ClusterRole", gone)
	applyList(&o.RoleBindings, changed.RoleBindings, "RoleBinding", gone)
	applyList(&o.ClusterRoleBindings, changed.ClusterRoleBindings, "ClusterRoleBinding", gone)
	applyUnstructured(&o.CNIPolicies, changed.CNIPolicies)
	applyUnstructured(&o.Other, changed.Other)
	o.NotAssessed = append(o.NotAssessed, changed.NotAssessed...)
}

// applyUnstructured upserts changed into list by apiVersion, kind,
// namespace and name. (Deletions do not reach these lists: an agent sends
// them whole with each snapshot.)
func applyUnstructured(list *[]unstructured.Unstructured, changed []unstructured.Unstructured) {
	if len(changed) == 0 {
		return
	}
	key := func(u *unstructured.Unstructured) [4]string {
		return [4]string{u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName()}
	}
	idx := make(map[[4]string]int, len(*list))
	for i := range *list {
		idx[key(&(*list)[i])] = i
	}
	for i := range changed {
		k := key(&changed[i])
		if j, ok := idx[k]; ok {
			(*list)[j] = changed[i]
			continue
		}
		idx[k] = len(*list)
		*list = append(*list, changed[i])
	}
}

// applyList upserts changed into list and drops the deleted ones.
func applyList[T any, P interface {
	*T
	metav1.Object
}](list *[]T, changed []T, kind string, gone map[Ref]bool) {
	if len(changed) == 0 && len(gone) == 0 {
		return
	}
	ref := func(v *T) Ref { m := P(v); return Ref{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()} }
	idx := make(map[Ref]int, len(*list))
	for i := range *list {
		idx[ref(&(*list)[i])] = i
	}
	for i := range changed {
		r := ref(&changed[i])
		if j, ok := idx[r]; ok {
			(*list)[j] = changed[i]
			continue
		}
		idx[r] = len(*list)
		*list = append(*list, changed[i])
	}
	out := (*list)[:0]
	for i := range *list {
		if !gone[ref(&(*list)[i])] {
			out = append(out, (*list)[i])
		}
	}
	clear((*list)[len(out):])
	*list = out
}
