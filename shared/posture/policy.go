package posture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/palisade-sec/palisade/shared/model"
)

// Policy is a custom Rego policy: one file, Gatekeeper-style. Its rule
// violation[{"msg": msg}] yields one entry per problem; the input is the
// Kubernetes object itself (apiVersion, kind, metadata, spec, ...).
//
// An optional package METADATA annotation sets the result fields:
//
//	# METADATA
//	# title: Images must carry a team label
//	# custom:
//	#   severity: high
//	#   kinds: [Deployment, Pod]
//	#   remediation: Add metadata.labels.team.
//	package palisade.team_label
//
// Without kinds, every object is evaluated.
type Policy struct {
	ID          string // "custom/" + file name without .rego
	File        string
	Title       string
	Severity    model.Severity
	Kinds       map[string]bool
	Remediation string
	query       rego.PreparedEvalQuery
}

// PolicyError is a custom policy that could not be loaded or evaluated,
// with the place it went wrong.
type PolicyError struct {
	File string
	Line int
	Col  int
	Msg  string
}

func (e *PolicyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// maxPolicyFile bounds one policy file.
const maxPolicyFile = 1 << 20

// LoadPolicies parses and prepares every *.rego file in dir (not its
// sub-folders; *_test.rego files are skipped). A broken file is returned as
// a PolicyError and the others still load. Rego v1 syntax is expected; a
// file that only parses as v0 (the syntax of most Gatekeeper libraries) is
// accepted as v0.
func LoadPolicies(ctx context.Context, dir string) ([]*Policy, []*PolicyError, error) {
	if dir == "" {
		return nil, nil, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.rego"))
	if err != nil {
		return nil, nil, fmt.Errorf("list policies in %s: %w", dir, err)
	}
	sort.Strings(files)
	var policies []*Policy
	var broken []*PolicyError
	for _, f := range files {
		if strings.HasSuffix(f, "_test.rego") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			broken = append(broken, &PolicyError{File: f, Msg: err.Error()})
			continue
		}
		p, perr := CompilePolicy(ctx, f, string(src))
		if perr != nil {
			broken = append(broken, perr)
			continue
		}
		policies = append(policies, p)
	}
	return policies, broken, nil
}

// CompilePolicy parses and prepares one policy.
func CompilePolicy(ctx context.Context, file, src string) (*Policy, *PolicyError) {
	if len(src) > maxPolicyFile {
		return nil, &PolicyError{File: file, Msg: fmt.Sprintf("%d bytes, more than the %d allowed", len(src), maxPolicyFile)}
	}
	mod, err := ast.ParseModuleWithOpts(file, src, ast.ParserOptions{ProcessAnnotation: true, RegoVersion: ast.RegoV1})
	if err != nil {
		v0, err0 := ast.ParseModuleWithOpts(file, src, ast.ParserOptions{ProcessAnnotation: true, RegoVersion: ast.RegoV0})
		if err0 != nil {
			return nil, policyError(file, err)
		}
		mod = v0
	}
	name := strings.TrimSuffix(filepath.Base(file), ".rego")
	p := &Policy{ID: "custom/" + name, File: file, Title: name, Severity: model.SeverityMedium,
		Remediation: "Change the object so that policy " + name + " reports no violation."}
	for _, a := range mod.Annotations {
		if a.Scope != "package" {
			continue
		}
		if a.Title != "" {
			p.Title = a.Title
		}
		if s, ok := a.Custom["severity"].(string); ok {
			sev, err := model.ParseSeverity(s)
			if err != nil {
				return nil, &PolicyError{File: file, Line: a.Location.Row, Col: a.Location.Col, Msg: "METADATA custom.severity: " + err.Error()}
			}
			p.Severity = sev
		}
		if r, ok := a.Custom["remediation"].(string); ok {
			p.Remediation = r
		}
		if kinds, ok := a.Custom["kinds"].([]any); ok {
			p.Kinds = map[string]bool{}
			for _, k := range kinds {
				if s, ok := k.(string); ok {
					p.Kinds[s] = true
				}
			}
		}
	}
	query := mod.Package.Path.String() + ".violation"
	q, err := rego.New(rego.Query(query), rego.ParsedModule(mod)).PrepareForEval(ctx)
	if err != nil {
		return nil, policyError(file, err)
	}
	p.query = q
	return p, nil
}

// policyError keeps the location of the first OPA error.
func policyError(file string, err error) *PolicyError {
	var errs ast.Errors
	if errors.As(err, &errs) && len(errs) > 0 {
		e := errs[0]
		pe := &PolicyError{File: file, Msg: e.Message}
		if e.Location != nil {
			pe.Line, pe.Col = e.Location.Row, e.Location.Col
		}
		if len(errs) > 1 {
			pe.Msg += fmt.Sprintf(" (and %d more errors)", len(errs)-1)
		}
		return pe
	}
	var one *ast.Error
	if errors.As(err, &one) {
		pe := &PolicyError{File: file, Msg: one.Message}
		if one.Location != nil {
			pe.Line, pe.Col = one.Location.Row, one.Location.Col
		}
		return pe
	}
	return &PolicyError{File: file, Msg: err.Error()}
}

// Applies reports whether the policy evaluates objects of kind.
func (p *Policy) Applies(kind string) bool { return p.Kinds == nil || p.Kinds[kind] }

// Violations evaluates the policy on one object (as an OPA value) and
// returns the violation messages, sorted.
func (p *Policy) Violations(ctx context.Context, input ast.Value) ([]string, error) {
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", p.File, err)
	}
	var msgs []string
	for _, r := range rs {
		for _, e := range r.Expressions {
			items, ok := e.Value.([]any)
			if !ok {
				return nil, fmt.Errorf("policy %s: violation is a %T, want a set of objects", p.File, e.Value)
			}
			for _, it := range items {
				msgs = append(msgs, violationMsg(it))
			}
		}
	}
	sort.Strings(msgs)
	return msgs, nil
}

func violationMsg(v any) string {
	if m, ok := v.(map[string]any); ok {
		if s, ok := m["msg"].(string); ok {
			return s
		}
	}
	return fmt.Sprint(v)
}
