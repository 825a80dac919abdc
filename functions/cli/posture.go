package posture

import (
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

	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/sarif"
)

// Exit codes of `palisade posture`.
const (
	ExitOK       = 0 // no failure at or above --fail-on
	ExitFailures = 1 // failures at or above --fail-on, or a broken policy
	ExitUsage    = 2 // bad flags, settings or input
)

const cliUsage = `usage: palisade posture --manifests DIR [--cluster-json FILE] [--diagnostics-json FILE]
                        [--registry-json FILE] [--policies DIR] [--exemptions FILE]
                        [--format table|json|sarif] [--fail-on SEVERITY] [--all]

Assesses Kubernetes manifests (and optionally a recorded ARM managedCluster)
offline, for pipelines before deploy. Settings (PALISADE_TRUSTED_REGISTRIES,
...) are read from the environment. Exit code 1 when a check fails at or
above --fail-on (default high) or a custom policy is broken; 2 on bad input.
`

// RunCLI implements `palisade posture`.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runCLI(ctx, args, os.Getenv, time.Now, stdout, stderr)
}

func runCLI(ctx context.Context, args []string, getenv func(string) string, now func() time.Time, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("posture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, cliUsage) }
	manifests := fs.String("manifests", "", "folder of YAML or JSON manifests")
	clusterJSON := fs.String("cluster-json", "", "recorded ARM managedCluster JSON")
	diagJSON := fs.String("diagnostics-json", "", "recorded ARM diagnosticSettings JSON of the cluster")
	registryJSON := fs.String("registry-json", "", "recorded ARM container registry JSON")
	policies := fs.String("policies", "", "folder of custom Rego policies (default PALISADE_POLICY_DIR)")
	exemptions := fs.String("exemptions", "", "exemptions file (default PALISADE_EXEMPTIONS_FILE)")
	format := fs.String("format", "table", "output: table, json or sarif")
	failOn := fs.String("fail-on", "high", "lowest severity of a failure that fails the run")
	all := fs.Bool("all", false, "table: list passing results too")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "palisade posture: "+format+"\n", a...)
		return ExitUsage
	}
	if *manifests == "" || fs.NArg() > 0 {
		fs.Usage()
		return ExitUsage
	}
	threshold, err := model.ParseSeverity(*failOn)
	if err != nil {
		return usage("--fail-on: %v", err)
	}
	if *format != "table" && *format != "json" && *format != "sarif" {
		return usage("--format %q: want table, json or sarif", *format)
	}
	cfgAll, err := config.Load(getenv)
	if err != nil {
		return usage("settings: %v", err)
	}
	cfg := cfgAll.Posture
	if *policies != "" {
		cfg.PolicyDir = *policies
	}
	if *exemptions != "" {
		cfg.ExemptionsFile = *exemptions
	}
	snap, err := offlineSnapshot(*manifests, *clusterJSON, *diagJSON, *registryJSON)
	if err != nil {
		return usage("%v", err)
	}
	eng, err := LoadEngine(ctx, cfg, nil, now)
	if err != nil {
		return usage("%v", err)
	}
	rep, err := eng.Assess(ctx, snap)
	if err != nil {
		return usage("%v", err)
	}
	for _, pe := range rep.PolicyErrors {
		fmt.Fprintf(stderr, "palisade posture: broken policy: %v\n", pe)
	}
	for _, ex := range rep.ExpiredExemptions {
		fmt.Fprintf(stderr, "palisade posture: expired exemption: %s\n", ex)
	}
	switch *format {
	case "json":
		err = writeJSON(stdout, rep)
	case "sarif":
		err = writeSARIF(stdout, rep, eng)
	default:
		err = writeTable(stdout, rep, *all)
	}
	if err != nil {
		fmt.Fprintf(stderr, "palisade posture: write output: %v\n", err)
		return ExitUsage
	}
	for _, r := range rep.Results {
		if r.Status == model.PostureFail && r.Severity.Rank() >= threshold.Rank() {
			return ExitFailures
		}
	}
	if len(rep.PolicyErrors) > 0 {
		return ExitFailures
	}
	return ExitOK
}

