package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade"
	"github.com/palisade-sec/palisade/functions/console"
	"github.com/palisade-sec/palisade/functions/settings"
	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/funchost"
	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/localregistry"
	"github.com/palisade-sec/palisade/shared/logging"
)

// scanFunction receives the local registry's push events.
const scanFunction = "scanimage"

const devUsage = `usage: palisade dev [--app DIR]

Runs the whole pipeline on this machine with no Azure: the handler and, in
front of it, the emulated Functions host on PALISADE_DEV_ADDR (Event Grid
webhook, timers, admin API, /api; / opens the console), and a local
registry on PALISADE_DEV_REGISTRY_ADDR whose pushes raise ImagePushed. With
no vulnerability DB (offline) scans use the built-in demo DB and say so,
unless PALISADE_TRIVY_DEMO_DB is set; with no exploitation feed (KEV,
EPSS) findings are prioritised without them, and it says so. The function
definitions are built in; --app DIR, or a current directory holding
host.json, uses those on disk instead. Logs are for a person on a terminal,
JSON lines elsewhere.
`

// dev runs the whole pipeline on this machine: the handler, and in front of
// it the emulated Functions host (Event Grid webhook, timers, admin API,
// forwarded /api, / sent to the console), plus a local registry whose
// pushes raise ImagePushed.
func dev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	appDir := fs.String("app", "", "function app `folder`: host.json and the function folders, or a source checkout (default: the current directory when it holds host.json, else the built-in definitions)")
	if err := parseFlags(fs, args, devUsage, stdout); err != nil {
		return err
	}
	app, err := loadApp(*appDir)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	e, err := setup(ctx, os.Getenv, func(level string) zerolog.Logger { return logging.Terminal(stderr, level) })
	if err != nil {
		return err
	}
	defer e.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if os.Getenv("PALISADE_TRIVY_DEMO_DB") == "" {
		// Offline, a trial run scans against the demo DB and says so;
		// elsewhere the demo DB is off unless asked for.
		e.cfg.Scan.DemoDBFallback = true
	}
	if reg := e.cfg.Common.DevRegistry; reg != "" {
		// The local registry is ours and speaks plain HTTP on loopback.
		e.cfg.Scan.Registries = append(e.cfg.Scan.Registries, reg)
		e.cfg.Scan.InsecureRegistries = append(e.cfg.Scan.InsecureRegistries, reg)
	}

	var wg sync.WaitGroup
	errc := make(chan error, 4)
	handlerAddr := make(chan net.Addr, 1)
	srv, err := newHandler(ctx, e)
	if err != nil {
		return err
	}
	wg.Go(func() {
		errc <- customhandler.Serve(ctx, "127.0.0.1:0", srv, func(a net.Addr) { handlerAddr <- a })
	})
	var addr net.Addr
	select {
	case addr = <-handlerAddr:
	case err := <-errc:
		return err
	}
	h := funchost.Attach(app, "http://"+addr.String(), e.log.With().Str(logging.FieldComponent, "host").Logger())
	if err := h.WaitReady(ctx, 30*time.Second); err != nil {
		return err
	}
	getenv := settingOrDefault()
	wg.Go(func() {
		if err := h.RunTimers(ctx, getenv); err != nil {
			errc <- err
		}
	})
	wg.Go(func() { errc <- customhandler.Serve(ctx, e.cfg.Common.DevAddress, devMux(h), nil) })
	if reg := e.cfg.Common.DevRegistry; reg != "" {
		publish := eventGridPublisher(ctx, h, &wg)
		wg.Go(func() {
			errc <- customhandler.Serve(ctx, reg, localregistry.New(reg, e.log, e.now, publish), nil)
		})
	}
	printBanner(stdout, e.cfg, app)
	reportFeeds(ctx, e)

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// reportFeeds says, as the demo DB does, when findings are prioritised
// without exploitation feeds (offline, none was ever downloaded) or with
// stale ones.
func reportFeeds(ctx context.Context, e *env) {
	st, err := intel.NewSource(e.store, settings.Intel(e.cfg.Intel)).Status(ctx)
	if err != nil {
		e.log.Warn().Err(err).Msg("the state of the exploitation feeds cannot be read")
		return
	}
	var missing []string
	for _, fs := range []intel.FeedStatus{st.KEV, st.EPSS} {
		if !fs.Held() {
			missing = append(missing, strings.ToUpper(fs.Feed))
		}
	}
	switch {
	case len(missing) > 0:
		e.log.Warn().Strs("problems", st.Problems()).Msg("NO EXPLOITATION FEED for " + strings.Join(missing, " and ") +
			": findings are prioritised on severity, fix and running state alone; refreshintel downloads the feeds (needs internet): curl -X POST " +
			"http://" + e.cfg.Common.DevAddress + "/admin/functions/refreshintel -d '{\"input\":\"\"}'")
	case st.Stale():
		e.log.Warn().Strs("problems", st.Problems()).Msg("exploitation feeds are STALE: the last good copies are in use")
	}
}

