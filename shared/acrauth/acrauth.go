// Package acrauth turns an Entra ID credential into registry credentials for
// Azure Container Registry: it exchanges an Entra ID access token for an ACR
// refresh token at the registry's /oauth2/exchange endpoint and offers the
// result as a go-containerregistry authenticator.
package acrauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-containerregistry/pkg/authn"
)

// Scope is the Entra ID scope of tokens that ACR accepts for the exchange.
const Scope = "https://containerregistry.azure.net/.default"

// RefreshTokenUser is the user name that goes with an ACR refresh token.
const RefreshTokenUser = "00000000-0000-0000-0000-000000000000"

// refreshLifetime is how long a refresh token is reused. ACR issues them for
// about three hours; renewing after one keeps a margin for long scans.
const refreshLifetime = time.Hour

// IsACR reports whether loginServer is an Azure Container Registry.
func IsACR(loginServer string) bool {
	host := strings.ToLower(loginServer)
	return strings.HasSuffix(host, ".azurecr.io") || strings.HasSuffix(host, ".azurecr.cn") ||
		strings.HasSuffix(host, ".azurecr.us")
}

// Exchanger exchanges Entra ID tokens for ACR refresh tokens.
type Exchanger struct {
	// Credential provides Entra ID tokens (azidentity in production).
	Credential azcore.TokenCredential
	// HTTP sends the exchange request; nil means http.DefaultClient.
	HTTP *http.Client
	// Tenant is passed to the exchange when set.
	Tenant string
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	token   string
	expires time.Time
}

// RefreshToken returns an ACR refresh token for loginServer, reusing one
// obtained within the last hour.
func (e *Exchanger) RefreshToken(ctx context.Context, loginServer string) (string, error) {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	e.mu.Lock()
	c, ok := e.cache[loginServer]
	e.mu.Unlock()
	if ok && now().Before(c.expires) {
		return c.token, nil
	}
	at, err := e.Credential.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{Scope}})
	if err != nil {
		return "", fmt.Errorf("get Entra ID token for %s: %w", loginServer, err)
	}
	rt, err := Exchange(ctx, e.HTTP, loginServer, e.Tenant, at.Token)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	if e.cache == nil {
		e.cache = map[string]cached{}
	}
	e.cache[loginServer] = cached{token: rt, expires: now().Add(refreshLifetime)}
	e.mu.Unlock()
	return rt, nil
}

// Authenticator returns a go-containerregistry authenticator for
// loginServer that presents an ACR refresh token.
func (e *Exchanger) Authenticator(loginServer string) authn.Authenticator {
	return &authenticator{e: e, server: loginServer}
}

type authenticator struct {
	e      *Exchanger
	server string
}

func (a *authenticator) Authorization() (*authn.AuthConfig, error) {
	return a.AuthorizationContext(context.Background())
}

func (a *authenticator) AuthorizationContext(ctx context.Context) (*authn.AuthConfig, error) {
	rt, err := a.e.RefreshToken(ctx, a.server)
	if err != nil {
		return nil, err
	}
	return &authn.AuthConfig{Username: RefreshTokenUser, Password: rt}, nil
}

// ErrExchange is returned when the registry refuses the token exchange.
var ErrExchange = errors.New("acr token exchange refused")

// Exchange posts an Entra ID access token to https://loginServer/oauth2/exchange
// and returns the ACR refresh token in the answer.
func Exchange(ctx context.Context, client *http.Client, loginServer, tenant, accessToken string) (string, error) {
	if client == nil {
		client = http.DefaultClient
	}
	form := url.Values{
		"grant_type":   {"access_token"},
		"service":      {loginServer},
		"access_token": {accessToken},
	}
	if tenant != "" {
		form.Set("tenant", tenant)
	}
	endpoint := "https://" + loginServer + "/oauth2/exchange"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("acr token exchange with %s: %w", loginServer, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("acr token exchange with %s: %w", loginServer, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("acr token exchange with %s: read answer: %w", loginServer, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: %s answered %s: %s", ErrExchange, loginServer, resp.Status, firstLine(body))
	}
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.RefreshToken == "" {
		return "", fmt.Errorf("%w: %s answered without a refresh_token", ErrExchange, loginServer)
	}
	return out.RefreshToken, nil
}

// firstLine keeps error answers short in messages.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
