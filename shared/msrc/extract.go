package msrc

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// Month is what one monthly document says about the covered products, in
// the compact form that is stored and indexed.
type Month struct {
	ID       string    `json:"id"` // "2024-Mar"
	Title    string    `json:"title,omitempty"`
	Released time.Time `json:"released,omitzero"` // the document's CurrentReleaseDate
	// Builds are the covered builds whose Server Core product is in the
	// document's product tree: the month speaks for them even when it
	// fixes nothing in them.
	Builds []int  `json:"builds"`
	Vulns  []Vuln `json:"vulns"`
	// Skipped counts what the document says about covered products that
	// could not be used (an affected product with no fixed build, a fixed
	// build of another release, ...); SkippedSample names the first few.
	Skipped       int      `json:"skipped,omitempty"`
	SkippedSample []string `json:"skippedSample,omitempty"`
}

// Vuln is one vulnerability with its fixes in covered products.
type Vuln struct {
	CVE       string `json:"cve"`
	Title     string `json:"title,omitempty"`
	Exploited bool   `json:"exploited,omitempty"` // MSRC's exploit status says "Exploited:Yes"
	Fixes     []Fix  `json:"fixes"`
}

// Fix is one vendor fix of a vulnerability in one covered release: the
// cumulative update (KB) and the build it brings. A vulnerability may have
// more than one for a release (a re-released fix); the index picks one.
type Fix struct {
	Build      int      `json:"build"`    // 20348
	Revision   int      `json:"revision"` // 2340: fixed in 10.0.20348.2340
	KB         string   `json:"kb,omitempty"`
	URL        string   `json:"url,omitempty"`
	Supersedes []string `json:"supersedes,omitempty"` // KBs this update replaces
	Severity   string   `json:"severity,omitempty"`   // MSRC's rating: Critical, Important, Moderate, Low
	Impact     string   `json:"impact,omitempty"`     // e.g. "Remote Code Execution"
	Score      float64  `json:"score,omitempty"`      // CVSS base score
	Vector     string   `json:"vector,omitempty"`     // CVSS vector
}

// ServerCoreProduct is the Security Update Guide's name of a release's
// Server Core installation: the product whose fixes apply to both Windows
// base images. The guide lists no Nano Server product for these releases;
// the Nano Server base image is serviced by the same cumulative update at
// the same build revision, and is matched against this product too.
func ServerCoreProduct(p windowsimage.Product) string {
	return p.Name + " (Server Core installation)"
}

