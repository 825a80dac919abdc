package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
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

Findings carry their CISA KEV listing, EPSS score and a priority (P1-P4,
see the README), most urgent first; the feeds come from PALISADE_KEV_URL
and PALISADE_EPSS_URL unless --kev and --epss say otherwise. A finding that
a --vex document's not_affected or fixed statement names (its CVE and this
image or package) is suppressed: shown as such, priority P4, and left out
of the counts, --fail-on and --fail-on-kev. --priority, --kev-only and
--min-epss keep only the findings they select, in the output and for
--fail-on.

Without a vulnerability DB the scan fails, unless --demo allows the
built-in demo DB: its results are labelled demo data and always exit 3, so
that no gate passes on them.

Exit codes: 0 nothing at or above --fail-on (and, with --fail-on-kev, no
finding in KEV); 1 a finding at or above --fail-on, a finding in KEV with
--fail-on-kev, or an image that cannot be assessed (with either); 2 the
scan could not run (or --fail-on-kev without a KEV catalogue); 3 the
results come from the demo DB.
`

// Scan runs `palisade scan` with args (after "scan") and returns the exit
// code.
func Scan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("scan", scanUsage, stdout, stderr)
	input := f.String("input", "", "scan a `docker save` tar or an OCI layout directory instead of a registry image")
	format := f.String("format", "table", "output: table, json, sarif, or the image's SBOM: cyclonedx (CycloneDX 1.6) or spdx (SPDX 2.3)")
	failOnFlag := f.String("fail-on", "", "exit 1 when a finding is at least this `severity` (critical, high, medium, low, unknown)")
	cacheDir := f.String("cache-dir", "", "layer cache and DB `directory` (default PALISADE_TRIVY_CACHE_DIR)")
	skipUpdate := f.Bool("skip-db-update", false, "do not download the vulnerability DB nor the Windows advisory data")
	demo := f.Bool("demo", false, "with no vulnerability DB, scan against the built-in demo DB (results are demo data; exit code 3)")
	feedFlags := addIntelFlags(f)
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
	statements, err := feedFlags.statements()
	if err != nil {
		return exit(err)
	}
	keep, err := feedFlags.selection()
	if err != nil {
		return exit(err)
	}
	render, ok := renderers[*format]
	if !ok {
		return exit(f.format(*format, "table", "json", "sarif", "cyclonedx", "spdx"))
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
	// Outside palisade dev the demo DB is used only when asked for here,
	// whatever PALISADE_TRIVY_DEMO_DB says: a pipeline gate must not pass
	// on demo data.
	cfg.Scan.DemoDBFallback = *demo
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
	rep := annotate(ctx, res, feedFlags.options(cfg.Intel), statements)
	if keep != nil {
		rep.Findings = slices.DeleteFunc(rep.Findings, func(f model.Finding) bool { return !keep(f) })
	}
	if err := render(stdout, rep); err != nil {
		errorf(stderr, "scan", "write output: %v", err)
		return ExitUsage
	}
	warnFeeds(stderr, rep.Feeds)
	if res.Image.DemoData {
		fmt.Fprintln(stderr, "WARNING: no vulnerability DB was available; these results come from the built-in DEMO DB and are not a real assessment (exit code 3).")
		return ExitDemo
	}
	failOnKEV := *feedFlags.failOnKEV
	if failOnKEV && !rep.Feeds.KEV.Held() {
		errorf(stderr, "scan", "--fail-on-kev needs CISA's KEV catalogue: %s", strings.Join(rep.Feeds.KEV.Reasons, "; "))
		return ExitUsage
	}
	if threshold == "" && !failOnKEV {
		return ExitOK
	}
	if res.Image.Status == model.ImageUnsupported {
		errorf(stderr, "scan", "the image cannot be assessed (%s); failing as --fail-on or --fail-on-kev is set", res.Image.Error)
		return ExitPolicy
	}
	code := ExitOK
	if kev := kevFindings(res.Findings); failOnKEV && len(kev) > 0 {
		errorf(stderr, "scan", "%d findings are in CISA's Known Exploited Vulnerabilities catalogue: %s", len(kev), strings.Join(kev, ", "))
		code = ExitPolicy
	}
	for _, fd := range res.Findings {
		if fd.Suppressed == nil && atOrAbove(fd.Severity, threshold) {
			code = ExitPolicy
		}
	}
	return code
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
