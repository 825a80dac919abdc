package posture

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/model"
)

// Builtin returns the built-in checks.
func Builtin() []Check {
	var all []Check
	for _, group := range [][]Check{workloadChecks(), objectChecks(), clusterChecks(), registryChecks(), agentChecks()} {
		all = append(all, group...)
	}
	return all
}

// Engine assesses snapshots. It holds what is prepared once per run: the
// checks, the compiled custom policies and the exemptions.
type Engine struct {
	opts       Options
	checks     []Check
	policies   []*Policy
	broken     []*PolicyError
	exemptions []Exemption
	vulns      VulnSource
	now        func() time.Time
}

// NewEngine returns an engine running the built-in checks and policies.
// broken lists custom policies that failed to load, reported with every
// assessment. vulns may be nil: the vulnerability checks then do not run.
func NewEngine(opts Options, policies []*Policy, broken []*PolicyError, exemptions []Exemption, vulns VulnSource, now func() time.Time) *Engine {
	opts.defaults()
	return &Engine{opts: opts, checks: Builtin(), policies: policies, broken: broken, exemptions: exemptions, vulns: vulns, now: now}
}

// LoadEngine reads the policies (PolicyDir) and exemptions (ExemptionsFile)
// opts name and returns an engine. A broken policy does not fail
// it; an unreadable exemptions file does.
func LoadEngine(ctx context.Context, opts Options, vulns VulnSource, now func() time.Time) (*Engine, error) {
	policies, broken, err := LoadPolicies(ctx, opts.PolicyDir)
	if err != nil {
		return nil, err
	}
	ex, err := LoadExemptions(opts.ExemptionsFile)
	if err != nil {
		return nil, err
	}
	return NewEngine(opts, policies, broken, ex, vulns, now), nil
}

// Checks returns the engine's built-in checks.
func (e *Engine) Checks() []Check { return e.checks }

// Policies returns the custom policies that loaded.
func (e *Engine) Policies() []*Policy { return e.policies }

// Report is the outcome of one assessment.
type Report struct {
	Cluster     string
	At          time.Time
	Results     []model.PostureResult // sorted by check, then resource
	Score       model.PostureScore
	ByBenchmark map[string]model.PostureScore
	// PolicyErrors are custom policies that could not load or run.
	PolicyErrors []*PolicyError
	// ExpiredExemptions are exemptions past their expiry.
	ExpiredExemptions []string
	// RunningImages are the image digests running in the cluster. The
	// Recorder stores them as the cluster's running-image inventory unless
	// nil: a cluster with an agent has its inventory kept by
	// ingestinventory, which the caller says by clearing this.
	RunningImages []model.RunningImage
	// NotAssessed lists the objects (or kinds) that could not be assessed,
	// and why.
	NotAssessed []model.PostureNotAssessed
	// Checks summarise every check and policy evaluated, by id.
	Checks []model.PostureCheckSummary
}

// Assess runs every check and policy on snap.
func (e *Engine) Assess(ctx context.Context, snap *Snapshot) (*Report, error) {
	env, err := newEnv(snap, e.opts, e.vulns)
	if err != nil {
		return nil, err
	}
	now := e.now().UTC()
	rep := &Report{Cluster: snap.Name, At: now, PolicyErrors: append([]*PolicyError(nil), e.broken...),
		RunningImages: inventory.RunningImages(&snap.Objects), NotAssessed: snap.Objects.NotAssessed}
	for _, ex := range e.exemptions {
		if !ex.Expires.After(now) {
			rep.ExpiredExemptions = append(rep.ExpiredExemptions, ex.describe())
		}
	}
	clusterName := ""
	if snap.Cluster != nil {
		clusterName = snap.Cluster.Name
	}
	add := func(c *Check, o Outcome) {
		r := model.PostureResult{
			ID: model.HashID(snap.Name, c.ID, o.Resource), Cluster: snap.Name, CheckID: c.ID, Title: c.Title,
			Severity: c.Severity, Benchmarks: c.Benchmarks, Resource: o.Resource, Namespace: o.Namespace,
			Status: model.PosturePass, Message: o.Message, EvaluatedAt: now, EvaluatedUnix: now.Unix(),
		}
		switch {
		case o.Err != nil:
			r.Status = model.PostureError
		case !o.Pass:
			r.Status = model.PostureFail
			r.Remediation = c.Remediation
			if c.Patch != nil && o.Workload != nil {
				r.Patch = string(applyConfig(o.Workload, c.Patch(o.Workload, o.Containers)))
			}
			e.exempt(&r, clusterName, o.Labels, now)
		}
		rep.Results = append(rep.Results, r)
	}
	for i := range e.checks {
		c := &e.checks[i]
		for _, o := range c.Evaluate(ctx, env) {
			add(c, o)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("assess %s: %w", snap.Name, err)
		}
	}
	if err := e.runPolicies(ctx, env, add, rep); err != nil {
		return nil, err
	}
	sort.Slice(rep.Results, func(i, j int) bool {
		a, b := &rep.Results[i], &rep.Results[j]
		if a.CheckID != b.CheckID {
			return a.CheckID < b.CheckID
		}
		return a.Resource < b.Resource
	})
	rep.Score, rep.ByBenchmark = Score(rep.Results)
	rep.Checks = e.summaries(rep)
	return rep, nil
}

