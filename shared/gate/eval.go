package gate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/palisade-sec/palisade/shared/model"
)

// ErrNotScanned is what a Results answers for a digest Palisade has no
// usable scan result for (never scanned, or its scan failed). Any other
// error means the result is unknown.
var ErrNotScanned = errors.New("image not scanned")

// Result is what the gate needs of one image's scan: the summary and its
// open findings, reduced.
type Result struct {
	Digest     string    `json:"digest"`
	Registry   string    `json:"registry,omitempty"`
	Repository string    `json:"repository,omitempty"`
	PushedAt   time.Time `json:"pushedAt,omitzero"`
	Findings   []Finding `json:"findings,omitempty"`
}

// Finding is one open finding, reduced to what conditions read.
type Finding struct {
	VulnID         string         `json:"vulnId"`
	Severity       model.Severity `json:"severity"`
	Fixable        bool           `json:"fixable,omitempty"`
	KnownExploited bool           `json:"knownExploited,omitempty"`
}

// Reduce makes a finding's reduced form.
func Reduce(f model.Finding) Finding {
	return Finding{VulnID: f.VulnID, Severity: f.Severity, Fixable: f.FixedVersion != "", KnownExploited: f.KnownExploited}
}

// Results answers scan results by digest.
type Results interface {
	Lookup(ctx context.Context, digest string) (Result, error)
}

// Workload is what is reviewed: a pod, or the pod template of a workload.
type Workload struct {
	Cluster, Namespace string
	Kind, Name         string
	// NamespaceLabels are the namespace's labels; Labels the workload's
	// (for a template, the template's).
	NamespaceLabels, Labels map[string]string
	Containers              []Container
}

// Container is one container (init and ephemeral included) with its image
// reference as written and the digest it was resolved to (empty: unknown).
type Container struct {
	Name   string `json:"name"`
	Image  string `json:"image"`
	Digest string `json:"digest,omitempty"`
}

// Options of an evaluation.
type Options struct {
	// FailClosed denies a workload with an image whose result is unknown
	// (the Palisade API unreachable, a tag that cannot be resolved).
	FailClosed bool
	// Now is the clock, for expiries and ages.
	Now func() time.Time
}

