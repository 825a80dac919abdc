package posture

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	azruntime "github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v6"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// aksServerScope is the token scope of the AKS Entra ID server application,
// accepted by the API server of clusters with Entra ID integration.
const aksServerScope = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"

// ARM api-versions of the resources read without a typed client.
const (
	diagnosticsAPIVersion = "2021-05-01-preview"
	registryAPIVersion    = "2023-07-01"
)

// Discovery finds AKS clusters and container registries through ARM and
// opens a Kubernetes client per cluster.
type Discovery struct {
	Cred    azcore.TokenCredential
	Options *arm.ClientOptions // nil: public cloud
}

// Clusters lists the managed clusters of a subscription.
func (d *Discovery) Clusters(ctx context.Context, subscription string) ([]*Cluster, error) {
	mc, err := armcontainerservice.NewManagedClustersClient(subscription, d.Cred, d.Options)
	if err != nil {
		return nil, fmt.Errorf("managed clusters client for %s: %w", subscription, err)
	}
	var out []*Cluster
	pager := mc.NewListPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list clusters of subscription %s: %w", subscription, err)
		}
		for _, c := range page.Value {
			raw, err := json.Marshal(c)
			if err != nil {
				return nil, fmt.Errorf("encode cluster: %w", err)
			}
			cl, err := DecodeCluster(raw)
			if err != nil {
				return nil, err
			}
			out = append(out, cl)
		}
	}
	return out, nil
}

// Kube opens the clients (Clients) of cluster's API server from its user credentials.
// For clusters with Entra ID integration, the kubeconfig's exec plugin is
// replaced by tokens from Cred.
func (d *Discovery) Kube(ctx context.Context, cl *Cluster) (kubernetes.Interface, error) {
	sub, rg, err := parseResourceID(cl.ID)
	if err != nil {
		return nil, err
	}
	mc, err := armcontainerservice.NewManagedClustersClient(sub, d.Cred, d.Options)
	if err != nil {
		return nil, fmt.Errorf("managed clusters client for %s: %w", sub, err)
	}
	creds, err := mc.ListClusterUserCredentials(ctx, rg, cl.Name, nil)
	if err != nil {
		return nil, fmt.Errorf("credentials of cluster %s: %w", cl.ID, err)
	}
	if len(creds.Kubeconfigs) == 0 || creds.Kubeconfigs[0] == nil {
		return nil, fmt.Errorf("credentials of cluster %s: no kubeconfig returned", cl.ID)
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(creds.Kubeconfigs[0].Value)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig of cluster %s: %w", cl.ID, err)
	}
	if rc.ExecProvider != nil || (cl.Properties.AADProfile != nil && isTrue(cl.Properties.AADProfile.Managed)) {
		rc.ExecProvider, rc.AuthProvider = nil, nil
		rc.Username, rc.Password, rc.BearerToken = "", "", ""
		rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return &entraTransport{next: rt, cred: d.Cred}
		}
	}
	kc, err := NewClients(rc)
	if err != nil {
		return nil, fmt.Errorf("client of cluster %s: %w", cl.ID, err)
	}
	return kc, nil
}

// entraTransport adds an Entra ID token for the AKS server application.
type entraTransport struct {
	next http.RoundTripper
	cred azcore.TokenCredential
}

func (t *entraTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.cred.GetToken(req.Context(), policy.TokenRequestOptions{Scopes: []string{aksServerScope}})
	if err != nil {
		return nil, fmt.Errorf("token for the AKS API server: %w", err)
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok.Token)
	return t.next.RoundTrip(r)
}

// Diagnostics reads a cluster's diagnostic settings.
func (d *Discovery) Diagnostics(ctx context.Context, clusterID string) ([]DiagnosticSetting, error) {
	var out []DiagnosticSetting
	err := d.armList(ctx, clusterID+"/providers/Microsoft.Insights/diagnosticSettings", diagnosticsAPIVersion, func(raw json.RawMessage) error {
		var ds DiagnosticSetting
		if err := json.Unmarshal(raw, &ds); err != nil {
			return fmt.Errorf("decode diagnostic setting: %w", err)
		}
		out = append(out, ds)
		return nil
	})
	if out == nil && err == nil {
		out = []DiagnosticSetting{} // known to have none
	}
	return out, err
}

// Registries lists the container registries of a subscription.
func (d *Discovery) Registries(ctx context.Context, subscription string) ([]Registry, error) {
	var out []Registry
	err := d.armList(ctx, "/subscriptions/"+url.PathEscape(subscription)+"/providers/Microsoft.ContainerRegistry/registries", registryAPIVersion,
		func(raw json.RawMessage) error {
			r, err := DecodeRegistry(raw)
			if err != nil {
				return err
			}
			out = append(out, *r)
			return nil
		})
	return out, err
}

// maxARMPage bounds one ARM response body.
const maxARMPage = 32 << 20

// armList GETs an ARM collection and follows nextLink.
func (d *Discovery) armList(ctx context.Context, path, apiVersion string, fn func(json.RawMessage) error) error {
	client, err := arm.NewClient("palisade/posture", "v1.0.0", d.Cred, d.Options)
	if err != nil {
		return fmt.Errorf("ARM client: %w", err)
	}
	next := strings.TrimSuffix(client.Endpoint(), "/") + path + "?api-version=" + apiVersion
	for next != "" {
		req, err := azruntime.NewRequest(ctx, http.MethodGet, next)
		if err != nil {
			return fmt.Errorf("ARM request %s: %w", path, err)
		}
		resp, err := client.Pipeline().Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxARMPage))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		if !azruntime.HasStatusCode(resp, http.StatusOK) {
			return fmt.Errorf("GET %s: %s: %s", path, resp.Status, truncate(string(body), 300))
		}
		var page struct {
			Value    []json.RawMessage `json:"value"`
			NextLink string            `json:"nextLink"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("GET %s: decode: %w", path, err)
		}
		for _, v := range page.Value {
			if err := fn(v); err != nil {
				return err
			}
		}
		next = page.NextLink
	}
	return nil
}

// parseResourceID returns the subscription and resource group of an ARM id.
func parseResourceID(id string) (sub, rg string, err error) {
	rid, err := arm.ParseResourceID(id)
	if err != nil {
		return "", "", fmt.Errorf("cluster id %q: %w", id, err)
	}
	return rid.SubscriptionID, rid.ResourceGroupName, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// LocalSource assesses the one cluster a kubeconfig points at, with no ARM
// (local runs): the control-plane and registry checks do not run.
type LocalSource struct {
	Kubeconfig string
}

// Clusters returns the kubeconfig's current cluster.
func (l LocalSource) Clusters(context.Context, string) ([]*Cluster, error) {
	raw, err := clientcmd.LoadFromFile(l.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", l.Kubeconfig, err)
	}
	name := raw.CurrentContext
	if c, ok := raw.Contexts[name]; ok && c.Cluster != "" {
		name = c.Cluster
	}
	return []*Cluster{{Name: name}}, nil
}

// Kube opens the clients (Clients) from the kubeconfig.
func (l LocalSource) Kube(context.Context, *Cluster) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", l.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", l.Kubeconfig, err)
	}
	kc, err := NewClients(rc)
	if err != nil {
		return nil, fmt.Errorf("client from %s: %w", l.Kubeconfig, err)
	}
	return kc, nil
}

// Diagnostics are unknown without ARM.
func (LocalSource) Diagnostics(context.Context, string) ([]DiagnosticSetting, error) { return nil, nil }

// Registries are unknown without ARM.
func (LocalSource) Registries(context.Context, string) ([]Registry, error) { return nil, nil }