// devMux is the emulated host's surface, plus a redirect of / to the
// console (in Azure, / is the host's own page).
func devMux(h *funchost.Host) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h.ServeMux())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, console.Base+"/", http.StatusFound)
	})
	return mux
}

// loadApp reads the function definitions: from dir when given, from the
// current directory when it holds host.json (a `make app` folder or a
// source checkout), else those built into the binary.
func loadApp(dir string) (*funchost.App, error) {
	if dir != "" {
		return funchost.LoadApp(dir)
	}
	if _, err := os.Stat("host.json"); err == nil {
		return funchost.LoadApp(".")
	}
	return funchost.LoadAppFS(palisade.App())
}

// eventGridPublisher plays Event Grid for the local registry: each event is
// delivered to scanimage with Event Grid's retry schedule, at most four
// deliveries at a time.
func eventGridPublisher(ctx context.Context, h *funchost.Host, wg *sync.WaitGroup) func(json.RawMessage) {
	slots := make(chan struct{}, 4)
	return func(ev json.RawMessage) {
		if _, ok := h.App.Functions[scanFunction]; !ok {
			h.Log.Warn().Msg("registry event not delivered: the app has no scanimage function")
			return
		}
		wg.Go(func() {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-slots }()
			if err := h.PublishEventGrid(ctx, scanFunction, []json.RawMessage{ev}, 30); err != nil && ctx.Err() == nil {
				h.Log.Error().Err(err).Msg("registry event dropped after Event Grid's retries")
			}
		})
	}
}

// settingOrDefault resolves %SETTING% references in function.json from the
// environment, falling back to the setting's declared default.
func settingOrDefault() func(string) string {
	defaults := map[string]string{}
	for _, s := range config.Settings() {
		defaults[s.Name] = s.Default
	}
	return func(name string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return defaults[name]
	}
}

func printBanner(w io.Writer, cfg config.Config, app *funchost.App) {
	dev := "http://" + cfg.Common.DevAddress
	fmt.Fprintf(w, "\nPalisade dev: the Functions host is emulated on %s\n", dev)
	fmt.Fprintf(w, "  store            embedded file %s\n", cfg.Store.Path)
	if cfg.Store.CosmosEndpoint != "" {
		fmt.Fprintf(w, "  store            Cosmos DB %s\n", cfg.Store.CosmosEndpoint)
	}
	fmt.Fprintf(w, "  console          %s%s/\n", dev, console.Base)
	fmt.Fprintf(w, "  query API        %s/api/images\n", dev)
	fmt.Fprintf(w, "  Event Grid       %s/runtime/webhooks/eventgrid?functionName=NAME\n", dev)
	fmt.Fprintf(w, "  run a function   curl -X POST %s/admin/functions/NAME -d '{\"input\":\"\"}'\n", dev)
	if cfg.Common.DevRegistry != "" {
		fmt.Fprintf(w, "  registry         %s (a push raises ImagePushed)\n", cfg.Common.DevRegistry)
	}
	fmt.Fprintf(w, "  functions        %v\n\n", app.Names())
}
