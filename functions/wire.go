package main

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/analyzeaudit"
	"github.com/palisade-sec/palisade/functions/api"
	"github.com/palisade-sec/palisade/functions/detectruntime"
	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/detectcli"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/sentinel"
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
func newHandler(e *env) (*customhandler.Server, error) {
	srv := customhandler.NewServer(e.log)
	mounts := map[string]http.Handler{
		"GET /api/alerts": detection.NewAlertsAPI(e.store),
	}
	srv.HandleHTTP("/api/", "api", api.New(e.store, api.Options{Key: e.cfg.Common.APIKey, Mounts: mounts}))

	var pub detection.Publisher // nil when Sentinel is off
	if e.cfg.Sentinel.Enabled() {
		c, err := sentinel.NewDefault(e.cfg.Sentinel)
		if err != nil {
			return nil, err
		}
		pub = c
	}
	dr, err := detectruntime.New(e.store, pub, e.cfg.Detect, e.now)
	if err != nil {
		return nil, err
	}
	srv.Handle(detectruntime.Name, dr.Handle)
	aa, err := analyzeaudit.New(e.store, pub, e.cfg.Detect, e.now)
	if err != nil {
		return nil, err
	}
	srv.Handle(analyzeaudit.Name, aa.Handle)
	return srv, nil
}

// subcommands are the pipeline CLIs, each with its own exit-code policy.
func subcommands() map[string]func(context.Context, []string) int {
	return map[string]func(context.Context, []string) int{
		"detect": func(ctx context.Context, args []string) int {
			return detectcli.RunCLI(ctx, args, os.Stdout, os.Stderr)
		},
	}
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
	srv, err := newHandler(e)
	if err != nil {
		return err
	}
	return customhandler.Serve(ctx, addr, srv, nil)
}