// normName folds case and runs of spaces, as the guide has written
// "installation" and "Installation" over the years.
func normName(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// Limits on what one vulnerability keeps, so a hostile document cannot
// inflate the stored form.
const (
	maxTitle       = 300
	maxVector      = 200
	maxURL         = 500
	maxSupersedes  = 8
	maxSkipSamples = 20
	// A real document names each Server Core product once and lists one
	// or two fixes per CVE and release; these bounds keep a hostile one
	// from costing quadratic time.
	maxProductIDs = 32
	maxFixes      = 16 // per vulnerability and release
)

var (
	vulnIDRE = regexp.MustCompile(`^(CVE-[0-9]{4}-[0-9]{4,7}|ADV[0-9]{6})$`)
	kbRE     = regexp.MustCompile(`^(?i:KB)?([0-9]{6,8})$`)
	kbListRE = regexp.MustCompile(`[0-9]{6,8}`)
)

// extractor keeps what a document says about the covered releases, one
// vulnerability at a time. What cannot be used is counted in Skipped.
type extractor struct {
	m        Month
	products map[string]windowsimage.Product // product id → release
	ids      []string                        // covered product ids, by build
}

func newExtractor(tree productTree) *extractor {
	ex := &extractor{m: Month{Builds: []int{}, Vulns: []Vuln{}}, products: map[string]windowsimage.Product{}}
	names := map[string]windowsimage.Product{}
	for _, p := range windowsimage.Products() {
		names[normName(ServerCoreProduct(p))] = p
	}
	for _, fp := range tree.FullProductName {
		if p, ok := names[normName(fp.Value)]; ok && fp.ProductID != "" {
			if _, dup := ex.products[fp.ProductID]; !dup {
				if len(ex.ids) == maxProductIDs {
					ex.m.skip("product %q: more than %d Server Core product ids", clip(fp.ProductID, 40), maxProductIDs)
					continue
				}
				ex.ids = append(ex.ids, fp.ProductID)
			}
			ex.products[fp.ProductID] = p
			if !slices.Contains(ex.m.Builds, p.Build) {
				ex.m.Builds = append(ex.m.Builds, p.Build)
			}
		}
	}
	slices.Sort(ex.m.Builds)
	slices.SortStableFunc(ex.ids, func(a, b string) int { return ex.products[a].Build - ex.products[b].Build })
	return ex
}

func (ex *extractor) add(v *vulnerability) {
	if out, ok := ex.m.extractVuln(v, ex.ids, ex.products); ok {
		ex.m.Vulns = append(ex.m.Vulns, out)
	}
}

// month is the result, with the document's header.
func (ex *extractor) month(id string, title text, track tracking) Month {
	m := ex.m
	m.ID, m.Title = id, clip(title.Value, maxTitle)
	if t, err := parseTime(track.CurrentReleaseDate); err == nil {
		m.Released = t
	}
	return m
}

func (m *Month) skip(format string, args ...any) {
	m.Skipped++
	if len(m.SkippedSample) < maxSkipSamples {
		m.SkippedSample = append(m.SkippedSample, clip(fmt.Sprintf(format, args...), 2*maxTitle))
	}
}

func (m *Month) extractVuln(v *vulnerability, ids []string, products map[string]windowsimage.Product) (Vuln, bool) {
	out := Vuln{CVE: strings.TrimSpace(v.CVE), Title: clip(v.Title.Value, maxTitle)}
	relevant := false
	for _, pid := range ids {
		if mentions(v, pid) {
			relevant = true
			break
		}
	}
	if !relevant {
		return out, false
	}
	if !vulnIDRE.MatchString(out.CVE) {
		m.skip("vulnerability id %q is not a CVE or advisory id", v.CVE)
		return out, false
	}
	for _, t := range v.Threats {
		if t.Type == threatExploitStatus && strings.Contains(strings.ReplaceAll(t.Description.Value, " ", ""), "Exploited:Yes") {
			out.Exploited = true
		}
	}
	for _, pid := range ids {
		p := products[pid]
		sev, impact := threatFor(v, pid, threatSeverity), threatFor(v, pid, threatImpact)
		score, vector := cvss(v, pid)
		found, n := false, 0
		for _, r := range v.Remediations {
			if r.Type != remediationVendor || !slices.Contains(r.ProductID, pid) {
				continue
			}
			// Hotpatches apply to running hosts, never to container images,
			// which take the cumulative update.
			if strings.Contains(strings.ToLower(r.SubType), "hotpatch") {
				continue
			}
			ver, err := windowsimage.ParseVersion(strings.TrimSpace(r.FixedBuild))
			if err != nil {
				m.skip("%s in %s: fixed build %q is not a Windows build", out.CVE, ServerCoreProduct(p), clip(r.FixedBuild, 40))
				continue
			}
			if ver.Major != 10 || ver.Minor != 0 || ver.Build != p.Build || ver.Revision == 0 {
				m.skip("%s in %s: fixed build %s is not a build of %d", out.CVE, ServerCoreProduct(p), ver, p.Build)
				continue
			}
			f := Fix{
				Build: p.Build, Revision: ver.Revision, KB: kb(r.Description.Value), URL: safeURL(r.URL),
				Supersedes: kbList(r.Supercedence), Severity: sev, Impact: impact, Score: score, Vector: vector,
			}
			found = true
			if slices.ContainsFunc(out.Fixes, func(g Fix) bool { return g.Build == f.Build && g.Revision == f.Revision && g.KB == f.KB }) {
				continue
			}
			if n++; n > maxFixes {
				m.skip("%s in %s: more than %d fixes", out.CVE, ServerCoreProduct(p), maxFixes)
				break
			}
			out.Fixes = append(out.Fixes, f)
		}
		if !found && affected(v, pid) {
			m.skip("%s in %s: affected, with no usable vendor fix", out.CVE, ServerCoreProduct(p))
		}
	}
	return out, len(out.Fixes) > 0
}

// mentions reports whether v names product pid anywhere that matters.
func mentions(v *vulnerability, pid string) bool {
	if affected(v, pid) {
		return true
	}
	for _, r := range v.Remediations {
		if slices.Contains(r.ProductID, pid) {
			return true
		}
	}
	return false
}

func affected(v *vulnerability, pid string) bool {
	for _, s := range v.ProductStatuses {
		if s.Type == statusKnownAffected && slices.Contains(s.ProductID, pid) {
			return true
		}
	}
	return false
}

// threatFor is the description of v's threat of type typ for pid: the one
// naming pid, else one naming no product; the most severe when several do.
func threatFor(v *vulnerability, pid string, typ int) string {
	best, general := "", ""
	for _, t := range v.Threats {
		if t.Type != typ {
			continue
		}
		d := clip(strings.TrimSpace(t.Description.Value), 60)
		switch {
		case slices.Contains(t.ProductID, pid):
			if best == "" || typ == threatSeverity && SeverityOf(d).Rank() > SeverityOf(best).Rank() {
				best = d
			}
		case len(t.ProductID) == 0 && general == "":
			general = d
		}
	}
	if best == "" {
		return general
	}
	return best
}

// cvss is v's CVSS rating for pid: the set naming pid, else one naming no
// product.
func cvss(v *vulnerability, pid string) (float64, string) {
	var general *cvssScoreSet
	for i, s := range v.CVSSScoreSets {
		if s.BaseScore < 0 || s.BaseScore > 10 {
			continue
		}
		if slices.Contains(s.ProductID, pid) {
			return s.BaseScore, clip(strings.TrimSpace(s.Vector), maxVector)
		}
		if len(s.ProductID) == 0 && general == nil {
			general = &v.CVSSScoreSets[i]
		}
	}
	if general != nil {
		return general.BaseScore, clip(strings.TrimSpace(general.Vector), maxVector)
	}
	return 0, ""
}

// SeverityOf maps MSRC's rating to Palisade's scale: Critical → CRITICAL,
// Important → HIGH, Moderate → MEDIUM, Low → LOW.
func SeverityOf(msrc string) model.Severity {
	switch strings.ToLower(strings.TrimSpace(msrc)) {
	case "critical":
		return model.SeverityCritical
	case "important":
		return model.SeverityHigh
	case "moderate":
		return model.SeverityMedium
	case "low":
		return model.SeverityLow
	}
	return model.SeverityUnknown
}

// kb reads a remediation's KB number ("5035857" or "KB5035857").
func kb(s string) string {
	if m := kbRE.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
		return "KB" + m[1]
	}
	return ""
}

// kbList reads a Supercedence value, which may name several KBs
// ("5034770", "5034770; 5034129", "KB5034770,KB5034129").
func kbList(s string) []string {
	var out []string
	for _, n := range kbListRE.FindAllString(s, maxSupersedes) {
		if k := "KB" + n; !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func safeURL(s string) string {
	s = strings.TrimSpace(s)
	l := strings.ToLower(s)
	if len(s) > maxURL || !strings.HasPrefix(l, "https://") && !strings.HasPrefix(l, "http://") || strings.ContainsAny(s, " \"<>") {
		return ""
	}
	return s
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
