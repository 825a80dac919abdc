package gate

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
)

var (
	now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	dgA = "sha256:" + strings.Repeat("a", 64)
	dgB = "sha256:" + strings.Repeat("b", 64)
	dgC = "sha256:" + strings.Repeat("c", 64)
)

// mapResults is an in-memory Results; err, when set, answers every lookup.
type mapResults struct {
	m   map[string]Result
	err error
}

func (r mapResults) Lookup(_ context.Context, digest string) (Result, error) {
	if r.err != nil {
		return Result{}, r.err
	}
	res, ok := r.m[digest]
	if !ok {
		return Result{}, ErrNotScanned
	}
	return res, nil
}

var results = mapResults{m: map[string]Result{
	dgA: {Digest: dgA, Registry: "contoso.azurecr.io", Repository: "shop/web", PushedAt: now.AddDate(0, 0, -400), Findings: []Finding{
		{VulnID: "CVE-2024-0001", Severity: model.SeverityCritical, Fixable: true},
		{VulnID: "CVE-2024-0002", Severity: model.SeverityHigh, Fixable: false, KnownExploited: true},
		{VulnID: "CVE-2023-44487", Severity: model.SeverityHigh, Fixable: true},
		{VulnID: "CVE-2024-0003", Severity: model.SeverityLow, Fixable: true},
	}},
	dgB: {Digest: dgB, Registry: "contoso.azurecr.io", Repository: "shop/api", PushedAt: now.AddDate(0, 0, -3), Findings: []Finding{
		{VulnID: "CVE-2024-0003", Severity: model.SeverityLow, Fixable: true},
	}},
}}

func mustParse(t *testing.T, s string) Rules {
	t.Helper()
	r, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func pod(ns, img, digest string) Workload {
	return Workload{Cluster: "aks-1", Namespace: ns, Kind: "Pod", Name: "p", Containers: []Container{{Name: "app", Image: img, Digest: digest}}}
}

func TestExampleFileParses(t *testing.T) {
	b, err := os.ReadFile("testdata/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rules) != 6 || len(r.Exemptions) != 2 || r.Rules[0].Conditions.MinSeverity != model.SeverityCritical {
		t.Fatalf("parsed %+v", r)
	}
	// JSON is YAML too.
	if _, err := Parse([]byte(`{"rules":[{"name":"x","mode":"deny","conditions":{"cves":["cve-2021-44228"]}}]}`)); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"unknown field", "rules: [{name: a, mode: deny, conditions: {minSeverty: high}}]", "minSeverty"},
		{"bad mode", "rules: [{name: a, mode: block, conditions: {minSeverity: high}}]", `mode "block": want audit or deny`},
		{"no name", "rules: [{mode: deny, conditions: {minSeverity: high}}]", "rule 1: name is required"},
		{"twice", "rules: [{name: a, mode: deny, conditions: {minSeverity: high}}, {name: a, mode: audit, conditions: {minSeverity: low}}]", "name used twice"},
		{"bad severity", "rules: [{name: a, mode: deny, conditions: {minSeverity: urgent}}]", `unknown severity "urgent"`},
		{"no conditions", "rules: [{name: a, mode: deny, conditions: {}}]", "no conditions"},
		{"notScanned", "rules: [{name: a, mode: deny, conditions: {notScanned: maybe}}]", `notScanned "maybe"`},
		{"selector", "rules: [{name: a, mode: deny, scope: {selector: 'a in ('}, conditions: {minSeverity: high}}]", "selector"},
		{"exemption reason", "exemptions: [{cve: CVE-1, expires: 2027-01-01T00:00:00Z}]", "a reason is required"},
		{"exemption expiry", "exemptions: [{cve: CVE-1, reason: r}]", "an expiry is required"},
		{"exemption target", "exemptions: [{reason: r, expires: 2027-01-01T00:00:00Z}]", "names no namespace, image or CVE"},
		{"exemption rule", "exemptions: [{rule: nope, cve: CVE-1, reason: r, expires: 2027-01-01T00:00:00Z}]", `no rule named "nope"`},
		{"too big", strings.Repeat("#", MaxRulesBytes+1), "the limit is"},
		{"not yaml", "rules: [", "rules file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestEmptyFileAuditsHighAndCritical(t *testing.T) {
	r := mustParse(t, "")
	d := r.Evaluate(t.Context(), pod("shop", "contoso.azurecr.io/shop/web:1", dgA), results, Options{Now: func() time.Time { return now }})
	if !d.Allowed || len(d.Violations) != 1 || d.Violations[0].Rule != "default-high-critical" {
		t.Fatalf("decision %+v", d)
	}
	if diff := cmp.Diff([]string{"CVE-2023-44487", "CVE-2024-0001", "CVE-2024-0002"}, d.Violations[0].CVEs); diff != "" {
		t.Error(diff)
	}
	if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "CVE-2024-0001") {
		t.Errorf("warnings %q", d.Warnings)
	}
	for _, ns := range DefaultSystemNamespaces {
		if d := r.Evaluate(t.Context(), pod(ns, "contoso.azurecr.io/shop/web:1", dgA), results, Options{}); !d.Allowed || d.Exempt == "" || len(d.Violations) > 0 {
			t.Errorf("%s: %+v", ns, d)
		}
	}
}

