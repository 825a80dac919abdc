// Package posture assesses the security posture of AKS clusters: built-in
// checks of the CIS Kubernetes and CIS AKS benchmarks and of the Azure
// Security Benchmark recommendations (Azure Policy definitions) for AKS and
// Azure Container Registry, custom Rego policies, exemptions, a score per
// cluster and benchmark, the change since the last run, and remediation.
//
// An assessment works on a Snapshot: a cluster's ARM properties and its
// Kubernetes objects, collected live (ARM and client-go) or read from files
// (offline mode). Assess is a pure function of the snapshot and the options;
// Recorder stores its results.
package posture

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/palisade-sec/palisade/shared/model"
)

// Snapshot is everything an assessment looks at for one cluster.
type Snapshot struct {
	// Name identifies the cluster in results: its ARM id when known.
	Name string
	// Cluster is the ARM managedCluster; nil when unknown (offline manifests
	// only), in which case the control-plane checks do not run.
	Cluster *Cluster
	// Diagnostics are the cluster's diagnostic settings; nil when unknown.
	Diagnostics []DiagnosticSetting
	// Registries are the container registries assessed with the cluster.
	Registries []Registry
	// Objects are the cluster's Kubernetes objects.
	Objects Objects
}

// Objects are the Kubernetes objects the checks read. Every object carries
// its apiVersion and kind (set by the collectors), as Rego policies see them.
type Objects struct {
	Namespaces          []corev1.Namespace
	Pods                []corev1.Pod
	Deployments         []appsv1.Deployment
	DaemonSets          []appsv1.DaemonSet
	StatefulSets        []appsv1.StatefulSet
	ReplicaSets         []appsv1.ReplicaSet
	Jobs                []batchv1.Job
	CronJobs            []batchv1.CronJob
	Services            []corev1.Service
	ServiceAccounts     []corev1.ServiceAccount
	Ingresses           []networkingv1.Ingress
	NetworkPolicies     []networkingv1.NetworkPolicy
	Roles               []rbacv1.Role
	ClusterRoles        []rbacv1.ClusterRole
	RoleBindings        []rbacv1.RoleBinding
	ClusterRoleBindings []rbacv1.ClusterRoleBinding
	// CNIPolicies are the network policies of Cilium (CiliumNetworkPolicy,
	// CiliumClusterwideNetworkPolicy) and Calico (NetworkPolicy and
	// GlobalNetworkPolicy of projectcalico.org/v3 and
	// crd.projectcalico.org/v1).
	CNIPolicies []unstructured.Unstructured
	// Other are objects of built-in kinds no built-in check reads
	// (ConfigMap, PodDisruptionBudget, ...): custom policies see them.
	Other []unstructured.Unstructured
	// NotAssessed lists what was read but cannot be assessed, and why.
	NotAssessed []model.PostureNotAssessed
}

// Count returns the number of objects.
func (o *Objects) Count() int {
	return len(o.Namespaces) + len(o.Pods) + len(o.Deployments) + len(o.DaemonSets) +
		len(o.StatefulSets) + len(o.ReplicaSets) + len(o.Jobs) + len(o.CronJobs) +
		len(o.Services) + len(o.ServiceAccounts) + len(o.Ingresses) + len(o.NetworkPolicies) +
		len(o.Roles) + len(o.ClusterRoles) + len(o.RoleBindings) + len(o.ClusterRoleBindings) +
		len(o.CNIPolicies) + len(o.Other)
}

