package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/palisade-sec/palisade/functions/settings"
	"github.com/palisade-sec/palisade/shared/audit"
	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/falcoevent"
	"github.com/palisade-sec/palisade/shared/model"
)

// The kinds of input line `palisade detect` reads.
const (
	lineEnvelope   = "envelope"
	lineFalco      = "falco"
	lineDiagnostic = "aks-diagnostic"
	lineAuditEvent = "audit-event"
)

// lineKind returns the kind of one input line, or an error naming why it is
// none of them.
func lineKind(line []byte) (string, error) {
	var p struct {
		V          *int            `json:"v"`
		Records    json.RawMessage `json:"records"`
		Kind       string          `json:"kind"`
		APIVersion string          `json:"apiVersion"`
		Rule       string          `json:"rule"`
		Output     string          `json:"output"`
	}
	if err := json.Unmarshal(line, &p); err != nil {
		return "", fmt.Errorf("not a JSON object: %v", err)
	}
	switch {
	case p.Records != nil:
		return lineDiagnostic, nil
	case p.Kind == "Event" && strings.HasPrefix(p.APIVersion, "audit.k8s.io/"):
		return lineAuditEvent, nil
	case p.V != nil && p.Rule != "":
		return lineEnvelope, nil
	case p.Rule != "" && p.Output != "":
		return lineFalco, nil
	}
	return "", errors.New("neither a sensor envelope, a Falco JSON line, an AKS diagnostic body nor an audit event")
}

const detectUsage = `usage: palisade detect --input FILE [flags]

Runs the runtime and audit rules over a file of events, one JSON document a
line (- for standard input): sensor envelopes, Falco JSON (json_output or
http_output, decoded as the sensor decodes it), AKS diagnostic bodies or
Kubernetes audit events. Prints the alerts (table or json), or with
--format envelopes the envelope of each Falco line as the sensor would send
it (audit records are skipped). Records of other diagnostic categories
(kube-apiserver, guard, ...) are skipped and counted on standard error.

The rules are those of the function app with the settings' defaults; the
flags below stand for the settings PALISADE_ALERT_WINDOW, PALISADE_TI_LIST,
PALISADE_EXPOSURE_SENSITIVE_PORTS and PALISADE_EXPOSURE_SENSITIVE_NAMES.

Exit code 1 when lines could not be read (each is reported, the rest
processed) or an alert is at or above --fail-on; 2 on bad flags or input.
`

// Detect runs `palisade detect` with args (after "detect") and returns the
// exit code.
func Detect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("detect", detectUsage, stdout, stderr)
	input := f.String("input", "", "`file` of events, one JSON document a line (- for standard input)")
	format := f.String("format", "table", "output: table, json or envelopes")
	cluster := f.String("cluster", "local", "cluster `name` for Falco lines and bare audit events")
	node := f.String("node", "", "node `name` for Falco lines (default: the hostname Falco reported)")
	window := f.Duration("window", time.Hour, "de-duplication window")
	failOnFlag := f.String("fail-on", "", "exit 1 when an alert is at least this `severity`")
	all := f.Bool("all", false, "also print burst alerts below their threshold (status pending)")
	tiList := f.String("ti-list", "", "threat-intelligence `file`: one address or CIDR range a line, optionally with a category (tor, proxy, vpn, malicious)")
	ports := f.String("sensitive-ports", "", "changes to the built-in sensitive service `ports`: PORT or PORT:WHAT adds, -PORT removes (comma-separated)")
	names := f.String("sensitive-names", "", "changes to the built-in sensitive workload `words`: word adds, -word removes (comma-separated)")
	pos, err := f.parse(args)
	if err != nil {
		return exit(err)
	}
	if len(pos) > 0 {
		return exit(f.fail("unexpected arguments %q; the events are read from --input", pos))
	}
	if *input == "" {
		return exit(f.fail("--input is required"))
	}
	if err := f.format(*format, "table", "json", "envelopes"); err != nil {
		return exit(err)
	}
	threshold, err := f.failOn(*failOnFlag)
	if err != nil {
		return exit(err)
	}
	// The rules as deployed: the settings' defaults, but for the flags,
	// read and checked as the function app reads its settings.
	flagged := map[string]string{"PALISADE_TI_LIST": *tiList, "PALISADE_EXPOSURE_SENSITIVE_PORTS": *ports, "PALISADE_EXPOSURE_SENSITIVE_NAMES": *names}
	cfg, err := config.Load(func(k string) string { return flagged[k] })
	if err != nil {
		return exit(f.fail("%s", settingFlags.Replace(err.Error())))
	}
	opts := settings.Detection(cfg.Detect)
	opts.Window = *window
	det, err := detection.NewDetector(opts)
	if err != nil {
		return exit(f.fail("%v", err))
	}
	ao, err := settings.Audit(cfg.Detect)
	if err != nil {
		return exit(f.fail("%s", settingFlags.Replace(err.Error())))
	}
	rules, err := audit.New(ao)
	if err != nil {
		return exit(f.fail("%v", err))
	}
	r := io.Reader(os.Stdin)
	if *input != "-" {
		file, err := os.Open(*input)
		if err != nil {
			errorf(stderr, "detect", "%v", err)
			return ExitUsage
		}
		defer file.Close()
		r = file
	}
	src := source{cluster: *cluster, node: *node, rules: rules}
	if *format == "envelopes" {
		src.envelopes = json.NewEncoder(stdout)
	}
	batch := det.NewBatch()
	var counts audit.Counts
	bad, err := process(ctx, r, batch, src, &counts, stderr)
	if err != nil {
		errorf(stderr, "detect", "%v", err)
		return ExitUsage
	}
	if n := counts.SkippedTotal(); n > 0 {
		errorf(stderr, "detect", "%d records of other diagnostic categories skipped: %s", n, formatCounts(counts.Skipped))
	}
	code := ExitOK
	if src.envelopes == nil {
		var out []model.Alert
		for _, a := range batch.Alerts() {
			if *all || a.Status != model.AlertPending {
				out = append(out, a)
				if atOrAbove(a.Severity, threshold) {
					code = ExitPolicy
				}
			}
		}
		if *format == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if out == nil {
				out = []model.Alert{}
			}
			if err := enc.Encode(out); err != nil {
				errorf(stderr, "detect", "write output: %v", err)
				return ExitUsage
			}
		} else {
			printTable(stdout, out)
		}
	}
	if bad > 0 {
		errorf(stderr, "detect", "%d lines could not be read", bad)
		return ExitPolicy
	}
	return code
}

