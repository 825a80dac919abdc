// Package detectcli is `palisade detect`: it runs the runtime and audit
// rules over a file of events, offline, and prints the alerts — for testing
// rules and in CI.
package detectcli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/palisade-sec/palisade/shared/audit"
	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
)

// Line formats recognised per line.
const (
	FormatEnvelope   = "envelope"
	FormatFalco      = "falco"
	FormatDiagnostic = "aks-diagnostic"
	FormatAuditEvent = "audit-event"
)

// Detect returns the format of one input line, or an error naming why it
// is none of them.
func Detect(line []byte) (string, error) {
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
		return FormatDiagnostic, nil
	case p.Kind == "Event" && strings.HasPrefix(p.APIVersion, "audit.k8s.io/"):
		return FormatAuditEvent, nil
	case p.V != nil && p.Rule != "":
		return FormatEnvelope, nil
	case p.Rule != "" && p.Output != "":
		return FormatFalco, nil
	}
	return "", errors.New("neither a sensor envelope, a Falco JSON line, an AKS diagnostic body nor an audit event")
}

// RunCLI runs `palisade detect`. Exit codes: 0 done, 1 some lines could not
// be read (each is reported on stderr, the rest processed), 2 usage.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("detect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	input := fs.String("input", "", "file of events, one JSON document a line (- for standard input)")
	format := fs.String("format", "table", "output: table or json")
	cluster := fs.String("cluster", "local", "cluster name for Falco lines and bare audit events")
	window := fs.Duration("window", time.Hour, "de-duplication window")
	all := fs.Bool("all", false, "also print burst alerts below their threshold (status pending)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: palisade detect --input events.jsonl [--format table|json] [--cluster NAME] [--window 1h] [--all]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *input == "" || fs.NArg() > 0 || (*format != "table" && *format != "json") {
		fs.Usage()
		return 2
	}
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		fmt.Fprintln(stderr, "palisade detect:", err)
		return 2
	}
	cfg.Detect.Window = *window
	det, err := detection.NewDetector(cfg.Detect)
	if err != nil {
		fmt.Fprintln(stderr, "palisade detect:", err)
		return 2
	}
	r := io.Reader(os.Stdin)
	if *input != "-" {
		f, err := os.Open(*input)
		if err != nil {
			fmt.Fprintln(stderr, "palisade detect:", err)
			return 2
		}
		defer f.Close()
		r = f
	}
	batch := det.NewBatch()
	bad, err := process(ctx, r, batch, *cluster, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "palisade detect:", err)
		return 1
	}
	var out []model.Alert
	for _, a := range batch.Alerts() {
		if *all || a.Status != model.AlertPending {
			out = append(out, a)
		}
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if out == nil {
			out = []model.Alert{}
		}
		if err := enc.Encode(out); err != nil {
			fmt.Fprintln(stderr, "palisade detect:", err)
			return 1
		}
	} else {
		printTable(stdout, out)
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "palisade detect: %d lines could not be read\n", bad)
		return 1
	}
	return 0
}

func process(ctx context.Context, r io.Reader, batch *detection.Batch, cluster string, stderr io.Writer) (bad int, err error) {
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
		kind, err := Detect(line)
		if err != nil {
			report(err)
			continue
		}
		switch kind {
		case FormatEnvelope:
			e, err := detection.DecodeEnvelope(line)
			if err != nil {
				report(err)
				continue
			}
			batch.AddEnvelope(&e)
		case FormatFalco:
			e, err := detection.DecodeFalco(line, cluster)
			if err != nil {
				report(err)
				continue
			}
			batch.AddEnvelope(&e)
		case FormatDiagnostic:
			_, recs, err := (audit.Analyzer{}).AddBody(batch, line)
			if err != nil {
				report(err)
				continue
			}
			for _, rec := range recs {
				report(errors.New(rec.Reason))
			}
		case FormatAuditEvent:
			e, err := audit.DecodeEvent(line)
			if err != nil {
				report(err)
				continue
			}
			hits = (audit.Analyzer{}).Hits(cluster, &e, hits[:0])
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