func TestConditions(t *testing.T) {
	web := "contoso.azurecr.io/shop/web:1"
	for _, tc := range []struct {
		name    string
		rule    string
		w       Workload
		res     Results
		opts    Options
		allowed bool
		cves    []string
		reason  string
	}{
		{name: "severity at or above", rule: "{minSeverity: critical}", w: pod("shop", web, dgA), cves: []string{"CVE-2024-0001"}},
		{name: "fixable only", rule: "{minSeverity: high, fixableOnly: true}", w: pod("shop", web, dgA), cves: []string{"CVE-2023-44487", "CVE-2024-0001"}},
		{name: "known exploited", rule: "{knownExploited: true}", w: pod("shop", web, dgA), cves: []string{"CVE-2024-0002"}},
		{name: "cve ids", rule: "{cves: [cve-2024-0003]}", w: pod("shop", web, dgB), cves: []string{"CVE-2024-0003"}},
		{name: "clean image", rule: "{minSeverity: high}", w: pod("shop", "contoso.azurecr.io/shop/api:2", dgB), allowed: true},
		{name: "not scanned, deny", rule: "{notScanned: deny}", w: pod("shop", "contoso.azurecr.io/x:1", dgC), reason: "not scanned"},
		{name: "not scanned, allowed", rule: "{minSeverity: low}", w: pod("shop", "contoso.azurecr.io/x:1", dgC), allowed: true},
		{name: "older than", rule: "{maxAgeDays: 365}", w: pod("shop", web, dgA), reason: "pushed 400 days ago (limit 365)"},
		{name: "younger than", rule: "{maxAgeDays: 365}", w: pod("shop", web, dgB), allowed: true},
		{name: "untrusted registry", rule: "{trustedRegistries: ['*.azurecr.io']}", w: pod("shop", "docker.io/library/nginx@"+dgB, ""), reason: "registry index.docker.io is not trusted"},
		{name: "trusted registry", rule: "{trustedRegistries: ['*.azurecr.io']}", w: pod("shop", web, dgB), allowed: true},
		{name: "digest in the reference", rule: "{minSeverity: critical}", w: pod("shop", "contoso.azurecr.io/shop/web@"+dgA, ""), cves: []string{"CVE-2024-0001"}},
		{name: "tag never trusted: unresolved is unknown", rule: "{minSeverity: critical}", w: pod("shop", web, ""), allowed: true},
		{name: "unknown fails closed", rule: "{minSeverity: critical}", w: pod("shop", web, ""), opts: Options{FailClosed: true}, reason: "unknown"},
		{name: "api down fails open", rule: "{minSeverity: critical}", w: pod("shop", web, dgA), res: mapResults{err: errors.New("connection refused")}, allowed: true},
		{name: "api down fails closed", rule: "{minSeverity: critical}", w: pod("shop", web, dgA), res: mapResults{err: errors.New("connection refused")}, opts: Options{FailClosed: true}, reason: "fails closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, "rules: [{name: r1, mode: deny, conditions: "+tc.rule+"}]")
			if tc.res == nil {
				tc.res = results
			}
			tc.opts.Now = func() time.Time { return now }
			d := r.Evaluate(t.Context(), tc.w, tc.res, tc.opts)
			if d.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v: %+v", d.Allowed, tc.allowed, d)
			}
			if tc.allowed {
				if d.Message != "" || len(d.Violations) > 0 {
					t.Fatalf("allowed with %+v", d)
				}
				return
			}
			if tc.cves != nil {
				if diff := cmp.Diff(tc.cves, d.Violations[0].CVEs); diff != "" {
					t.Error(diff)
				}
				for _, c := range tc.cves {
					if !strings.Contains(d.Message, c) {
						t.Errorf("message %q does not name %s", d.Message, c)
					}
				}
			}
			if !strings.Contains(d.Message, tc.reason) || (len(d.Violations) > 0 && !strings.Contains(d.Message, `rule "r1"`)) {
				t.Errorf("message %q, want it to say %q and name the rule", d.Message, tc.reason)
			}
		})
	}
}

