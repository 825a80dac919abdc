// Package gate is gated deployment's policy: the rules an admission
// decision follows (PALISADE_GATE_RULES, YAML or JSON), and the evaluation
// of a workload's containers against cached scan results. It decides; the
// webhook that asks (palisade-agent), the records and the CLI are edges.
//
// A rule has a scope (clusters, namespaces, namespace and workload labels,
// image patterns; * in a pattern stands for any run of characters), a mode (audit: allow with a warning and a record; deny)
// and conditions on each container's image; it fires when any condition
// holds. Exemptions (by namespace, image or CVE) carry a reason and an
// expiry. Without rules, one default rule audits High and Critical
// findings; system namespaces (kube-system, kube-public, kube-node-lease)
// are exempt unless the file lists its own, so the cluster can always heal
// itself. Images are judged by digest only: a tag is resolved first, and an
// image whose digest cannot be learned counts as unknown, never as the
// image a name suggests.
package gate

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/palisade-sec/palisade/shared/model"
)

// Mode is what a fired rule does.
type Mode string

// Modes.
const (
	// ModeAudit admits with a warning and a record.
	ModeAudit Mode = "audit"
	// ModeDeny refuses.
	ModeDeny Mode = "deny"
)

// Not-scanned actions: what a rule does with an image Palisade has no scan
// result for.
const (
	NotScannedAllow = "allow"
	NotScannedDeny  = "deny"
)

// MaxRulesBytes bounds a rules file.
const MaxRulesBytes = 1 << 20

// DefaultSystemNamespaces are exempt unless the rules file names its own.
var DefaultSystemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// Rules is a parsed rules file.
type Rules struct {
	// Rules are evaluated in order; every one that fires is reported.
	Rules []Rule `json:"rules"`
	// Exemptions lift a rule's findings for a namespace, an image or a CVE.
	Exemptions []Exemption `json:"exemptions,omitempty"`
	// SystemNamespaces are never reviewed. Absent: DefaultSystemNamespaces;
	// an empty list exempts none.
	SystemNamespaces *[]string `json:"systemNamespaces,omitempty"`
}

// Rule is one gated-deployment rule.
type Rule struct {
	Name       string     `json:"name"`
	Mode       Mode       `json:"mode"`
	Scope      Scope      `json:"scope,omitzero"`
	Conditions Conditions `json:"conditions"`

	nsSel, podSel labels.Selector
}

// Scope limits a rule; an empty field matches everything.
type Scope struct {
	// Clusters are cluster ids (patterns).
	Clusters []string `json:"clusters,omitempty"`
	// Namespaces are namespace names (patterns).
	Namespaces []string `json:"namespaces,omitempty"`
	// NamespaceSelector and Selector are label selectors
	// ("team=shop,tier!=dev") over the namespace's and the workload's labels.
	NamespaceSelector string `json:"namespaceSelector,omitempty"`
	Selector          string `json:"selector,omitempty"`
	// Images are image names without tag or digest
	// ("contoso.azurecr.io/shop/*"), patterns.
	Images []string `json:"images,omitempty"`
}

// Conditions of a rule. Finding conditions (MinSeverity, FixableOnly,
// KnownExploited, CVEs) combine: the rule fires on a scanned image when one
// open finding meets all that are set. Image conditions fire on their own.
type Conditions struct {
	// MinSeverity: a finding of this severity or worse.
	MinSeverity model.Severity `json:"minSeverity,omitempty"`
	// FixableOnly: only findings with a fixed version count.
	FixableOnly bool `json:"fixableOnly,omitempty"`
	// KnownExploited: only findings known to be exploited (CISA KEV).
	KnownExploited bool `json:"knownExploited,omitempty"`
	// CVEs: only these vulnerability ids (or an alias of the finding).
	CVEs []string `json:"cves,omitempty"`
	// NotScanned: "deny" fires on an image Palisade has no result for (or
	// whose digest is unknown); "allow" (the default) lets it pass.
	NotScanned string `json:"notScanned,omitempty"`
	// MaxAgeDays fires on an image pushed more than this many days ago.
	MaxAgeDays int `json:"maxAgeDays,omitempty"`
	// TrustedRegistries fires on an image from any other registry (login
	// server, patterns).
	TrustedRegistries []string `json:"trustedRegistries,omitempty"`
}

// Exemption lifts rules for what it names until it expires. Set one or
// more of Namespace, Image and CVE: all that are set must match.
type Exemption struct {
	// Rule limits the exemption to one rule; empty: all rules.
	Rule      string    `json:"rule,omitempty"`
	Namespace string    `json:"namespace,omitempty"` // pattern
	Image     string    `json:"image,omitempty"`     // pattern over the name, or a digest
	CVE       string    `json:"cve,omitempty"`
	Reason    string    `json:"reason"`
	Expires   time.Time `json:"expires"`
}

// Default is the rule used when the file has none: audit High and
// Critical findings.
func Default() Rules {
	r := Rules{Rules: []Rule{{Name: "default-high-critical", Mode: ModeAudit, Conditions: Conditions{MinSeverity: model.SeverityHigh}}}}
	if err := r.compile(); err != nil {
		panic(err) // a fixed value
	}
	return r
}

