package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/settings"
	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/gatestore"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/store/backend"
)

const gateUsage = `usage: palisade gate --manifests DIR [flags]

Evaluates the pods and workload templates of Kubernetes manifests (YAML or
JSON) against the gated-deployment rules and the scan results in the store,
offline: a pipeline sees the decision the cluster's admission webhook will
make. Images written with a tag take the digest the store saw pushed under
it; an image the store does not know is unknown (denied with --fail-closed).
Settings (PALISADE_GATE_RULES, the store's) are read from the environment.

Exit code 1 when a deny rule fires (or, with --fail-closed, an image is
unknown); 2 on bad flags, settings, rules or input.
`

// Gate runs `palisade gate` with args (after "gate") and returns the exit
// code.
func Gate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return gateRun(ctx, args, os.Getenv, time.Now, stdout, stderr)
}

// gateResult is one workload's decision in the output.
type gateResult struct {
	Kind      string        `json:"kind"`
	Namespace string        `json:"namespace"`
	Name      string        `json:"name"`
	Decision  gate.Decision `json:"decision"`
}

func gateRun(ctx context.Context, args []string, getenv func(string) string, now func() time.Time, stdout, stderr io.Writer) int {
	f := newFlags("gate", gateUsage, stdout, stderr)
	manifests := f.String("manifests", "", "`folder` of YAML or JSON manifests")
	rulesFile := f.String("rules", "", "rules `file` (default PALISADE_GATE_RULES)")
	cluster := f.String("cluster", "", "cluster `id` the rules' cluster scopes are matched against")
	failClosed := f.Bool("fail-closed", false, "deny images whose scan results are unknown, as PALISADE_GATE_FAIL_CLOSED does")
	format := f.String("format", "table", "output: table or json")
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
	if err := f.format(*format, "table", "json"); err != nil {
		return exit(err)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		errorf(stderr, "gate", "settings: %v", err)
		return ExitUsage
	}
	if *rulesFile != "" {
		cfg.Gate.RulesFile = *rulesFile
	}
	rules, err := settings.GateRules(cfg.Gate)
	if err != nil {
		errorf(stderr, "gate", "%v", err)
		return ExitUsage
	}
	objs, err := posture.LoadManifestDir(*manifests, posture.ManifestOptions{})
	if err != nil {
		errorf(stderr, "gate", "%v", err)
		return ExitUsage
	}
	st, err := backend.Open(ctx, cfg.Store, func() (azcore.TokenCredential, error) { return azidentity.NewDefaultAzureCredential(nil) }, zerolog.Nop())
	if err != nil {
		errorf(stderr, "gate", "open the store: %v", err)
		return ExitUsage
	}
	defer st.Close()
	res := gatestore.StoreResults{St: st}
	var out []gateResult
	code := ExitOK
	for _, w := range gate.Workloads(*cluster, &objs) {
		if err := gatestore.ResolveStored(ctx, st, &w); err != nil {
			errorf(stderr, "gate", "%v", err)
			return ExitUsage
		}
		d := rules.Evaluate(ctx, w, res, gate.Options{FailClosed: *failClosed, Now: now})
		if !d.Allowed {
			code = ExitPolicy
		}
		out = append(out, gateResult{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, Decision: d})
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(out)
	} else {
		err = writeGateTable(stdout, out)
	}
	if err != nil {
		errorf(stderr, "gate", "write output: %v", err)
		return ExitUsage
	}
	return code
}

func writeGateTable(w io.Writer, out []gateResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DECISION\tWORKLOAD\tDETAIL")
	for _, r := range out {
		verdict, detail := "allow", ""
		switch {
		case r.Decision.Exempt != "":
			verdict, detail = "exempt", r.Decision.Exempt
		case !r.Decision.Allowed:
			verdict, detail = "deny", strings.TrimPrefix(r.Decision.Message, "palisade gate denied: ")
		case len(r.Decision.Warnings) > 0:
			verdict, detail = "audit", strings.Join(r.Decision.Warnings, " | ")
		}
		fmt.Fprintf(tw, "%s\t%s/%s/%s\t%s\n", verdict, r.Kind, r.Namespace, r.Name, detail)
	}
	return tw.Flush()
}