// Decision is the outcome of one review.
type Decision struct {
	Allowed bool `json:"allowed"`
	// Exempt says why the workload was not reviewed (system namespace).
	Exempt string `json:"exempt,omitempty"`
	// Violations are the rules that fired, audit and deny.
	Violations []Violation `json:"violations,omitempty"`
	// Unknown are the images whose results could not be learned.
	Unknown []Container `json:"unknown,omitempty"`
	// Exempted are the exemptions that lifted a rule or a CVE.
	Exempted []string `json:"exempted,omitempty"`
	// Message is the refusal, naming the rules and CVEs; Warnings the
	// audit findings (one line each).
	Message  string   `json:"message,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Violation is one rule that fired on one container.
type Violation = model.AdmissionViolation

// Records reports whether the decision is worth recording: a rule fired,
// or an unknown image was denied.
func (d Decision) Records() bool { return len(d.Violations) > 0 || !d.Allowed }

// Admission is the record of the decision: a filled in with what was
// decided (a carries the request: cluster, uid, object, user, time).
func (d Decision) Admission(a Admission) Admission {
	a.Allowed, a.Message, a.Warnings, a.Violations = d.Allowed, d.Message, d.Warnings, d.Violations
	a.Unknown = nil
	for _, c := range d.Unknown {
		a.Unknown = append(a.Unknown, c.Image)
	}
	if a.ID == "" {
		a.ID = model.HashID(a.Cluster, a.UID)
	}
	return a
}

// Admission is a stored decision.
type Admission = model.Admission

// image is a container's image as judged.
type image struct {
	Container
	registry, repo string // from the reference as written
	result         Result
	state          int
}

const (
	scanned = iota
	notScanned
	unknown
)

// Evaluate decides on a workload.
func (r Rules) Evaluate(ctx context.Context, w Workload, res Results, opts Options) Decision {
	if slices.Contains(r.Exempt(), w.Namespace) {
		return Decision{Allowed: true, Exempt: "system namespace " + w.Namespace}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	t := now()
	d := Decision{Allowed: true}
	imgs := make([]image, 0, len(w.Containers))
	for _, c := range w.Containers {
		im := image{Container: c}
		if ref, err := name.ParseReference(c.Image); err == nil {
			im.registry, im.repo = ref.Context().RegistryStr(), ref.Context().RepositoryStr()
			if dg, ok := ref.(name.Digest); ok && im.Digest == "" {
				im.Digest = dg.DigestStr()
			}
		}
		switch {
		case !model.ValidDigest(im.Digest):
			im.state = unknown
		default:
			var err error
			im.result, err = res.Lookup(ctx, im.Digest)
			switch {
			case errors.Is(err, ErrNotScanned):
				im.state = notScanned
			case err != nil:
				im.state = unknown
			}
		}
		if im.state == unknown {
			d.Unknown = append(d.Unknown, c)
		}
		imgs = append(imgs, im)
	}
	nsLabels, podLabels := labels.Set(w.NamespaceLabels), labels.Set(w.Labels)
	for _, ru := range r.Rules {
		if !ru.inScope(w, nsLabels, podLabels) {
			continue
		}
		for _, im := range imgs {
			if len(ru.Scope.Images) > 0 && !matchAny(ru.Scope.Images, im.registry+"/"+im.repo) {
				continue
			}
			if ex := r.exempt(ru.Name, w.Namespace, im, "", t); ex != "" {
				d.Exempted = appendNew(d.Exempted, ex)
				continue
			}
			v := Violation{Rule: ru.Name, Mode: string(ru.Mode), Container: im.Name, Image: im.Image, Digest: im.Digest}
			v.Reasons, v.CVEs = r.check(ru, w.Namespace, im, t, &d)
			if len(v.Reasons) > 0 {
				d.Violations = append(d.Violations, v)
			}
		}
	}
	var denied []string
	for _, v := range d.Violations {
		line := fmt.Sprintf("container %s (%s): rule %q: %s", v.Container, v.Image, v.Rule, strings.Join(v.Reasons, "; "))
		if v.Mode == string(ModeDeny) {
			d.Allowed = false
			denied = append(denied, line)
		} else {
			d.Warnings = append(d.Warnings, "palisade audit: "+line)
		}
	}
	for _, c := range d.Unknown {
		if opts.FailClosed {
			d.Allowed = false
			denied = append(denied, fmt.Sprintf("container %s (%s): scan results unknown and the gate fails closed", c.Name, c.Image))
		} else {
			d.Warnings = append(d.Warnings, fmt.Sprintf("palisade gate: container %s (%s): scan results unknown, allowed (the gate fails open)", c.Name, c.Image))
		}
	}
	if len(denied) > 0 {
		d.Message = "palisade gate denied: " + strings.Join(denied, " | ")
	}
	return d
}

func (ru Rule) inScope(w Workload, nsLabels, podLabels labels.Set) bool {
	s := ru.Scope
	if len(s.Clusters) > 0 && !matchAny(s.Clusters, w.Cluster) {
		return false
	}
	if len(s.Namespaces) > 0 && !matchAny(s.Namespaces, w.Namespace) {
		return false
	}
	if ru.nsSel != nil && !ru.nsSel.Matches(nsLabels) {
		return false
	}
	return ru.podSel == nil || ru.podSel.Matches(podLabels)
}

// check returns why a rule fires on an image (nothing: it does not) and the
// CVEs concerned.
func (r Rules) check(ru Rule, ns string, im image, t time.Time, d *Decision) (reasons, cves []string) {
	c := ru.Conditions
	switch im.state {
	case notScanned:
		if c.NotScanned == NotScannedDeny {
			reasons = append(reasons, "image "+im.Digest+" not scanned")
		}
	case unknown:
		if c.NotScanned == NotScannedDeny {
			reasons = append(reasons, "scan results unknown")
		}
	}
	if len(c.TrustedRegistries) > 0 && im.registry != "" && !matchAny(c.TrustedRegistries, im.registry) {
		reasons = append(reasons, "registry "+im.registry+" is not trusted")
	}
	if im.state != scanned {
		return reasons, nil
	}
	if c.MaxAgeDays > 0 && !im.result.PushedAt.IsZero() {
		if age := t.Sub(im.result.PushedAt); age > time.Duration(c.MaxAgeDays)*24*time.Hour {
			reasons = append(reasons, fmt.Sprintf("image pushed %d days ago (limit %d)", int(age.Hours()/24), c.MaxAgeDays))
		}
	}
	if !c.findingConditions() {
		return reasons, nil
	}
	worst := model.Severity("")
	for _, f := range im.result.Findings {
		if !c.matches(f) {
			continue
		}
		if ex := r.exempt(ru.Name, ns, im, f.VulnID, t); ex != "" {
			d.Exempted = appendNew(d.Exempted, ex)
			continue
		}
		cves = appendNew(cves, f.VulnID)
		if f.Severity.Rank() > worst.Rank() || worst == "" {
			worst = f.Severity
		}
	}
	if len(cves) > 0 {
		slices.Sort(cves)
		reasons = append(reasons, fmt.Sprintf("%d vulnerabilities (worst %s%s): %s", len(cves), worst, qualifiers(c), list(cves, 10)))
	}
	return reasons, cves
}

func (c Conditions) matches(f Finding) bool {
	if c.MinSeverity != "" && f.Severity.Rank() < c.MinSeverity.Rank() {
		return false
	}
	if c.FixableOnly && !f.Fixable {
		return false
	}
	if c.KnownExploited && !f.KnownExploited {
		return false
	}
	return len(c.CVEs) == 0 || slices.Contains(c.CVEs, strings.ToUpper(f.VulnID))
}

func qualifiers(c Conditions) string {
	var q string
	if c.FixableOnly {
		q += ", fixable"
	}
	if c.KnownExploited {
		q += ", known exploited"
	}
	return q
}

// exempt returns the exemption that lifts rule for the image (cve empty)
// or for one CVE of it, as "reason (until date)"; "" when none does.
func (r Rules) exempt(rule, ns string, im image, cve string, t time.Time) string {
	for _, e := range r.Exemptions {
		// An exemption without a CVE lifts the whole rule; one with a CVE
		// only that CVE.
		if !t.Before(e.Expires) || (e.Rule != "" && e.Rule != rule) || e.CVE != cve {
			continue
		}
		if e.Namespace != "" && !glob(e.Namespace, ns) {
			continue
		}
		if e.Image != "" && e.Image != im.Digest && !glob(e.Image, im.registry+"/"+im.repo) {
			continue
		}
		return fmt.Sprintf("%s (until %s)", e.Reason, e.Expires.UTC().Format(time.RFC3339))
	}
	return ""
}

// list joins ids, at most n of them.
func list(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:n], ", ") + fmt.Sprintf(" and %d more", len(ids)-n)
}

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