// offlineSnapshot reads manifests and the optional recorded ARM JSON.
func offlineSnapshot(manifests, clusterJSON, diagJSON, registryJSON string) (*Snapshot, error) {
	objs, _, err := LoadManifestDir(manifests)
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Name: "offline", Objects: objs}
	if clusterJSON != "" {
		data, err := os.ReadFile(clusterJSON)
		if err != nil {
			return nil, fmt.Errorf("--cluster-json: %w", err)
		}
		cl, err := DecodeCluster(data)
		if err != nil {
			return nil, fmt.Errorf("--cluster-json %s: %w", clusterJSON, err)
		}
		snap.Cluster, snap.Name = cl, clusterResource(cl)
	}
	if diagJSON != "" {
		data, err := os.ReadFile(diagJSON)
		if err != nil {
			return nil, fmt.Errorf("--diagnostics-json: %w", err)
		}
		if snap.Diagnostics, err = DecodeDiagnosticSettings(data); err != nil {
			return nil, fmt.Errorf("--diagnostics-json %s: %w", diagJSON, err)
		}
	}
	if registryJSON != "" {
		data, err := os.ReadFile(registryJSON)
		if err != nil {
			return nil, fmt.Errorf("--registry-json: %w", err)
		}
		r, err := DecodeRegistry(data)
		if err != nil {
			return nil, fmt.Errorf("--registry-json %s: %w", registryJSON, err)
		}
		snap.Registries = []Registry{*r}
	}
	return snap, nil
}

func writeJSON(w io.Writer, rep *Report) error {
	out := struct {
		Cluster           string                        `json:"cluster"`
		At                time.Time                     `json:"at"`
		Score             model.PostureScore            `json:"score"`
		ByBenchmark       map[string]model.PostureScore `json:"byBenchmark"`
		PolicyErrors      []string                      `json:"policyErrors,omitempty"`
		ExpiredExemptions []string                      `json:"expiredExemptions,omitempty"`
		Results           []model.PostureResult         `json:"results"`
	}{Cluster: rep.Cluster, At: rep.At, Score: rep.Score, ByBenchmark: rep.ByBenchmark,
		ExpiredExemptions: rep.ExpiredExemptions, Results: rep.Results}
	for _, pe := range rep.PolicyErrors {
		out.PolicyErrors = append(out.PolicyErrors, pe.Error())
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeTable(w io.Writer, rep *Report, all bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tSEVERITY\tCHECK\tRESOURCE\tMESSAGE")
	for _, r := range rep.Results {
		if r.Status == model.PosturePass && !all {
			continue
		}
		msg := r.Message
		if r.Status == model.PostureExempt {
			msg = "exempt: " + r.ExemptReason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Status, r.Severity, r.CheckID, r.Resource, msg)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := rep.Score
	_, err := fmt.Fprintf(w, "\nscore %.1f%%: %d passed, %d failed, %d exempt, %d errors\n", s.Score, s.Passed, s.Failed, s.Exempt, s.Errors)
	return err
}

// writeSARIF writes the failed results as SARIF, one rule per check.
func writeSARIF(w io.Writer, rep *Report, eng *Engine) error {
	var rules []sarif.Rule
	seen := map[string]bool{}
	rule := func(id, title, remediation string, sev model.Severity, benchmarks []string) {
		if seen[id] {
			return
		}
		seen[id] = true
		rules = append(rules, sarif.Rule{ID: id, ShortDescription: sarif.Text{Text: title}, Help: sarif.Text{Text: remediation},
			Properties: map[string]any{"severity": sev, "tags": benchmarks}})
	}
	for _, c := range eng.Checks() {
		rule(c.ID, c.Title, c.Remediation, c.Severity, c.Benchmarks)
	}
	for _, p := range eng.Policies() {
		rule(p.ID, p.Title, p.Remediation, p.Severity, nil)
	}
	results := []sarif.Result{}
	for _, r := range rep.Results {
		if r.Status != model.PostureFail {
			continue
		}
		results = append(results, sarif.Result{RuleID: r.CheckID, Level: sarif.Level(r.Severity),
			Message:   sarif.Text{Text: strings.TrimSpace(r.Resource + ": " + r.Message)},
			Locations: []sarif.Location{{LogicalLocations: []sarif.LogicalLocation{{FullyQualifiedName: r.Resource, Kind: "resource"}}}}})
	}
	return sarif.NewLog(sarif.Driver{Name: "palisade-posture", InformationURI: "https://github.com/palisade-sec/palisade", Rules: rules}, results).Write(w)
}
