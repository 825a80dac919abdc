package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/analyzeaudit"
	"github.com/palisade-sec/palisade/functions/api"
	"github.com/palisade-sec/palisade/functions/assessposture"
	"github.com/palisade-sec/palisade/functions/detectruntime"
	"github.com/palisade-sec/palisade/functions/rescanimages"
	"github.com/palisade-sec/palisade/functions/scanimage"
	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/detectcli"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/scancli"
	"github.com/palisade-sec/palisade/shared/scanevents"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/sentinel"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/backend"
)

// env is everything the functions are built from.
type env struct {
	cfg     config.Config
	log     zerolog.Logger
	store   store.Store
	now     func() time.Time
	closers []func() error
	cred    azcore.TokenCredential // Entra ID, made on first need
}

// credential returns the process's Entra ID credential (managed identity,
// workload identity or az login), creating it once.
func (e *env) credential() (azcore.TokenCredential, error) {
	if e.cred == nil {
		c, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("Entra ID credential: %w", err)
		}
		e.cred = c
	}
	return e.cred, nil
}

// close releases what setup and newHandler opened, last first.
func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		if err := e.closers[i](); err != nil {
			e.log.Warn().Err(err).Msg("close")
		}
	}
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
	return &env{cfg: cfg, log: log, store: st, now: time.Now, closers: []func() error{st.Close}}, nil
}

// newHandler registers every function on a custom-handler server. The
// scanner opens its vulnerability DB in the background, so the handler
// answers the host's readiness probe at once.
func newHandler(ctx context.Context, e *env) (*customhandler.Server, error) {
	srv := customhandler.NewServer(e.log)
	postureAPI := posture.NewAPI(e.store)
	mounts := map[string]http.Handler{
		"GET /api/alerts":        detection.NewAlertsAPI(e.store),
		"GET /api/posture":       postureAPI,
		"GET /api/posture/score": postureAPI,
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

	var cred azcore.TokenCredential
	if e.cfg.Scan.UseEntraID {
		if c, err := e.credential(); err == nil {
			cred = c
		} else {
			e.log.Warn().Err(err).Msg("no Entra ID credential: *.azurecr.io pulls will fail")
		}
	}
	sc := scanner.NewLazy(scanner.OptionsFromConfig(e.cfg.Scan, cred, e.log))
	e.closers = append(e.closers, sc.Close)
	go func() {
		if _, err := sc.Get(ctx); err != nil && ctx.Err() == nil {
			e.log.Error().Err(err).Msg("vulnerability DB not ready; scans will try again")
		}
	}()
	events, err := scanEvents(e)
	if err != nil {
		return nil, err
	}
	// One scanner for both: the process can only have one DB open.
	srv.Handle(scanimage.Name, scanimage.New(e.store, sc, scanimage.Options{Registries: e.cfg.Scan.Registries, Publisher: events, Now: e.now}).Handle)
	srv.Handle(rescanimages.Name, rescanimages.New(e.store, sc, events, rescanimages.OptionsFromConfig(e.cfg.Rescan, e.now)).Handle)

	source, err := postureSource(e)
	if err != nil {
		return nil, err
	}
	srv.Handle(assessposture.Name, assessposture.New(e.store, source, e.cfg.Posture, e.now).Handle)
	return srv, nil
}

// scanEvents returns the Event Grid publisher of scan events, or nil when
// no topic is configured. A nil interface, not a nil pointer, means off.
func scanEvents(e *env) (scanimage.Publisher, error) {
	if !e.cfg.Rescan.PublishEvents() {
		return nil, nil
	}
	var cred azcore.TokenCredential
	if e.cfg.Rescan.EventGridKey == "" {
		c, err := e.credential()
		if err != nil {
			return nil, fmt.Errorf("event grid: %w", err)
		}
		cred = c
	}
	return scanevents.New(e.cfg.Rescan.EventGridEndpoint, e.cfg.Rescan.EventGridKey, cred, nil)
}

// postureSource reads one cluster through a kubeconfig when one is set, else
// discovers the subscriptions' AKS clusters through ARM with Entra ID.
func postureSource(e *env) (assessposture.Source, error) {
	if e.cfg.Posture.Kubeconfig != "" {
		return posture.LocalSource{Kubeconfig: e.cfg.Posture.Kubeconfig}, nil
	}
	d := &posture.Discovery{}
	if len(e.cfg.Posture.Subscriptions) > 0 {
		cred, err := e.credential()
		if err != nil {
			return nil, fmt.Errorf("posture: ARM: %w", err)
		}
		d.Cred = cred
	}
	return d, nil
}

// subcommands are the pipeline CLIs, each with its own exit-code policy.
func subcommands() map[string]func(context.Context, []string) int {
	return map[string]func(context.Context, []string) int{
		"detect": func(ctx context.Context, args []string) int {
			return detectcli.RunCLI(ctx, args, os.Stdout, os.Stderr)
		},
		"scan": func(ctx context.Context, args []string) int {
			return scancli.RunCLI(ctx, args, os.Stdout, os.Stderr)
		},
		"posture": func(ctx context.Context, args []string) int {
			return posture.RunCLI(ctx, args, os.Stdout, os.Stderr)
		},
	}
}

// serve answers the Functions host on FUNCTIONS_CUSTOMHANDLER_PORT.
func serve(ctx context.Context, _ []string) error {
	e, err := setup(ctx)
	if err != nil {
		return err
	}
	defer e.close()
	srv, err := newHandler(ctx, e)
	if err != nil {
		return err
	}
	addr := customhandler.ListenAddr(e.cfg.Common.Port)
	return customhandler.Serve(ctx, addr, srv, func(a net.Addr) {
		e.log.Info().Str(logging.FieldAddr, a.String()).Msg("custom handler listening")
	})
}