// Add appends a typed object of a kind the built-in checks read, setting
// its apiVersion and kind. It reports false, adding nothing, for objects of
// other kinds.
func (o *Objects) Add(obj runtime.Object) (ok bool) {
	switch v := obj.(type) {
	case *corev1.Namespace:
		o.Namespaces = append(o.Namespaces, *typed(v, corev1.SchemeGroupVersion, "Namespace"))
	case *corev1.Pod:
		o.Pods = append(o.Pods, *typed(v, corev1.SchemeGroupVersion, "Pod"))
	case *appsv1.Deployment:
		o.Deployments = append(o.Deployments, *typed(v, appsv1.SchemeGroupVersion, "Deployment"))
	case *appsv1.DaemonSet:
		o.DaemonSets = append(o.DaemonSets, *typed(v, appsv1.SchemeGroupVersion, "DaemonSet"))
	case *appsv1.StatefulSet:
		o.StatefulSets = append(o.StatefulSets, *typed(v, appsv1.SchemeGroupVersion, "StatefulSet"))
	case *appsv1.ReplicaSet:
		o.ReplicaSets = append(o.ReplicaSets, *typed(v, appsv1.SchemeGroupVersion, "ReplicaSet"))
	case *batchv1.Job:
		o.Jobs = append(o.Jobs, *typed(v, batchv1.SchemeGroupVersion, "Job"))
	case *batchv1.CronJob:
		o.CronJobs = append(o.CronJobs, *typed(v, batchv1.SchemeGroupVersion, "CronJob"))
	case *corev1.Service:
		o.Services = append(o.Services, *typed(v, corev1.SchemeGroupVersion, "Service"))
	case *corev1.ServiceAccount:
		o.ServiceAccounts = append(o.ServiceAccounts, *typed(v, corev1.SchemeGroupVersion, "ServiceAccount"))
	case *networkingv1.Ingress:
		o.Ingresses = append(o.Ingresses, *typed(v, networkingv1.SchemeGroupVersion, "Ingress"))
	case *networkingv1.NetworkPolicy:
		o.NetworkPolicies = append(o.NetworkPolicies, *typed(v, networkingv1.SchemeGroupVersion, "NetworkPolicy"))
	case *rbacv1.Role:
		o.Roles = append(o.Roles, *typed(v, rbacv1.SchemeGroupVersion, "Role"))
	case *rbacv1.ClusterRole:
		o.ClusterRoles = append(o.ClusterRoles, *typed(v, rbacv1.SchemeGroupVersion, "ClusterRole"))
	case *rbacv1.RoleBinding:
		o.RoleBindings = append(o.RoleBindings, *typed(v, rbacv1.SchemeGroupVersion, "RoleBinding"))
	case *rbacv1.ClusterRoleBinding:
		o.ClusterRoleBindings = append(o.ClusterRoleBindings, *typed(v, rbacv1.SchemeGroupVersion, "ClusterRoleBinding"))
	default:
		return false
	}
	return true
}

// typed sets the apiVersion and kind that list calls leave empty.
func typed[T interface {
	runtime.Object
}](obj T, gv schema.GroupVersion, kind string) T {
	obj.GetObjectKind().SetGroupVersionKind(gv.WithKind(kind))
	return obj
}

// Cluster is the part of an ARM Microsoft.ContainerService/managedClusters
// resource (api-version 2024-xx) that the control-plane checks read.
type Cluster struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Properties ClusterProperties `json:"properties"`
}

// ClusterProperties are a managed cluster's properties.
type ClusterProperties struct {
	ProvisioningState        string                  `json:"provisioningState"`
	KubernetesVersion        string                  `json:"kubernetesVersion"`
	CurrentKubernetesVersion string                  `json:"currentKubernetesVersion"`
	EnableRBAC               *bool                   `json:"enableRBAC"`
	DisableLocalAccounts     *bool                   `json:"disableLocalAccounts"`
	AADProfile               *AADProfile             `json:"aadProfile"`
	APIServerAccessProfile   *APIServerAccessProfile `json:"apiServerAccessProfile"`
	AddonProfiles            map[string]AddonProfile `json:"addonProfiles"`
	SecurityProfile          *SecurityProfile        `json:"securityProfile"`
	NetworkProfile           *NetworkProfile         `json:"networkProfile"`
	AgentPoolProfiles        []AgentPoolProfile      `json:"agentPoolProfiles"`
}

// AADProfile is the Entra ID integration of a cluster.
type AADProfile struct {
	Managed             *bool    `json:"managed"`
	EnableAzureRBAC     *bool    `json:"enableAzureRBAC"`
	AdminGroupObjectIDs []string `json:"adminGroupObjectIDs"`
	TenantID            string   `json:"tenantID"`
}

