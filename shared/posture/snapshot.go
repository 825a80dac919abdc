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
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/palisade-sec/palisade/shared/inventory"
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
	// Agent, for a cluster assessed from its palisade-agent's snapshot,
	// says how the agent reports; nil when the objects were read directly.
	Agent *AgentStatus
}

// AgentStatus is how a cluster's palisade-agent reports.
type AgentStatus struct {
	// LastSeen is the agent's latest message; SnapshotAt when it took the
	// snapshot assessed.
	LastSeen, SnapshotAt time.Time
	// Stale is set when the agent has been silent longer than StaleAfter:
	// the objects assessed may be out of date.
	Stale      bool
	StaleAfter time.Duration
}

// Objects are the Kubernetes objects the checks read (the inventory an
// agent sends, or what Collect lists).
type Objects = inventory.Objects

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

// DecodeManifests reads a multi-document YAML or JSON stream of Kubernetes
// objects (including v1 List) into objs. It returns how many documents were
// of kinds the checks do not read. A document that is not a valid object of
// a known kind fails with a ManifestError naming source and document.
func DecodeManifests(r io.Reader, source string, objs *Objects) (skipped int, err error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(newLimitedReader(r)))
	decode := scheme.Codecs.UniversalDeserializer().Decode
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return skipped, nil
		}
		if err != nil {
			return skipped, &ManifestError{Source: source, Doc: doc, Err: err}
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			continue
		}
		obj, gvk, err := decode(raw, nil, nil)
		if err != nil {
			if runtime.IsNotRegisteredError(err) {
				skipped++
				continue
			}
			return skipped, &ManifestError{Source: source, Doc: doc, Err: err}
		}
		if gvk != nil && gvk.Kind == "List" {
			list, ok := obj.(*corev1.List)
			if !ok {
				return skipped, &ManifestError{Source: source, Doc: doc, Err: fmt.Errorf("unexpected %T for List", obj)}
			}
			for i, item := range list.Items {
				inner, _, err := decode(item.Raw, nil, nil)
				if err != nil {
					if runtime.IsNotRegisteredError(err) {
						skipped++
						continue
					}
					return skipped, &ManifestError{Source: source, Doc: doc, Err: fmt.Errorf("item %d: %w", i, err)}
				}
				if !objs.Add(inner) {
					skipped++
				}
			}
			continue
		}
		if !objs.Add(obj) {
			skipped++
		}
	}
}

// LoadManifestDir decodes every *.yaml, *.yml and *.json file under dir.
func LoadManifestDir(dir string) (Objects, int, error) {
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
		return objs, 0, fmt.Errorf("read manifests in %s: %w", dir, err)
	}
	sort.Strings(files)
	skipped := 0
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return objs, skipped, fmt.Errorf("read manifest: %w", err)
		}
		n, err := DecodeManifests(f, path, &objs)
		f.Close()
		skipped += n
		if err != nil {
			return objs, skipped, err
		}
	}
	return objs, skipped, nil
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
