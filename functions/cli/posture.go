package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/palisade-sec/palisade/functions/settings"
	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/sarif"
)

const postureUsage = `usage: palisade posture --manifests DIR [flags]

Assesses Kubernetes manifests (YAML or JSON), and optionally a recorded ARM
managedCluster, its diagnostic settings and a container registry, offline:
for pipelines before a deploy. Settings (PALISADE_TRUSTED_REGISTRIES, ...)
are read from the environment.

Objects with no namespace belong to --namespace, as kubectl apply places
them. Objects in removed API versions (batch/v1beta1 CronJob, v1beta1
Ingress, ...) are assessed as the current version; anything that cannot be
assessed (custom resources, unknown kinds, PodSecurityPolicy) is listed with
its file and the reason in every format.

Exit code 1 when a check fails at or above --fail-on (default high), a
custom policy is broken, or, with --strict, an object was not assessed; 2 on
bad flags, settings or input.
`

// Posture runs `palisade posture` with args (after "posture") and returns
// the exit code.
func Posture(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return postureRun(ctx, args, os.Getenv, time.Now, stdout, stderr)
}

func postureRun(ctx context.Context, args []string, getenv func(string) string, now func() time.Time, stdout, stderr io.Writer) int {
	f := newFlags("posture", postureUsage, stdout, stderr)
	manifests := f.String("manifests", "", "`folder` of YAML or JSON manifests")
	clusterJSON := f.String("cluster-json", "", "recorded ARM managedCluster JSON `file`")
	diagJSON := f.String("diagnostics-json", "", "recorded ARM diagnosticSettings JSON `file` of the cluster")
	registryJSON := f.String("registry-json", "", "recorded ARM container registry JSON `file`")
	policies := f.String("policies", "", "`folder` of custom Rego policies (default PALISADE_POLICY_DIR)")
	exemptions := f.String("exemptions", "", "exemptions `file` (default PALISADE_EXEMPTIONS_FILE)")
	format := f.String("format", "table", "output: table, json or sarif")
	failOnFlag := f.String("fail-on", "high", "exit 1 when a check fails at least at this `severity`")
	all := f.Bool("all", false, "table: list passing results too")
	namespace := f.String("namespace", "default", "`namespace` of the objects that name none")
	strict := f.Bool("strict", false, "exit 1 when an object could not be assessed")
	pos, err := f.parse(args)
	if err != nil {
		return exit(err)
	}
	if len(pos) > 0 {
		return exit(f.fail("unexpected arguments %q", pos))
	}
	if *manifests == "" {
		return exit(f.fail("--manifests is required"))
	}
	threshold, err := f.failOn(*failOnFlag)
	if err != nil {
		return exit(err)
	}
	if err := f.format(*format, "table", "json", "sarif"); err != nil {
		return exit(err)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		errorf(stderr, "posture", "settings: %v", err)
		return ExitUsage
	}
	opts := settings.Posture(cfg.Posture)
	if *policies != "" {
		opts.PolicyDir = *policies
	}
	if *exemptions != "" {
		opts.ExemptionsFile = *exemptions
	}
	if *namespace == "" {
		return exit(f.fail("--namespace must not be empty"))
	}
	snap, err := offlineSnapshot(*manifests, posture.ManifestOptions{Namespace: *namespace}, *clusterJSON, *diagJSON, *registryJSON)
	if err != nil {
		errorf(stderr, "posture", "%v", err)
		return ExitUsage
	}
	eng, err := posture.LoadEngine(ctx, opts, nil, now)
	if err != nil {
		errorf(stderr, "posture", "%v", err)
		return ExitUsage
	}
	rep, err := eng.Assess(ctx, snap)
	if err != nil {
		errorf(stderr, "posture", "%v", err)
		return ExitUsage
	}
	for _, pe := range rep.PolicyErrors {
		errorf(stderr, "posture", "broken policy: %v", pe)
	}
	for _, ex := range rep.ExpiredExemptions {
		errorf(stderr, "posture", "expired exemption: %s", ex)
	}
	for _, na := range rep.NotAssessed {
		errorf(stderr, "posture", "not assessed: %s: %s", na, na.Reason)
	}
	switch *format {
	case "json":
		err = writePostureJSON(stdout, rep)
	case "sarif":
		err = writePostureSARIF(stdout, rep, eng)
	default:
		err = writePostureTable(stdout, rep, *all)
	}
	if err != nil {
		errorf(stderr, "posture", "write output: %v", err)
		return ExitUsage
	}
	for _, r := range rep.Results {
		if r.Status == model.PostureFail && atOrAbove(r.Severity, threshold) {
			return ExitPolicy
		}
	}
	if len(rep.PolicyErrors) > 0 || *strict && len(rep.NotAssessed) > 0 {
		return ExitPolicy
	}
	return ExitOK
}

