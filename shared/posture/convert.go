package posture

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// The current versions older manifests are read as.
var (
	appsV1       = schema.GroupVersion{Group: "apps", Version: "v1"}
	batchV1      = schema.GroupVersion{Group: "batch", Version: "v1"}
	networkingV1 = schema.GroupVersion{Group: "networking.k8s.io", Version: "v1"}
	policyV1     = schema.GroupVersion{Group: "policy", Version: "v1"}
	rbacV1       = schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}
)

// successors maps a kind in an API group to the version its objects are
// read as. Older versions of these kinds have the shape of the current one
// (Ingress aside, which upgrade rewrites), so an object of any version of
// the group, known to client-go or not (batch/v2alpha1), is read through the
// current version's fields.
var successors = map[schema.GroupKind]schema.GroupVersion{
	{Group: "apps", Kind: "Deployment"}:                              appsV1,
	{Group: "apps", Kind: "DaemonSet"}:                               appsV1,
	{Group: "apps", Kind: "ReplicaSet"}:                              appsV1,
	{Group: "apps", Kind: "StatefulSet"}:                             appsV1,
	{Group: "extensions", Kind: "Deployment"}:                        appsV1,
	{Group: "extensions", Kind: "DaemonSet"}:                         appsV1,
	{Group: "extensions", Kind: "ReplicaSet"}:                        appsV1,
	{Group: "batch", Kind: "CronJob"}:                                batchV1,
	{Group: "batch", Kind: "Job"}:                                    batchV1,
	{Group: "extensions", Kind: "Ingress"}:                           networkingV1,
	{Group: "networking.k8s.io", Kind: "Ingress"}:                    networkingV1,
	{Group: "extensions", Kind: "NetworkPolicy"}:                     networkingV1,
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:              networkingV1,
	{Group: "policy", Kind: "PodDisruptionBudget"}:                   policyV1,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:               rbacV1,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:        rbacV1,
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:        rbacV1,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: rbacV1,
}

// successor returns the version objects of kind in group are read as.
func successor(group, kind string) (schema.GroupVersion, bool) {
	gv, ok := successors[schema.GroupKind{Group: group, Kind: kind}]
	return gv, ok
}

// upgrade rewrites an object of an older API version as version next.
func upgrade(js []byte, kind string, next schema.GroupVersion) ([]byte, error) {
	var obj map[string]any
	if err := json.Unmarshal(js, &obj); err != nil {
		return nil, err
	}
	obj["apiVersion"] = next.String()
	if kind == "Ingress" {
		if err := upgradeIngress(obj); err != nil {
			return nil, err
		}
	}
	return json.Marshal(obj)
}

// upgradeIngress rewrites the v1beta1 Ingress fields that networking/v1
// renamed: spec.backend is spec.defaultBackend, a backend's serviceName and
// servicePort are service.name and service.port.number (or .name), and a
// path without pathType is ImplementationSpecific.
func upgradeIngress(obj map[string]any) error {
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		return nil
	}
	if b, ok := spec["backend"]; ok {
		spec["defaultBackend"] = b
		delete(spec, "backend")
	}
	if b, ok := spec["defaultBackend"].(map[string]any); ok {
		if err := upgradeBackend(b); err != nil {
			return fmt.Errorf("spec.backend: %w", err)
		}
	}
	rules, _ := spec["rules"].([]any)
	for i, r := range rules {
		rule, _ := r.(map[string]any)
		http, _ := rule["http"].(map[string]any)
		paths, _ := http["paths"].([]any)
		for j, p := range paths {
			path, ok := p.(map[string]any)
			if !ok {
				continue
			}
			if _, ok := path["pathType"]; !ok {
				path["pathType"] = "ImplementationSpecific"
			}
			if b, ok := path["backend"].(map[string]any); ok {
				if err := upgradeBackend(b); err != nil {
					return fmt.Errorf("spec.rules[%d].http.paths[%d].backend: %w", i, j, err)
				}
			}
		}
	}
	return nil
}

func upgradeBackend(b map[string]any) error {
	name, hasName := b["serviceName"]
	port, hasPort := b["servicePort"]
	if !hasName && !hasPort {
		return nil
	}
	delete(b, "serviceName")
	delete(b, "servicePort")
	svc := map[string]any{"name": name}
	switch p := port.(type) {
	case float64:
		svc["port"] = map[string]any{"number": p}
	case string:
		svc["port"] = map[string]any{"name": p}
	case nil:
	default:
		return fmt.Errorf("servicePort is a %T, not a number or a name", port)
	}
	b["service"] = svc
	return nil
}

// unstructuredOf decodes an object kept as it is, placing it in the
// manifest namespace when it is namespaced and has none.
func unstructuredOf(js []byte, opts ManifestOptions, namespaced bool) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, err
	}
	if namespaced && u.GetNamespace() == "" {
		u.SetNamespace(opts.namespace())
	}
	return u, nil
}

// builtinGroup reports whether group is one of Kubernetes' own API groups.
func builtinGroup(group string) bool { return scheme.Scheme.IsGroupRegistered(group) }

// clusterScoped are the built-in kinds that have no namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "Node": true, "PersistentVolume": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"StorageClass": true, "CSIDriver": true, "CSINode": true, "VolumeAttachment": true, "VolumeAttributesClass": true,
	"CustomResourceDefinition": true, "APIService": true, "MutatingWebhookConfiguration": true,
	"ValidatingWebhookConfiguration": true, "ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
	"MutatingAdmissionPolicy": true, "MutatingAdmissionPolicyBinding": true, "PriorityClass": true, "RuntimeClass": true,
	"IngressClass": true, "CertificateSigningRequest": true, "ClusterTrustBundle": true, "PodSecurityPolicy": true,
	"FlowSchema": true, "PriorityLevelConfiguration": true, "ComponentStatus": true, "IPAddress": true, "ServiceCIDR": true,
	"DeviceClass": true, "ResourceSlice": true, "StorageVersionMigration": true,
}

// cniKind is a network policy kind of a CNI plugin.
type cniKind struct {
	clusterWide bool
}

// cniPolicyKinds are the network policies of Cilium and Calico that count
// as network-policy coverage.
var cniPolicyKinds = map[schema.GroupVersionKind]cniKind{
	{Group: "cilium.io", Version: "v2", Kind: "CiliumNetworkPolicy"}:             {},
	{Group: "cilium.io", Version: "v2", Kind: "CiliumClusterwideNetworkPolicy"}:  {clusterWide: true},
	{Group: "projectcalico.org", Version: "v3", Kind: "NetworkPolicy"}:           {},
	{Group: "projectcalico.org", Version: "v3", Kind: "GlobalNetworkPolicy"}:     {clusterWide: true},
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "NetworkPolicy"}:       {},
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "GlobalNetworkPolicy"}: {clusterWide: true},
}