func TestScope(t *testing.T) {
	r := mustParse(t, `
rules:
- name: prod
  mode: deny
  scope: {clusters: ["/subscriptions/*/aks-prod"], namespaces: ["shop-*"], namespaceSelector: "env=prod", selector: "tier in (web,api)", images: ["contoso.azurecr.io/shop/*"]}
  conditions: {minSeverity: critical}`)
	base := func() Workload {
		return Workload{Cluster: "/subscriptions/s1/rg/aks-prod", Namespace: "shop-eu", NamespaceLabels: map[string]string{"env": "prod"},
			Labels: map[string]string{"tier": "web"}, Containers: []Container{{Name: "c", Image: "contoso.azurecr.io/shop/web:1", Digest: dgA}}}
	}
	if d := r.Evaluate(t.Context(), base(), results, Options{}); d.Allowed {
		t.Fatal("in scope, allowed")
	}
	for name, change := range map[string]func(*Workload){
		"cluster":   func(w *Workload) { w.Cluster = "aks-dev" },
		"namespace": func(w *Workload) { w.Namespace = "web" },
		"ns labels": func(w *Workload) { w.NamespaceLabels = map[string]string{"env": "dev"} },
		"labels":    func(w *Workload) { w.Labels = nil },
		"image":     func(w *Workload) { w.Containers[0].Image = "contoso.azurecr.io/other/web:1" },
	} {
		w := base()
		change(&w)
		if d := r.Evaluate(t.Context(), w, results, Options{}); !d.Allowed || len(d.Violations) > 0 {
			t.Errorf("%s out of scope: %+v", name, d)
		}
	}
}

func TestExemptions(t *testing.T) {
	r := mustParse(t, `
rules:
- {name: crit, mode: deny, conditions: {minSeverity: high}}
exemptions:
- {namespace: legacy, reason: migrating, expires: 2026-12-01T00:00:00Z}
- {cve: CVE-2024-0002, reason: not reachable, expires: 2026-12-01T00:00:00Z}
- {image: "`+dgA+`", cve: CVE-2023-44487, reason: mitigated, expires: 2026-12-01T00:00:00Z}
- {namespace: old, reason: expired, expires: 2026-11-01T00:00:00Z}
`)
	at := func(t0 time.Time) Options { return Options{Now: func() time.Time { return t0 }} }
	web := "contoso.azurecr.io/shop/web:1"

	d := r.Evaluate(t.Context(), pod("legacy", web, dgA), results, at(now))
	if !d.Allowed || len(d.Exempted) != 1 || !strings.Contains(d.Exempted[0], "migrating") {
		t.Fatalf("namespace exemption: %+v", d)
	}
	d = r.Evaluate(t.Context(), pod("shop", web, dgA), results, at(now))
	if d.Allowed || !sameStrings(d.Violations[0].CVEs, []string{"CVE-2024-0001"}) || len(d.Exempted) != 2 {
		t.Fatalf("CVE exemptions: %+v", d)
	}
	if d := r.Evaluate(t.Context(), pod("old", web, dgA), results, at(now)); d.Allowed {
		t.Fatal("an expired exemption still holds")
	}
	later := now.Add(24 * time.Hour)
	if d := r.Evaluate(t.Context(), pod("legacy", web, dgA), results, at(later)); d.Allowed || len(d.Violations[0].CVEs) != 3 {
		t.Fatalf("after expiry: %+v", d)
	}
}

func sameStrings(a, b []string) bool { return cmp.Diff(a, b) == "" }

func TestAuditAndDenyTogether(t *testing.T) {
	r := mustParse(t, `
rules:
- {name: deny-crit, mode: deny, conditions: {minSeverity: critical}}
- {name: audit-low, mode: audit, conditions: {minSeverity: low}}`)
	w := Workload{Namespace: "shop", Containers: []Container{
		{Name: "web", Image: "contoso.azurecr.io/shop/web:1", Digest: dgA},
		{Name: "api", Image: "contoso.azurecr.io/shop/api:1", Digest: dgB},
	}}
	d := r.Evaluate(t.Context(), w, results, Options{})
	if d.Allowed || len(d.Violations) != 3 || len(d.Warnings) != 2 || !d.Records() {
		t.Fatalf("%+v", d)
	}
	if strings.Contains(d.Message, "api") {
		t.Errorf("message names an audited container: %q", d.Message)
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		ok   bool
	}{
		{"*", "", true}, {"a*c", "abbc", true}, {"a*c", "abcd", false}, {"*.azurecr.io", "x.azurecr.io", true},
		{"contoso.azurecr.io/*", "contoso.azurecr.io/a/b", true}, {"a?", "a?", true}, {"a?", "ab", false}, {"**a", "ba", true},
	} {
		if glob(tc.p, tc.s) != tc.ok {
			t.Errorf("glob(%q, %q) != %v", tc.p, tc.s, tc.ok)
		}
	}
}
