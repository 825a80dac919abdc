package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/settings"
	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanner"
)

const scanUsage = `usage: palisade scan IMAGE [flags]
       palisade scan --input image.tar|oci-layout-dir [flags]

Scans a container image for vulnerable OS and language packages, with the
same scanner as scan on push; Windows images are matched against Microsoft's
Security Update Guide (PALISADE_MSRC_*, kept under the cache directory).
Settings come from PALISADE_TRIVY_*, PALISADE_SCAN_* and PALISADE_MSRC_*
(see the README); registry credentials from PALISADE_REGISTRY_* or the
docker config.

Exit code 1 when a finding is at or above --fail-on, or (with --fail-on)
when the image cannot be assessed; 2 when the scan could not run.
`

// Scan runs `palisade scan` with args (after "scan") and returns the exit
// code.
func Scan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("scan", scanUsage, stdout, stderr)
	input := f.String("input", "", "scan a `docker save` tar or an OCI layout directory instead of a registry image")
	format := f.String("format", "table", "output: table, json or sarif")
	failOnFlag := f.String("fail-on", "", "exit 1 when a finding is at least this `severity` (critical, high, medium, low, unknown)")
	cacheDir := f.String("cache-dir", "", "layer cache and DB `directory` (default PALISADE_TRIVY_CACHE_DIR)")
	skipUpdate := f.Bool("skip-db-update", false, "do not download the vulnerability DB nor the Windows advisory data")
	msrcURL := f.String("msrc-url", "", "MSRC CVRF API `root` for Windows images (default PALISADE_MSRC_URL)")
	pos, err := f.parse(args)
	if err != nil {
		return exit(err)
	}
	if *input != "" && len(pos) > 0 {
		return exit(f.fail("give an IMAGE or --input, not both"))
	}
	if *input == "" && len(pos) != 1 {
		return exit(f.fail("want one IMAGE (or --input), got %d arguments", len(pos)))
	}
	image := ""
	if len(pos) == 1 {
		image = pos[0]
	}
	threshold, err := f.failOn(*failOnFlag)
	if err != nil {
		return exit(err)
	}
	render, ok := renderers[*format]
	if !ok {
		return exit(f.format(*format, "table", "json", "sarif"))
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		errorf(stderr, "scan", "%v", err)
		return ExitUsage
	}
	if *cacheDir != "" {
		cfg.Scan.CacheDir = *cacheDir
	}
	if *skipUpdate {
		cfg.Scan.SkipDBUpdate = true
	}
	if *msrcURL != "" {
		cfg.MSRC.URL = *msrcURL
	}
	log := logging.Terminal(stderr, cfg.Common.LogLevel)
	stop := progress(stderr, "Scanning "+firstNonEmpty(*input, image))
	res, err := scan(ctx, cfg.Scan, cfg.MSRC, log, *input, image)
	stop()
	if err != nil {
		errorf(stderr, "scan", "%v", err)
		return ExitUsage
	}
	if err := render(stdout, res); err != nil {
		errorf(stderr, "scan", "write output: %v", err)
		return ExitUsage
	}
	if res.Image.DemoData {
		fmt.Fprintln(stderr, "WARNING: no vulnerability DB was available; these results come from the built-in DEMO DB and are not a real assessment.")
	}
	if threshold == "" {
		return ExitOK
	}
	if res.Image.Status == model.ImageUnsupported {
		errorf(stderr, "scan", "the image cannot be assessed (%s); failing as --fail-on is set", res.Image.Error)
		return ExitPolicy
	}
	for _, fd := range res.Findings {
		if atOrAbove(fd.Severity, threshold) {
			return ExitPolicy
		}
	}
	return ExitOK
}

func scan(ctx context.Context, c config.Scan, m config.MSRC, log zerolog.Logger, input, image string) (*scanner.Result, error) {
	opts := settings.Scanner(c, nil, log)
	opts.Windows = windowsSource(c, m)
	s, err := scanner.New(ctx, opts)
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
	res, err := s.Scan(ctx, t)
	if err != nil {
		return nil, err
	}
	return res, withWindowsData(ctx, s, res, c.SkipDBUpdate, log)
}

// progress shows a ticking status line on a terminal; elsewhere nothing.
func progress(w io.Writer, what string) (stop func()) {
	if !logging.IsTerminal(w) {
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

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