// settingFlags names the flags in errors about the settings they stand for.
var settingFlags = strings.NewReplacer("setting PALISADE_TI_LIST", "--ti-list", "setting PALISADE_EXPOSURE_SENSITIVE_PORTS", "--sensitive-ports",
	"setting PALISADE_EXPOSURE_SENSITIVE_NAMES", "--sensitive-names")

// source says how lines are turned into events: the cluster and node of
// Falco lines, and, when set, where their envelopes are written instead of
// running the rules.
type source struct {
	cluster, node string
	rules         audit.Analyzer
	envelopes     *json.Encoder
}

// process reads the lines of r into batch, adding what the audit analysis
// did with diagnostic records to counts.
func process(ctx context.Context, r io.Reader, batch *detection.Batch, src source, counts *audit.Counts, stderr io.Writer) (bad int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), detection.MaxEventBytes+1)
	var hits []detection.Hit
	for n := 1; sc.Scan(); n++ {
		if err := ctx.Err(); err != nil {
			return bad, err
		}
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		report := func(err error) {
			bad++
			fmt.Fprintf(stderr, "line %d: %v\n", n, err)
		}
		kind, err := lineKind(line)
		if err != nil {
			report(err)
			continue
		}
		switch kind {
		case lineEnvelope:
			e, err := detection.DecodeEnvelope(line)
			if err != nil {
				report(err)
				continue
			}
			if src.envelopes != nil {
				if err := src.envelopes.Encode(e); err != nil {
					return bad, fmt.Errorf("write output: %w", err)
				}
				continue
			}
			batch.AddEnvelope(&e)
		case lineFalco:
			ev, err := falcoevent.DecodeJSON(line)
			if err != nil {
				report(err)
				continue
			}
			falcoevent.Stamp(&ev.Envelope, src.cluster, src.node)
			if src.envelopes != nil {
				if err := src.envelopes.Encode(ev.Envelope); err != nil {
					return bad, fmt.Errorf("write output: %w", err)
				}
				continue
			}
			batch.AddEnvelope(&ev.Envelope)
		case lineDiagnostic:
			if src.envelopes != nil {
				continue
			}
			recs, err := src.rules.Analyze(batch, line, counts)
			if err != nil {
				report(err)
				continue
			}
			for _, rec := range recs {
				report(errors.New(rec.Reason))
			}
		case lineAuditEvent:
			if src.envelopes != nil {
				continue
			}
			e, err := audit.DecodeEvent(line)
			if err != nil {
				report(err)
				continue
			}
			counts.Events++
			hits = src.rules.Hits(src.cluster, &e, hits[:0])
			for _, h := range hits {
				batch.Add(h)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return bad, fmt.Errorf("read input: %w", err)
	}
	return bad, nil
}

// formatCounts prints counts by name, in name order: "guard 1, kube-apiserver 2".
func formatCounts(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func printTable(w io.Writer, alerts []model.Alert) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAST SEEN\tSEVERITY\tTYPE\tREFERENCE\tCLUSTER\tENTITY\tCOUNT\tTITLE")
	for _, a := range alerts {
		ref := a.RefType
		if ref == "" {
			ref = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", a.LastSeen.UTC().Format(time.RFC3339), a.Severity, a.Type, ref, a.Cluster, a.Entity, a.Count, a.Title)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d alerts\n", len(alerts))
}
