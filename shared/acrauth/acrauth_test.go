package acrauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
)

// staticCredential hands out a fixed Entra ID token and counts requests.
type staticCredential struct {
	token  string
	scopes []string
	calls  atomic.Int32
}

func (c *staticCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.calls.Add(1)
	c.scopes = o.Scopes
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func exchangeServer(t *testing.T, wantToken string, exchanges *atomic.Int32) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth2/exchange" || r.Method != http.MethodPost {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			http.Error(w, "content type "+ct, http.StatusBadRequest)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		host := strings.TrimPrefix(srv.URL, "https://")
		got := map[string]string{"grant_type": r.PostForm.Get("grant_type"), "service": r.PostForm.Get("service"), "access_token": r.PostForm.Get("access_token")}
		want := map[string]string{"grant_type": "access_token", "service": host, "access_token": wantToken}
		if d := cmp.Diff(want, got); d != "" {
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		exchanges.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"refresh_token":"acr-refresh-1"}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestExchangerAuthenticator(t *testing.T) {
	var exchanges atomic.Int32
	srv := exchangeServer(t, "entra-token", &exchanges)
	host := strings.TrimPrefix(srv.URL, "https://")
	cred := &staticCredential{token: "entra-token"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ex := &Exchanger{Credential: cred, HTTP: srv.Client(), Now: func() time.Time { return now }}

	auth := ex.Authenticator(host)
	for range 2 {
		cfg, err := authn.Authorization(t.Context(), auth)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(&authn.AuthConfig{Username: RefreshTokenUser, Password: "acr-refresh-1"}, cfg); d != "" {
			t.Fatalf("auth config (-want +got):\n%s", d)
		}
	}
	if exchanges.Load() != 1 || cred.calls.Load() != 1 {
		t.Fatalf("want one exchange reused, got %d exchanges and %d token requests", exchanges.Load(), cred.calls.Load())
	}
	if d := cmp.Diff([]string{Scope}, cred.scopes); d != "" {
		t.Fatalf("scopes (-want +got):\n%s", d)
	}
	now = now.Add(2 * time.Hour)
	if _, err := authn.Authorization(t.Context(), auth); err != nil {
		t.Fatal(err)
	}
	if exchanges.Load() != 2 {
		t.Fatalf("want a new exchange after the refresh token aged, got %d", exchanges.Load())
	}
}

func TestExchangeRefused(t *testing.T) {
	var exchanges atomic.Int32
	srv := exchangeServer(t, "entra-token", &exchanges)
	host := strings.TrimPrefix(srv.URL, "https://")
	_, err := Exchange(t.Context(), srv.Client(), host, "", "wrong-token")
	if !errors.Is(err, ErrExchange) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("want ErrExchange naming the 401, got %v", err)
	}
}

func TestIsACR(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"contoso.azurecr.io", true},
		{"Contoso.AzureCR.io", true},
		{"localhost:5000", false},
		{"azurecr.io.evil.example", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			if got := IsACR(tc.host); got != tc.want {
				t.Fatalf("IsACR(%q) = %v, want %v", tc.host, got, tc.want)
			}
		})
	}
}