// summaries counts the results of every check and policy, in id order.
func (e *Engine) summaries(rep *Report) []model.PostureCheckSummary {
	idx := map[string]int{}
	var out []model.PostureCheckSummary
	add := func(id string, sev model.Severity) {
		if _, ok := idx[id]; !ok {
			idx[id] = len(out)
			out = append(out, model.PostureCheckSummary{CheckID: id, Severity: sev, EvaluatedAt: rep.At})
		}
	}
	for _, c := range e.checks {
		add(c.ID, c.Severity)
	}
	for _, p := range e.policies {
		add(p.ID, p.Severity)
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		add(r.CheckID, r.Severity)
		s := &out[idx[r.CheckID]]
		switch r.Status {
		case model.PosturePass:
			s.Passed++
		case model.PostureFail:
			s.Failed++
		case model.PostureExempt:
			s.Exempt++
		default:
			s.Errors++
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CheckID < out[j].CheckID })
	return out
}

// exempt marks a failed result exempt when an exemption in force covers
// it, and notes an expired one that would have.
func (e *Engine) exempt(r *model.PostureResult, clusterName string, labels map[string]string, now time.Time) {
	for i := range e.exemptions {
		ex := &e.exemptions[i]
		if !ex.matches(r.Cluster, clusterName, r.CheckID, r.Namespace, r.Resource, labels) {
			continue
		}
		if !ex.Expires.After(now) {
			r.Message = strings.TrimPrefix(r.Message+"; exemption "+ex.describe(), "; ")
			continue
		}
		r.Status = model.PostureExempt
		r.ExemptReason = ex.Name + ": " + ex.Reason
		r.ExemptUntil = ex.Expires.UTC()
		return
	}
}

// runPolicies evaluates the custom policies on every object they apply
// to, converting each object to an OPA value once.
func (e *Engine) runPolicies(ctx context.Context, env *Env, add func(*Check, Outcome), rep *Report) error {
	if len(e.policies) == 0 {
		return nil
	}
	checks := make([]Check, len(e.policies))
	for i, p := range e.policies {
		checks[i] = Check{ID: p.ID, Title: p.Title, Severity: p.Severity, Benchmarks: []string{"Custom " + p.ID},
			Scope: ScopeCustom, Remediation: p.Remediation}
	}
	failed := map[string]bool{}
	var err error
	env.Snap.Objects.Each(func(kind string, meta metav1.Object, obj runtime.Object) {
		ns, name := meta.GetNamespace(), meta.GetName()
		if err != nil || env.Excluded(ns) {
			return
		}
		var input ast.Value
		for i, p := range e.policies {
			if failed[p.ID] || !p.Applies(kind) {
				continue
			}
			if input == nil {
				m, cerr := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
				if cerr != nil {
					err = fmt.Errorf("convert %s %s/%s for policies: %w", kind, ns, name, cerr)
					return
				}
				if input, cerr = ast.InterfaceToValue(m); cerr != nil {
					err = fmt.Errorf("convert %s %s/%s for policies: %w", kind, ns, name, cerr)
					return
				}
			}
			msgs, verr := p.Violations(ctx, input)
			o := Outcome{Resource: resourceName(kind, ns, name), Namespace: ns,
				Labels: meta.GetLabels(), Pass: len(msgs) == 0, Message: strings.Join(msgs, "; ")}
			if verr != nil {
				if ctx.Err() != nil {
					err = ctx.Err()
					return
				}
				// A policy that fails at run time (a conflict, a
				// builtin error) is reported once and stops being
				// evaluated; the other policies go on.
				failed[p.ID] = true
				rep.PolicyErrors = append(rep.PolicyErrors, &PolicyError{File: p.File, Msg: verr.Error()})
				continue
			}
			add(&checks[i], o)
		}
	})
	return err
}

// weight of a severity in the score.
func weight(s model.Severity) float64 { return float64(model.ScoreWeight(s)) }

// Score computes the score of results overall and per benchmark family
// (the first word of each benchmark reference: CIS-Kubernetes, CIS-AKS,
// AzurePolicy, Defender, Custom).
func Score(results []model.PostureResult) (model.PostureScore, map[string]model.PostureScore) {
	type acc struct {
		s              model.PostureScore
		healthy, total float64
	}
	var all acc
	by := map[string]*acc{}
	count := func(a *acc, r *model.PostureResult) {
		w := weight(r.Severity)
		switch r.Status {
		case model.PosturePass:
			a.s.Passed++
			a.healthy += w
			a.total += w
		case model.PostureExempt:
			a.s.Exempt++
			a.healthy += w
			a.total += w
		case model.PostureFail:
			a.s.Failed++
			a.total += w
		default:
			a.s.Errors++
		}
	}
	for i := range results {
		r := &results[i]
		count(&all, r)
		seen := map[string]bool{}
		for _, b := range r.Benchmarks {
			fam, _, _ := strings.Cut(b, " ")
			if seen[fam] {
				continue
			}
			seen[fam] = true
			if by[fam] == nil {
				by[fam] = &acc{}
			}
			count(by[fam], r)
		}
	}
	final := func(a *acc) model.PostureScore {
		a.s.Score = 100
		if a.total > 0 {
			a.s.Score = float64(int(a.healthy/a.total*1000+0.5)) / 10
		}
		return a.s
	}
	out := make(map[string]model.PostureScore, len(by))
	for k, a := range by {
		out[k] = final(a)
	}
	return final(&all), out
}