// offlineSnapshot reads manifests and the optional recorded ARM JSON.
func offlineSnapshot(manifests string, mo posture.ManifestOptions, clusterJSON, diagJSON, registryJSON string) (*posture.Snapshot, error) {
	objs, err := posture.LoadManifestDir(manifests, mo)
	if err != nil {
		return nil, err
	}
	snap := &posture.Snapshot{Name: "offline", Objects: objs}
	if clusterJSON != "" {
		data, err := os.ReadFile(clusterJSON)
		if err != nil {
			return nil, fmt.Errorf("--cluster-json: %w", err)
		}
		cl, err := posture.DecodeCluster(data)
		if err != nil {
			return nil, fmt.Errorf("--cluster-json %s: %w", clusterJSON, err)
		}
		snap.Cluster, snap.Name = cl, cl.Resource()
	}
	if diagJSON != "" {
		data, err := os.ReadFile(diagJSON)
		if err != nil {
			return nil, fmt.Errorf("--diagnostics-json: %w", err)
		}
		if snap.Diagnostics, err = posture.DecodeDiagnosticSettings(data); err != nil {
			return nil, fmt.Errorf("--diagnostics-json %s: %w", diagJSON, err)
		}
	}
	if registryJSON != "" {
		data, err := os.ReadFile(registryJSON)
		if err != nil {
			return nil, fmt.Errorf("--registry-json: %w", err)
		}
		r, err := posture.DecodeRegistry(data)
		if err != nil {
			return nil, fmt.Errorf("--registry-json %s: %w", registryJSON, err)
		}
		snap.Registries = []posture.Registry{*r}
	}
	return snap, nil
}

func writePostureJSON(w io.Writer, rep *posture.Report) error {
	out := struct {
		Cluster           string                        `json:"cluster"`
		At                time.Time                     `json:"at"`
		Score             model.PostureScore            `json:"score"`
		ByBenchmark       map[string]model.PostureScore `json:"byBenchmark"`
		PolicyErrors      []string                      `json:"policyErrors,omitempty"`
		ExpiredExemptions []string                      `json:"expiredExemptions,omitempty"`
		NotAssessedCount  int                           `json:"notAssessedCount"`
		NotAssessed       []model.PostureNotAssessed    `json:"notAssessed"`
		Results           []model.PostureResult         `json:"results"`
	}{Cluster: rep.Cluster, At: rep.At, Score: rep.Score, ByBenchmark: rep.ByBenchmark,
		ExpiredExemptions: rep.ExpiredExemptions, NotAssessedCount: len(rep.NotAssessed),
		NotAssessed: append([]model.PostureNotAssessed{}, rep.NotAssessed...), Results: rep.Results}
	for _, pe := range rep.PolicyErrors {
		out.PolicyErrors = append(out.PolicyErrors, pe.Error())
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writePostureTable(w io.Writer, rep *posture.Report, all bool) error {
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
	if len(rep.NotAssessed) > 0 {
		fmt.Fprintln(tw, "\nNOT ASSESSED\tAPIVERSION\tOBJECT\tSOURCE\tREASON")
		for _, na := range rep.NotAssessed {
			obj := na.Name
			if na.Namespace != "" {
				obj = na.Namespace + "/" + na.Name
			}
			src := na.Source
			if na.Document > 0 {
				src += fmt.Sprintf(" #%d", na.Document)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", na.Kind, na.APIVersion, obj, src, na.Reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	s := rep.Score
	_, err := fmt.Fprintf(w, "\nscore %.1f%%: %d passed, %d failed, %d exempt, %d errors, %d not assessed\n",
		s.Score, s.Passed, s.Failed, s.Exempt, s.Errors, len(rep.NotAssessed))
	return err
}

// notAssessedRule is the SARIF rule of objects that could not be assessed.
const notAssessedRule = "not-assessed"

// writePostureSARIF writes the failed results as SARIF, one rule per check,
// and the objects not assessed under the rule not-assessed.
func writePostureSARIF(w io.Writer, rep *posture.Report, eng *posture.Engine) error {
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
	if len(rep.NotAssessed) > 0 {
		rule(notAssessedRule, "Objects Palisade could not assess", "Move the object to a current API version, or check it with a custom policy; palisade posture --strict fails on these.",
			model.SeverityMedium, nil)
	}
	results := []sarif.Result{}
	for _, na := range rep.NotAssessed {
		loc := sarif.Location{LogicalLocations: []sarif.LogicalLocation{{FullyQualifiedName: na.String(), Kind: "resource"}}}
		if na.Source != "" {
			loc.PhysicalLocation = &sarif.PhysicalLocation{ArtifactLocation: sarif.ArtifactLocation{URI: filepath.ToSlash(na.Source)}}
		}
		results = append(results, sarif.Result{RuleID: notAssessedRule, Level: "warning",
			Message: sarif.Text{Text: fmt.Sprintf("%s not assessed: %s", na, na.Reason)}, Locations: []sarif.Location{loc}})
	}
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
