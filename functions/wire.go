package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/analyzeaudit"
	"github.com/palisade-sec/palisade/functions/api"
	"github.com/palisade-sec/palisade/functions/assessposture"
	"github.com/palisade-sec/palisade/functions/console"
	"github.com/palisade-sec/palisade/functions/detectruntime"
	"github.com/palisade-sec/palisade/functions/ingestinventory"
	"github.com/palisade-sec/palisade/functions/refreshintel"
	"github.com/palisade-sec/palisade/functions/rescanimages"
	"github.com/palisade-sec/palisade/functions/scanimage"
	"github.com/palisade-sec/palisade/functions/settings"
	"github.com/palisade-sec/palisade/shared/audit"
	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/scanevents"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/sentinel"
	"github.com/palisade-sec/palisade/shared/snapshots"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/backend"
	"github.com/palisade-sec/palisade/shared/vex"
)

// env is everything the functions are built from.
type env struct {
	cfg     config.Config
	log     zerolog.Logger
	store   store.Store
	now     func() time.Time
	closers []func() error
	cred    azcore.TokenCredential // the process's one Entra ID credential, made on first need
}

// credential returns the process's Entra ID credential (managed identity,
// workload identity or az login), creating it once: the store, the
// scanner's ACR token exchange, Sentinel, Event Grid and ARM discovery all
// share it.
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

// setup reads the configuration, makes the logger (newLog, at the
// configured level) and opens the store.
func setup(ctx context.Context, getenv func(string) string, newLog func(level string) zerolog.Logger) (*env, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	e := &env{cfg: cfg, log: newLog(cfg.Common.LogLevel), now: time.Now}
	st, err := backend.Open(ctx, cfg.Store, e.credential, e.log)
	if err != nil {
		return nil, err
	}
	e.store = st
	e.closers = append(e.closers, st.Close)
	return e, nil
}