// APIServerAccessProfile restricts access to the API server.
type APIServerAccessProfile struct {
	AuthorizedIPRanges   []string `json:"authorizedIPRanges"`
	EnablePrivateCluster *bool    `json:"enablePrivateCluster"`
}

// AddonProfile is one add-on (azurepolicy, omsagent, ...).
type AddonProfile struct {
	Enabled bool              `json:"enabled"`
	Config  map[string]string `json:"config"`
}

// SecurityProfile holds the Defender profile.
type SecurityProfile struct {
	Defender *DefenderProfile `json:"defender"`
}

// DefenderProfile is the Microsoft Defender sensor configuration.
type DefenderProfile struct {
	LogAnalyticsWorkspaceResourceID string `json:"logAnalyticsWorkspaceResourceId"`
	SecurityMonitoring              *struct {
		Enabled *bool `json:"enabled"`
	} `json:"securityMonitoring"`
}

// NetworkProfile is the cluster's network configuration.
type NetworkProfile struct {
	NetworkPlugin     string `json:"networkPlugin"`
	NetworkPluginMode string `json:"networkPluginMode"`
	NetworkPolicy     string `json:"networkPolicy"`
	NetworkDataplane  string `json:"networkDataplane"`
}

// AgentPoolProfile is one node pool.
type AgentPoolProfile struct {
	Name                   string `json:"name"`
	OSType                 string `json:"osType"`
	Mode                   string `json:"mode"`
	EnableEncryptionAtHost *bool  `json:"enableEncryptionAtHost"`
}

// Addon returns the add-on profile named name, matching the key without
// regard to case (ARM returns "azurepolicy" or "azurePolicy").
func (p ClusterProperties) Addon(name string) (AddonProfile, bool) {
	for k, v := range p.AddonProfiles {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return AddonProfile{}, false
}

// DiagnosticSetting is a Microsoft.Insights/diagnosticSettings resource of a
// cluster.
type DiagnosticSetting struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		WorkspaceID                 string `json:"workspaceId"`
		EventHubAuthorizationRuleID string `json:"eventHubAuthorizationRuleId"`
		StorageAccountID            string `json:"storageAccountId"`
		Logs                        []struct {
			Category      string `json:"category"`
			CategoryGroup string `json:"categoryGroup"`
			Enabled       bool   `json:"enabled"`
		} `json:"logs"`
	} `json:"properties"`
}

// Registry is a Microsoft.ContainerRegistry/registries resource.
type Registry struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Location   string `json:"location"`
	Properties struct {
		LoginServer         string `json:"loginServer"`
		PublicNetworkAccess string `json:"publicNetworkAccess"`
		NetworkRuleSet      *struct {
			DefaultAction string `json:"defaultAction"`
			IPRules       []struct {
				Action string `json:"action"`
				Value  string `json:"value"`
			} `json:"ipRules"`
		} `json:"networkRuleSet"`
		PrivateEndpointConnections []struct {
			ID         string `json:"id"`
			Properties struct {
				PrivateLinkServiceConnectionState struct {
					Status string `json:"status"`
				} `json:"privateLinkServiceConnectionState"`
			} `json:"properties"`
		} `json:"privateEndpointConnections"`
		Encryption *struct {
			Status string `json:"status"`
		} `json:"encryption"`
	} `json:"properties"`
}

// ARM decoding errors.
var (
	// ErrNotCluster: the JSON is not a managedCluster resource.
	ErrNotCluster = errors.New("not an AKS managedCluster resource")
	// ErrNotRegistry: the JSON is not a container registry resource.
	ErrNotRegistry = errors.New("not a container registry resource")
)

const (
	typeManagedCluster = "microsoft.containerservice/managedclusters"
	typeRegistry       = "microsoft.containerregistry/registries"
)

