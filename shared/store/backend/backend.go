// Package backend chooses the store implementation from configuration:
// Cosmos DB when an endpoint is set, else the embedded single-file store.
// It is the one place that knows both implementations.
package backend

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/cosmos"
	"github.com/palisade-sec/palisade/shared/store/embedded"
)

// Open returns the store cfg selects and logs which one (never the key).
// cred is the process's Entra ID credential for Cosmos DB without an account
// key; it is called only then, so that a process with a key or the embedded
// store never makes one.
//
// A Cosmos DB endpoint on a loopback address (a local emulator) is trusted
// without verifying its certificate, as such emulators use self-signed
// ones; any other endpoint is verified.
func Open(ctx context.Context, cfg config.Store, cred func() (azcore.TokenCredential, error), log zerolog.Logger) (store.Store, error) {
	log = log.With().Str(logging.FieldComponent, "store").Logger()
	if cfg.CosmosEndpoint == "" {
		s, err := embedded.Open(cfg.Path)
		if err != nil {
			return nil, err
		}
		log.Info().Str("backend", "embedded").Str("path", cfg.Path).Msg("using the embedded store")
		return s, nil
	}
	loopback := isLoopbackURL(cfg.CosmosEndpoint)
	var tc azcore.TokenCredential
	if cfg.CosmosKey == "" {
		c, err := cred()
		if err != nil {
			return nil, fmt.Errorf("cosmos DB without an account key: %w", err)
		}
		tc = c
	}
	s, err := cosmos.New(ctx, cosmos.Options{
		Endpoint:            cfg.CosmosEndpoint,
		Key:                 cfg.CosmosKey,
		Credential:          tc,
		Database:            cfg.CosmosDatabase,
		InsecureLoopbackTLS: loopback,
	})
	if err != nil {
		return nil, err
	}
	auth := "entra-id"
	if cfg.CosmosKey != "" {
		auth = "account-key"
	}
	ev := log.Info()
	if loopback {
		ev = log.Warn().Bool("tls_verify", false)
	}
	ev.Str("backend", "cosmos").Str("endpoint", cfg.CosmosEndpoint).Str("database", cfg.CosmosDatabase).
		Str("auth", auth).Msg("using Cosmos DB")
	return s, nil
}

func isLoopbackURL(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