// newHandler registers every function on a custom-handler server, mapping
// the settings onto each one's Options. The scanner opens its vulnerability
// DB (and fetches the Windows advisory data when none is stored) in the
// background, so the handler answers the host's readiness probe at once.
func newHandler(ctx context.Context, e *env) (*customhandler.Server, error) {
	srv := customhandler.NewServer(e.log)
	io := settings.Intel(e.cfg.Intel)
	io.Now = e.now
	vexDocs := vex.NewStore(e.store, e.now)
	feeds := vex.NewSource(intel.NewSource(e.store, io), vexDocs)
	p := e.cfg.Posture
	gateRules, err := settings.GateRules(e.cfg.Gate)
	if err != nil {
		return nil, err
	}

	// One Logs Ingestion client for every stream; nil interfaces when
	// Sentinel is off.
	var (
		pub       detection.Publisher
		summaries scanimage.ImagePublisher
		results   assessposture.ResultPublisher
	)
	if e.cfg.Sentinel.Enabled() {
		cred, err := e.credential()
		if err != nil {
			return nil, fmt.Errorf("sentinel: %w", err)
		}
		c, err := sentinel.New(settings.Sentinel(e.cfg.Sentinel), cred)
		if err != nil {
			return nil, err
		}
		pub, summaries, results = c, c, c
	}
	apiOpts := api.Options{
		Key: e.cfg.Common.APIKey, Feeds: feeds, Intel: feeds, VEX: vexDocs, AgentStaleAfter: e.cfg.Inventory.StaleAfter,
		Remediate: p.Remediate, RemediateApply: p.RemediateApply, GateRules: gateRules, Now: e.now,
	}
	consoleOpts := console.Options{Key: e.cfg.Common.APIKey, MaxAge: e.cfg.Common.ConsoleRefresh, GateRules: gateRules, Now: e.now,
		Log: e.log.With().Str(logging.FieldFunction, console.Name).Logger()}
	if pub != nil {
		apiOpts.Publisher, consoleOpts.Publisher = pub, pub
	}
	srv.HandleHTTP("/api/", "api", api.New(e.store, apiOpts))
	con, err := console.New(e.store, consoleOpts)
	if err != nil {
		return nil, err
	}
	srv.HandleHTTP(console.Base+"/", console.Name, con)
	srv.HandleHTTP(console.Base, console.Name, con)
	d := e.cfg.Detect
	srv.Handle(ingestinventory.Name, ingestinventory.New(e.store, ingestinventory.Options{HistoryDays: p.HistoryDays, Now: e.now, Detection: settings.Detection(d), Publisher: pub}).Handle)
	dr, err := detectruntime.New(e.store, pub, detectruntime.Options{
		Detection: settings.Detection(d), BaselineLearning: d.BaselineLearning, BaselineMaxDestinations: d.BaselineMaxDestinations,
		Retries: d.Retries, RetryDelay: d.RetryDelay, Now: e.now,
	})
	if err != nil {
		return nil, err
	}
	srv.Handle(detectruntime.Name, dr.Handle)
	ao, err := settings.Audit(d)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	rules, err := audit.New(ao)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	aa, err := analyzeaudit.New(e.store, pub, analyzeaudit.Options{Detection: settings.Detection(d), Rules: rules, Identities: settings.Identities(d), Retries: d.Retries, RetryDelay: d.RetryDelay, Now: e.now})
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
	scanOpts := settings.Scanner(e.cfg.Scan, cred, e.log)
	// The Windows advisory data lives in the state container, so every
	// instance matches against what the DB lifecycle (rescanimages) stored.
	msrcOpts := settings.MSRC(e.cfg.MSRC)
	msrcOpts.Now = e.now
	scanOpts.Windows = msrc.NewSource(msrc.StateStore{St: e.store, Now: e.now}, msrcOpts)
	sc := scanner.NewLazy(scanOpts)
	e.closers = append(e.closers, sc.Close)
	go func() {
		s, err := sc.Get(ctx)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Error().Err(err).Msg("vulnerability DB not ready; scans will try again")
			}
			return
		}
		// Scans never wait for MSRC: the Windows advisory data is fetched
		// here when none is stored (a first start), then kept current by
		// rescanimages; Windows images scanned before it arrives are
		// unsupported until the next rescan matches them.
		s.PrepareWindows(ctx)
	}()
	events, err := scanEvents(e)
	if err != nil {
		return nil, err
	}
	// One scanner for both: the process can only have one DB open, and one
	// Windows advisory source.
	srv.Handle(scanimage.Name, scanimage.New(e.store, sc, scanimage.Options{Registries: e.cfg.Scan.Registries, Publisher: events, Intel: feeds, Summaries: summaries, Now: e.now}).Handle)
	r := e.cfg.Rescan
	srv.Handle(rescanimages.Name, rescanimages.New(e.store, sc, events, rescanimages.Options{
		WindowDays: r.WindowDays, DBMaxAge: r.DBMaxAge, PageSize: r.PageSize, MaxDuration: r.MaxDuration, Intel: feeds, Summaries: summaries, Now: e.now,
	}).Handle)
	det, err := detection.NewDetector(settings.Detection(d))
	if err != nil {
		return nil, err
	}
	alerts := detection.NewPipeline(e.store, pub, det, detection.PipelineOptions{Function: refreshintel.Name, Retries: d.Retries, RetryDelay: d.RetryDelay, Now: e.now})
	var intelEvents refreshintel.Publisher
	if events != nil {
		intelEvents = events
	}
	srv.Handle(refreshintel.Name, refreshintel.New(e.store, feeds, det, alerts, intelEvents, refreshintel.Options{
		MaxDuration: e.cfg.Intel.MaxDuration, VEXDir: e.cfg.Intel.VEXDir, VEX: vexDocs, Now: e.now,
	}).Handle)

	source, err := postureSource(e)
	if err != nil {
		return nil, err
	}
	inventories := snapshots.New(e.store, snapshots.Options{Now: e.now})
	srv.Handle(assessposture.Name, assessposture.New(e.store, source, inventories, assessposture.Options{
		Engine: settings.Posture(p), Subscriptions: p.Subscriptions, Kubeconfig: p.Kubeconfig,
		Remediate: p.Remediate, RemediateApply: p.RemediateApply, AgentStaleAfter: e.cfg.Inventory.StaleAfter, Results: results, Now: e.now,
	}).Handle)
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

const serveUsage = `usage: palisade serve

Answers the Azure Functions host (custom handler) on
FUNCTIONS_CUSTOMHANDLER_PORT, logging JSON lines to standard error as the
host expects. Settings come from the environment (see the README).
`

// serve answers the Functions host on FUNCTIONS_CUSTOMHANDLER_PORT.
func serve(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	if err := parseFlags(fs, args, serveUsage, stdout); err != nil {
		return err
	}
	e, err := setup(ctx, os.Getenv, logging.Stderr)
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

// parseFlags parses the flags of serve or dev: --help prints usage on
// stdout (errHelp), anything else that is wrong is errUsage.
func parseFlags(fs *flag.FlagSet, args []string, usage string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return errHelp
	case err != nil:
		return fmt.Errorf("%w: %v", errUsage, err)
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}
