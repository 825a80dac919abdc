package main

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/api"
	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/backend"
)

// env is everything the functions are built from.
type env struct {
	cfg   config.Config
	log   zerolog.Logger
	store store.Store
	now   func() time.Time
}

// setup reads the configuration and opens the store.
func setup(ctx context.Context) (*env, error) {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	log := logging.Stderr(cfg.Common.LogLevel)
	st, err := backend.Open(ctx, cfg.Store, log)
	if err != nil {
		return nil, err
	}
	return &env{cfg: cfg, log: log, store: st, now: time.Now}, nil
}

// newHandler registers every function on a custom-handler server.
func newHandler(e *env) *customhandler.Server {
	srv := customhandler.NewServer(e.log)
	mounts := map[string]http.Handler{}
	srv.HandleHTTP("/api/", "api", api.New(e.store, api.Options{Key: e.cfg.Common.APIKey, Mounts: mounts}))
	return srv
}

// serve answers the Functions host on FUNCTIONS_CUSTOMHANDLER_PORT.
func serve(ctx context.Context, _ []string) error {
	e, err := setup(ctx)
	if err != nil {
		return err
	}
	defer e.store.Close()
	addr := customhandler.ListenAddr(e.cfg.Common.Port)
	e.log.Info().Str(logging.FieldAddr, addr).Msg("custom handler listening")
	return customhandler.Serve(ctx, addr, newHandler(e), nil)
}
