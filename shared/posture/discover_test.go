package posture

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const testSub = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"

// scopedCred hands out a different token per scope, so the servers can
// check that each got the token meant for it.
type scopedCred struct{}

func (scopedCred) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok := "arm-token"
	if len(o.Scopes) == 1 && o.Scopes[0] == aksServerScope {
		tok = "aks-token"
	}
	return azcore.AccessToken{Token: tok, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// armServer plays Azure Resource Manager on loopback for the requests the
// armcontainerservice client and the generic ARM reads send.
type armServer struct {
	t        *testing.T
	kube     *httptest.Server
	mu       sync.Mutex
	requests []string
}

func (a *armServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests = append(a.requests, r.Method+" "+r.URL.Path)
	a.mu.Unlock()
	if got := r.Header.Get("Authorization"); got != "Bearer arm-token" {
		http.Error(w, `{"error":{"code":"InvalidAuthenticationToken"}}`, http.StatusUnauthorized)
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		http.Error(w, `{"error":{"code":"MissingApiVersionParameter"}}`, http.StatusBadRequest)
		return
	}
	clusters := "/subscriptions/" + testSub + "/providers/Microsoft.ContainerService/managedClusters"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == clusters && r.URL.Query().Get("page") == "":
		// First page, with a nextLink to the second.
		a.page(w, "testdata/arm/cluster-hardened.json", "https://"+r.Host+clusters+"?api-version="+r.URL.Query().Get("api-version")+"&page=2")
	case r.Method == http.MethodGet && r.URL.Path == clusters:
		a.page(w, "testdata/arm/cluster-weak.json", "")
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/managedClusters/aks-shop-prod/listClusterUserCredential"):
		a.credentials(w)
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/aks-shop-prod/providers/Microsoft.Insights/diagnosticSettings"):
		a.page(w, "testdata/arm/diagnostics-audit.json", "")
	case r.Method == http.MethodGet && r.URL.Path == "/subscriptions/"+testSub+"/providers/Microsoft.ContainerRegistry/registries":
		a.page(w, "testdata/arm/registry-open.json", "")
	default:
		http.Error(w, `{"error":{"code":"NotFound"}}`, http.StatusNotFound)
	}
}

func (a *armServer) page(w http.ResponseWriter, file, next string) {
	b, err := os.ReadFile(file)
	if err != nil {
		a.t.Error(err)
	}
	page := map[string]any{}
	if err := json.Unmarshal(b, &page); err != nil {
		a.t.Error(err)
	}
	if _, isCollection := page["value"]; !isCollection {
		page = map[string]any{"value": []json.RawMessage{b}}
	}
	if next != "" {
		page["nextLink"] = next
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(page)
}

// credentials answers with a kubeconfig whose user runs kubelogin, as AKS
// returns for clusters with Entra ID integration.
func (a *armServer) credentials(w http.ResponseWriter) {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.kube.Certificate().Raw})
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: aks-shop-prod
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: clusterUser
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: kubelogin
      args: [get-token, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]
contexts:
- name: aks-shop-prod
  context: {cluster: aks-shop-prod, user: clusterUser}
current-context: aks-shop-prod
`, a.kube.URL, base64.StdEncoding.EncodeToString(ca))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"kubeconfigs": []map[string]any{{"name": "clusterUser", "value": []byte(kubeconfig)}}})
}

func TestDiscoveryThroughARM(t *testing.T) {
	kube := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer aks-token" {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/api/v1/namespaces" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"NamespaceList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"shop"}},{"metadata":{"name":"kube-system"}}]}`))
	}))
	defer kube.Close()
	fake := &armServer{t: t, kube: kube}
	srv := httptest.NewTLSServer(fake)
	defer srv.Close()

	d := &Discovery{Cred: scopedCred{}, Options: &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: "https://login.microsoftonline.com/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: srv.URL, Audience: "https://management.core.windows.net/"},
			},
		},
		Transport: srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}}}

	clusters, err := d.Clusters(t.Context(), testSub)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range clusters {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"aks-shop-prod", "aks-legacy"}, names); diff != "" {
		t.Fatalf("clusters over two pages (-want +got):\n%s", diff)
	}

	kc, err := d.Kube(t.Context(), clusters[0])
	if err != nil {
		t.Fatal(err)
	}
	ns, err := kc.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list namespaces with the Entra ID token in place of kubelogin: %v", err)
	}
	if len(ns.Items) != 2 {
		t.Errorf("namespaces = %d, want 2", len(ns.Items))
	}

	diags, err := d.Diagnostics(t.Context(), clusters[0].ID)
	if err != nil || len(diags) == 0 {
		t.Errorf("diagnostics = %v, %v", diags, err)
	}
	regs, err := d.Registries(t.Context(), testSub)
	if err != nil || len(regs) != 1 || regs[0].Properties.LoginServer != "legacyacr.azurecr.io" {
		t.Errorf("registries = %+v, %v", regs, err)
	}

	if _, err := d.Kube(t.Context(), clusters[1]); err == nil || !strings.Contains(err.Error(), "credentials of cluster") {
		t.Errorf("a cluster ARM has no credentials for: err = %v", err)
	}
	bad := &Discovery{Cred: scopedCred{}, Options: d.Options}
	if _, err := bad.Clusters(t.Context(), "00000000-0000-0000-0000-000000000000"); err == nil {
		t.Error("listing an unknown subscription succeeded")
	}
}
