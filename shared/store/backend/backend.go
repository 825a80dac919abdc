// Package backend chooses the store implementation from configuration:
// Cosmos DB when an endpoint is set, else the embedded single-file store.
// It is the one place that knows both implementations.
package backend

import (
	"context"
	"net"
	"net/url"
	"strings"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/cosmos"
	"github.com/palisade-sec/palisade/shared/store/embedded"
)

// Open returns the store cfg selects and logs which one (never the key).
//
// A Cosmos DB endpoint on a loopback address (a local emulator) is trusted
// without verifying its certificate, as such emulators use self-signed
// ones; any other endpoint is verified.
func Open(ctx context.Context, cfg config.Store, log zerolog.Logger) (store.Store, error) {
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
	s, err := cosmos.New(ctx, cosmos.Options{
		Endpoint:            cfg.CosmosEndpoint,
		Key:                 cfg.CosmosKey,
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