// DecodeCluster decodes recorded ARM managedCluster JSON (a GET of
// Microsoft.ContainerService/managedClusters).
func DecodeCluster(data []byte) (*Cluster, error) {
	var c Cluster
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("decode managedCluster JSON: %w", err)
	}
	if c.Type != "" && !strings.EqualFold(c.Type, typeManagedCluster) {
		return nil, fmt.Errorf("%w: type is %q", ErrNotCluster, c.Type)
	}
	if c.ID == "" && c.Name == "" {
		return nil, fmt.Errorf("%w: no id or name", ErrNotCluster)
	}
	if c.ID != "" && !strings.Contains(strings.ToLower(c.ID), "/providers/"+typeManagedCluster+"/") {
		return nil, fmt.Errorf("%w: id %q is not a managedClusters resource id", ErrNotCluster, c.ID)
	}
	return &c, nil
}

// DecodeRegistry decodes recorded ARM container registry JSON.
func DecodeRegistry(data []byte) (*Registry, error) {
	var r struct {
		Type string `json:"type"`
		Registry
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode registry JSON: %w", err)
	}
	if r.Type != "" && !strings.EqualFold(r.Type, typeRegistry) {
		return nil, fmt.Errorf("%w: type is %q", ErrNotRegistry, r.Type)
	}
	if r.Name == "" || r.Properties.LoginServer == "" {
		return nil, fmt.Errorf("%w: no name or properties.loginServer", ErrNotRegistry)
	}
	return &r.Registry, nil
}

