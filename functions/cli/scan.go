// Package scancli is `palisade scan`: pipeline mode. It scans an image from a
// registry or a local archive (docker save tar or OCI layout) with the same
// scanner as scan on push, prints a table, JSON or SARIF, and sets the exit
// code from --fail-on, for Azure DevOps and GitHub pipelines before a push.
package scancli

import (
	"context"

	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanner"
)

// Exit codes.
const (
	ExitOK       = 0 // scanned; nothing at or above --fail-on
	ExitFindings = 1 // findings at or above --fail-on, or an image that cannot be assessed
	ExitError    = 2 // bad usage or the scan failed
)

const usage = `usage: palisade scan [flags] IMAGE
       palisade scan [flags] --input image.tar|oci-layout-dir

Scans a container image for vulnerable OS and language packages.
Settings come from PALISADE_TRIVY_* and PALISADE_SCAN_* (see the README);
registry credentials from PALISADE_REGISTRY_* or the docker config.

flags:
`

// RunCLI runs `palisade scan` with args (after "scan") and returns the exit
// code.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	input := fs.String("input", "", "scan a `docker save` tar or an OCI layout directory instead of a registry image")
	format := fs.String("format", "table", "output format: table, json or sarif")
	failOn := fs.String("fail-on", "", "exit 1 when a finding is at least this severity (critical, high, medium, low, unknown)")
	cacheDir := fs.String("cache-dir", "", "layer cache and DB directory (default PALISADE_TRIVY_CACHE_DIR)")
	skipUpdate := fs.Bool("skip-db-update", false, "do not download the vulnerability DB")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return ExitError
	}
	if (*input == "") == (fs.NArg() != 1) || fs.NArg() > 1 {
		fs.Usage()
		return ExitError
	}
	var threshold model.Severity
	if *failOn != "" {
		s, err := model.ParseSeverity(*failOn)
		if err != nil {
			fmt.Fprintf(stderr, "palisade scan: --fail-on: %v\n", err)
			return ExitError
		}
		threshold = s
	}
	render, ok := renderers[*format]
	if !ok {
		fmt.Fprintf(stderr, "palisade scan: --format %q: want table, json or sarif\n", *format)
		return ExitError
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "palisade scan: %v\n", err)
		return ExitError
	}
	if *cacheDir != "" {
		cfg.Scan.CacheDir = *cacheDir
	}
	if *skipUpdate {
		cfg.Scan.SkipDBUpdate = true
	}
	log := logging.New(stderr, cfg.Common.LogLevel, isTerminal(stderr))
	stop := progress(stderr, "Scanning "+firstNonEmpty(*input, fs.Arg(0)))
	res, err := scan(ctx, cfg.Scan, log, *input, fs.Arg(0))
	stop()
	if err != nil {
		fmt.Fprintf(stderr, "palisade scan: %v\n", err)
		return ExitError
	}
	if err := render(stdout, res); err != nil {
		fmt.Fprintf(stderr, "palisade scan: write output: %v\n", err)
		return ExitError
	}
	if res.Image.DemoData {
		fmt.Fprintln(stderr, "WARNING: no vulnerability DB was available; these results come from the built-in DEMO DB and are not a real assessment.")
	}
	if threshold == "" {
		return ExitOK
	}
	if res.Image.Status == model.ImageUnsupported {
		fmt.Fprintf(stderr, "palisade scan: the image cannot be assessed (%s); failing as --fail-on is set\n", res.Image.Error)
		return ExitFindings
	}
	for _, f := range res.Findings {
		if f.Severity.Rank() >= threshold.Rank() {
			return ExitFindings
		}
	}
	return ExitOK
}

func scan(ctx context.Context, c config.Scan, log zerolog.Logger, input, image string) (*scanner.Result, error) {
	s, err := scanner.New(ctx, scanner.OptionsFromConfig(c, nil, log))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	t := scanner.Target{Input: input}
	if input == "" {
		if t, err = s.Resolve(ctx, image); err != nil {
			return nil, err
		}
	}
	return s.Scan(ctx, t)
}

// progress shows a ticking status line on a terminal; elsewhere nothing.
func progress(w io.Writer, what string) (stop func()) {
	if !isTerminal(w) {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		frames := `|/-\`
		for i := 0; ; i++ {
			fmt.Fprintf(w, "\r%c %s (%s)", frames[i%len(frames)], what, time.Since(start).Truncate(time.Second))
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