// Parse reads a rules file (YAML or JSON) and checks every rule, reporting
// every problem at once. A file with no rules gets the default rule.
func Parse(data []byte) (Rules, error) {
	if len(data) > MaxRulesBytes {
		return Rules{}, fmt.Errorf("rules file is %d bytes; the limit is %d", len(data), MaxRulesBytes)
	}
	var r Rules
	if err := yaml.UnmarshalStrict(data, &r); err != nil {
		return Rules{}, fmt.Errorf("rules file: %w", err)
	}
	if len(r.Rules) == 0 {
		r.Rules = Default().Rules
	}
	if err := r.compile(); err != nil {
		return Rules{}, err
	}
	return r, nil
}

// compile validates and normalises the rules in place.
func (r *Rules) compile() error {
	var errs []error
	seen := map[string]bool{}
	for i := range r.Rules {
		ru := &r.Rules[i]
		at := fmt.Sprintf("rule %d (%q)", i+1, ru.Name)
		if ru.Name == "" {
			errs = append(errs, fmt.Errorf("rule %d: name is required", i+1))
		} else if seen[ru.Name] {
			errs = append(errs, fmt.Errorf("%s: name used twice", at))
		}
		seen[ru.Name] = true
		switch ru.Mode {
		case ModeAudit, ModeDeny:
		default:
			errs = append(errs, fmt.Errorf("%s: mode %q: want audit or deny", at, ru.Mode))
		}
		c := &ru.Conditions
		if c.MinSeverity != "" {
			s, err := model.ParseSeverity(string(c.MinSeverity))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: minSeverity: %w", at, err))
			}
			c.MinSeverity = s
		}
		switch c.NotScanned {
		case "", NotScannedAllow, NotScannedDeny:
		default:
			errs = append(errs, fmt.Errorf("%s: notScanned %q: want allow or deny", at, c.NotScanned))
		}
		if c.MaxAgeDays < 0 {
			errs = append(errs, fmt.Errorf("%s: maxAgeDays is negative", at))
		}
		for j, id := range c.CVEs {
			if strings.TrimSpace(id) == "" {
				errs = append(errs, fmt.Errorf("%s: cves[%d] is empty", at, j))
			}
			c.CVEs[j] = strings.ToUpper(strings.TrimSpace(id))
		}
		if !c.findingConditions() && c.NotScanned != NotScannedDeny && c.MaxAgeDays == 0 && len(c.TrustedRegistries) == 0 {
			errs = append(errs, fmt.Errorf("%s: no conditions: it would never fire", at))
		}
		var err error
		if ru.nsSel, err = labels.Parse(ru.Scope.NamespaceSelector); err != nil {
			errs = append(errs, fmt.Errorf("%s: namespaceSelector: %w", at, err))
		}
		if ru.podSel, err = labels.Parse(ru.Scope.Selector); err != nil {
			errs = append(errs, fmt.Errorf("%s: selector: %w", at, err))
		}
	}
	for i, e := range r.Exemptions {
		at := fmt.Sprintf("exemption %d", i+1)
		if e.Namespace == "" && e.Image == "" && e.CVE == "" {
			errs = append(errs, fmt.Errorf("%s: names no namespace, image or CVE", at))
		}
		if strings.TrimSpace(e.Reason) == "" {
			errs = append(errs, fmt.Errorf("%s: a reason is required", at))
		}
		if e.Expires.IsZero() {
			errs = append(errs, fmt.Errorf("%s: an expiry is required", at))
		}
		if e.Rule != "" && !seen[e.Rule] {
			errs = append(errs, fmt.Errorf("%s: no rule named %q", at, e.Rule))
		}
		r.Exemptions[i].CVE = strings.ToUpper(strings.TrimSpace(e.CVE))
	}
	return errors.Join(errs...)
}

func (c Conditions) findingConditions() bool {
	return c.MinSeverity != "" || c.FixableOnly || c.KnownExploited || len(c.CVEs) > 0
}

// Exempt are the namespaces never reviewed (the system namespaces).
func (r Rules) Exempt() []string {
	if r.SystemNamespaces == nil {
		return DefaultSystemNamespaces
	}
	return *r.SystemNamespaces
}

// matchAny reports whether s matches one of the patterns.
func matchAny(pats []string, s string) bool {
	for _, p := range pats {
		if glob(p, s) {
			return true
		}
	}
	return false
}

// glob matches s against p, where * stands for any run of characters
// (slashes included: cluster ids and image names have them) and nothing
// else is special.
func glob(p, s string) bool {
	star, from := -1, 0
	i, j := 0, 0
	for j < len(s) {
		switch {
		case i < len(p) && p[i] == '*':
			star, from = i, j
			i++
		case i < len(p) && p[i] == s[j]:
			i++
			j++
		case star >= 0:
			from++
			i, j = star+1, from
		default:
			return false
		}
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}