// DecodeDiagnosticSettings decodes an ARM diagnosticSettings list
// ({"value":[...]}) or a single setting.
func DecodeDiagnosticSettings(data []byte) ([]DiagnosticSetting, error) {
	var list struct {
		Value *[]DiagnosticSetting `json:"value"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("decode diagnosticSettings JSON: %w", err)
	}
	if list.Value != nil {
		return *list.Value, nil
	}
	var one DiagnosticSetting
	if err := json.Unmarshal(data, &one); err != nil {
		return nil, fmt.Errorf("decode diagnosticSettings JSON: %w", err)
	}
	if one.Name == "" {
		return nil, errors.New("decode diagnosticSettings JSON: neither a list (value) nor a named setting")
	}
	return []DiagnosticSetting{one}, nil
}

// ManifestError is a document of a manifest stream that could not be
// decoded.
type ManifestError struct {
	Source string // file name
	Doc    int    // 1-based document number in the file
	Err    error
}

func (e *ManifestError) Error() string {
	return fmt.Sprintf("%s: document %d: %v", e.Source, e.Doc, e.Err)
}

func (e *ManifestError) Unwrap() error { return e.Err }

// maxManifestDoc bounds one YAML document, so a hostile file cannot make
// the decoder buffer without limit.
const maxManifestDoc = 4 << 20

// ManifestOptions say how manifests are placed in a snapshot.
type ManifestOptions struct {
	// Namespace is where namespaced objects without metadata.namespace
	// belong, as `kubectl apply` places them; "" means "default".
	Namespace string
}

func (o ManifestOptions) namespace() string {
	if o.Namespace == "" {
		return "default"
	}
	return o.Namespace
}

// Reasons an object is not assessed.
const (
	// ReasonCustomResource: a custom resource of a kind no check reads.
	ReasonCustomResource = "custom resource of a kind no check reads"
	// ReasonRemovedKind: PodSecurityPolicy, removed in Kubernetes 1.25.
	ReasonRemovedKind = "PodSecurityPolicy was removed in Kubernetes 1.25 and nothing replaces it as an object; Pod Security admission is set by namespace labels"
)

// DecodeManifests reads a multi-document YAML or JSON stream of Kubernetes
// objects (including v1 List) into objs.
//
// Objects of an older API version of a kind the checks read (batch/v1beta1
// CronJob, extensions/v1beta1 and networking.k8s.io/v1beta1 Ingress,
// apps/v1beta1, apps/v1beta2 and extensions/v1beta1 workloads,
// policy/v1beta1 PodDisruptionBudget, rbac v1beta1 roles, ...) are read as
// the current version. Cilium and Calico network policies are kept for the
// network-policy check, other built-in kinds for custom policies. Every
// other object is listed in objs.NotAssessed with the reason; namespaced
// objects without a namespace are placed in opts.Namespace. A document that
// is not a valid object fails with a ManifestError naming source and
// document.
func DecodeManifests(r io.Reader, source string, objs *Objects, opts ManifestOptions) error {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(newLimitedReader(r)))
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &ManifestError{Source: source, Doc: doc, Err: err}
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			continue
		}
		js, err := utilyaml.ToJSON(raw)
		if err != nil {
			return &ManifestError{Source: source, Doc: doc, Err: err}
		}
		if err := decodeObject(js, objs, opts, model.PostureNotAssessed{Source: source, Document: doc}); err != nil {
			return &ManifestError{Source: source, Doc: doc, Err: err}
		}
	}
}

// decodeObject adds one object (or the items of a List) in JSON to objs.
// at says where it came from.
func decodeObject(js []byte, objs *Objects, opts ManifestOptions, at model.PostureNotAssessed) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if head.APIVersion == "" || head.Kind == "" {
		return errors.New("not a Kubernetes object: no apiVersion or kind")
	}
	gv, err := schema.ParseGroupVersion(head.APIVersion)
	if err != nil {
		return fmt.Errorf("%s: %w", head.Kind, err)
	}
	if head.Kind == "List" && gv.Group == "" {
		for i, item := range head.Items {
			if err := decodeObject(item, objs, opts, at); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
		return nil
	}
	at.Kind, at.APIVersion, at.Namespace, at.Name = head.Kind, head.APIVersion, head.Metadata.Namespace, head.Metadata.Name
	if next, ok := successor(gv.Group, head.Kind); ok && gv != next {
		if js, err = upgrade(js, head.Kind, next); err != nil {
			return fmt.Errorf("%s %s as %s: %w", head.Kind, head.APIVersion, next, err)
		}
		gv = next
	}
	gvk := gv.WithKind(head.Kind)
	if k, ok := cniPolicyKinds[gvk]; ok {
		u, err := unstructuredOf(js, opts, !k.clusterWide)
		if err != nil {
			return err
		}
		objs.CNIPolicies = append(objs.CNIPolicies, *u)
		return nil
	}
	if head.Kind == "PodSecurityPolicy" {
		at.Reason = ReasonRemovedKind
		objs.NotAssessed = append(objs.NotAssessed, at)
		return nil
	}
	if !scheme.Scheme.Recognizes(gvk) {
		at.Reason = ReasonCustomResource
		if builtinGroup(gv.Group) {
			at.Reason = fmt.Sprintf("kind %s is not known in API version %s", head.Kind, head.APIVersion)
		}
		objs.NotAssessed = append(objs.NotAssessed, at)
		return nil
	}
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(js, nil, nil)
	if err != nil {
		return err
	}
	if m, err := meta.Accessor(obj); err == nil && m.GetNamespace() == "" && !clusterScoped[head.Kind] {
		m.SetNamespace(opts.namespace())
	}
	if objs.Add(obj) {
		return nil
	}
	u, err := unstructuredOf(js, opts, !clusterScoped[head.Kind])
	if err != nil {
		return err
	}
	objs.Other = append(objs.Other, *u)
	return nil
}

// LoadManifestDir decodes every *.yaml, *.yml and *.json file under dir.
func LoadManifestDir(dir string, opts ManifestOptions) (Objects, error) {
	var objs Objects
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, path)
			}
		}
		return nil
	})
	if err != nil {
		return objs, fmt.Errorf("read manifests in %s: %w", dir, err)
	}
	sort.Strings(files)
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return objs, fmt.Errorf("read manifest: %w", err)
		}
		err = DecodeManifests(f, path, &objs, opts)
		f.Close()
		if err != nil {
			return objs, err
		}
	}
	return objs, nil
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, t...)
		}
	}
	return out
}

// limitedReader fails (instead of truncating) once a stream passes the
// bound per document times a generous factor; YAMLReader itself buffers
// whole documents.
type limitedReader struct {
	r    io.Reader
	left int64
}

func newLimitedReader(r io.Reader) io.Reader { return &limitedReader{r: r, left: 64 * maxManifestDoc} }

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("manifest stream larger than %d bytes", 64*maxManifestDoc)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
