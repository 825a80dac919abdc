package msrc

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// Matching errors.
var (
	// ErrUnsupported: the image's identity says it cannot be assessed.
	ErrUnsupported = errors.New("unsupported Windows image")
	// ErrNotCovered: no month held speaks for the image's release.
	ErrNotCovered = errors.New("release not covered by the Windows advisory data")
)

// Index answers which fixes an image lacks. It is built from the months
// held, resolves each (CVE, release) to one fix and is read-only after
// NewIndex, so it is safe for concurrent use.
type Index struct {
	months  []string        // ids, oldest first
	version string          // changes whenever the data does
	builds  map[int]bool    // releases some month speaks for
	byBuild map[int][]entry // in the order findings are returned: most severe first, then by CVE
}

// entry is one CVE fixed in one release, with the strings its findings
// need made once.
type entry struct {
	cve, title, kb, url, month string
	revision                   int
	fixed                      string // "10.0.20348.2966"
	remedyTail                 string // the remediation after the base image's name
	refs                       []string
	severity                   model.Severity
	msrcSeverity, impact       string
	score                      float64
	vector                     string
	exploited                  bool
}

type candidate struct {
	fix   Fix
	order int // the month's position, oldest first
}

// NewIndex builds the index of months (any order; one per id).
func NewIndex(months []Month) *Index {
	sorted := slices.Clone(months)
	slices.SortStableFunc(sorted, func(a, b Month) int {
		ta, _ := ParseMonth(a.ID)
		tb, _ := ParseMonth(b.ID)
		return ta.Compare(tb)
	})
	type key struct {
		cve   string
		build int
	}
	type meta struct {
		title     string
		exploited bool
		fix       Fix // the newest month's rating
		month     string
	}
	cands := map[key][]candidate{}
	metas := map[key]meta{}
	ix := &Index{builds: map[int]bool{}, byBuild: map[int][]entry{}}
	h := sha256.New()
	for order, m := range sorted {
		ix.months = append(ix.months, m.ID)
		for _, b := range m.Builds {
			ix.builds[b] = true
		}
		fmt.Fprintf(h, "%s %s\n", m.ID, monthHash(m))
		for _, v := range m.Vulns {
			for _, f := range v.Fixes {
				k := key{v.CVE, f.Build}
				cands[k] = append(cands[k], candidate{fix: f, order: order})
				metas[k] = meta{title: v.Title, exploited: v.Exploited, fix: f, month: m.ID}
			}
		}
	}
	newest := "none"
	if len(ix.months) > 0 {
		newest = ix.months[len(ix.months)-1]
	}
	ix.version = "msrc:" + newest + ":" + hex.EncodeToString(h.Sum(nil))[:12]
	for k, cs := range cands {
		c := resolve(cs)
		md := metas[k]
		rev := strconv.Itoa(c.fix.Revision)
		fixed := "10.0." + strconv.Itoa(k.build) + "." + rev
		update := fixed + " or later"
		if c.fix.KB != "" {
			update = fixed + ", " + c.fix.KB + " or a later cumulative update"
		}
		ix.byBuild[k.build] = append(ix.byBuild[k.build], entry{
			cve: k.cve, title: md.title, kb: c.fix.KB, url: c.fix.URL, month: sorted[c.order].ID,
			revision: c.fix.Revision, fixed: fixed, remedyTail: " at revision ≥ " + rev + " (" + update + ").",
			refs:     references(k.cve, c.fix.KB, c.fix.URL),
			severity: SeverityOf(md.fix.Severity), msrcSeverity: md.fix.Severity, impact: md.fix.Impact,
			score: md.fix.Score, vector: md.fix.Vector, exploited: md.exploited,
		})
	}
	for _, es := range ix.byBuild {
		slices.SortFunc(es, func(a, b entry) int {
			return cmp.Or(cmp.Compare(b.severity.Rank(), a.severity.Rank()), strings.Compare(a.cve, b.cve))
		})
	}
	return ix
}

// resolve picks the fix of one CVE in one release among the vendor fixes
// the documents list for it:
//
//   - the same KB listed again (a later month, or a revised document) counts
//     once, as the newest month lists it;
//   - a fix whose KB another listed fix supersedes is dropped: MSRC adds the
//     newer update to a CVE when the earlier one did not fully address it
//     (a re-release), so only the superseding update remediates;
//   - of what remains, the lowest build: cumulative updates carry every
//     earlier fix, so any build at or above it is fixed.
func resolve(cs []candidate) candidate {
	byKB := map[string]int{}
	var kept []candidate
	for _, c := range cs {
		if c.fix.KB == "" {
			kept = append(kept, c)
			continue
		}
		if i, ok := byKB[c.fix.KB]; ok {
			if c.order >= kept[i].order {
				kept[i] = c
			}
			continue
		}
		byKB[c.fix.KB] = len(kept)
		kept = append(kept, c)
	}
	var live []candidate
	for i, c := range kept {
		superseded := false
		for j, d := range kept {
			if i != j && c.fix.KB != "" && d.fix.KB != c.fix.KB && slices.Contains(d.fix.Supersedes, c.fix.KB) {
				superseded = true
				break
			}
		}
		if !superseded {
			live = append(live, c)
		}
	}
	if len(live) == 0 { // a supersedence cycle: trust none of it
		live = kept
	}
	return slices.MinFunc(live, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.fix.Revision, b.fix.Revision), cmp.Compare(b.order, a.order))
	})
}

// Version identifies the data: it changes whenever a month is added,
// dropped or revised. Record it with each match, as the Trivy DB version
// is, so a scan knows when a rescan would find something new.
func (ix *Index) Version() string { return ix.version }

// Months are the ids of the months held, oldest first.
func (ix *Index) Months() []string { return slices.Clone(ix.months) }

// Covers reports whether some month held speaks for the release of build.
func (ix *Index) Covers(build int) bool { return ix.builds[build] }

// Finding is one fix an image lacks.
type Finding struct {
	CVE        string
	Title      string
	Product    string // what the image runs: "Windows Server 2022 Server Core"
	Installed  string // the image's os.version
	FixedBuild string // the first build with the fix: "10.0.20348.2402"
	KB         string // the update bringing it: "KB5036909"
	URL        string // the remediation's link, when the document gives one
	// References are the Security Update Guide's page of the CVE (first),
	// the KB article and URL. The slice is shared by every finding of the
	// CVE: copy it before changing it.
	References   []string
	Severity     model.Severity
	MSRCSeverity string // MSRC's own rating: "Important"
	Impact       string
	CVSSScore    float64
	CVSSVector   string
	Exploited    bool
	Month        string // the document the fix was taken from
	Remediation  string
}

// Match returns the fixes an image lacks: every CVE fixed in its release at
// a build revision above the image's, most severe first. It fails with
// ErrUnsupported or ErrNotCovered (wrapped, with the reason) when the image
// cannot be assessed, so that it is recorded as unsupported, never as clean.
func (ix *Index) Match(id windowsimage.Identity) ([]Finding, error) {
	if !id.Supported() {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, id.Unsupported)
	}
	build := id.Product.Build
	if !ix.builds[build] {
		return nil, fmt.Errorf("%w: none of the months held (%s) lists %s", ErrNotCovered,
			strings.Join(ix.months, ", "), ServerCoreProduct(id.Product))
	}
	es := ix.byBuild[build]
	n := 0
	for i := range es {
		if es[i].revision > id.Version.Revision {
			n++
		}
	}
	out := make([]Finding, 0, n)
	product, base := id.PackageName(), "Rebuild the image from "+id.BaseImage()
	for i := range es {
		e := &es[i]
		if e.revision <= id.Version.Revision {
			continue
		}
		out = append(out, Finding{
			CVE: e.cve, Title: e.title, Product: product, Installed: id.OSVersion,
			FixedBuild: e.fixed, KB: e.kb, URL: e.url, Severity: e.severity, MSRCSeverity: e.msrcSeverity,
			Impact: e.impact, CVSSScore: e.score, CVSSVector: e.vector, Exploited: e.exploited, Month: e.month,
			Remediation: base + e.remedyTail, References: e.refs,
		})
	}
	return out, nil
}

// Model is the finding in the store's shape for image img. FirstSeen and
// LastSeen are left for the store to set, as for every other finding.
func (f Finding) Model(img model.Image) model.Finding {
	refs := slices.Clone(f.References)
	if len(refs) == 0 {
		refs = references(f.CVE, f.KB, f.URL)
	}
	return model.Finding{
		ID:               model.FindingID(img.Digest, f.CVE, f.Product, "", f.Installed),
		Digest:           img.Digest,
		Registry:         img.Registry,
		Repository:       img.Repository,
		VulnID:           f.CVE,
		PkgName:          f.Product,
		PkgType:          windowsimage.PkgType,
		InstalledVersion: f.Installed,
		FixedVersion:     f.FixedBuild,
		FixStatus:        "fixed",
		Severity:         f.Severity,
		SeveritySource:   "msrc",
		CVSSScore:        f.CVSSScore,
		CVSSVector:       f.CVSSVector,
		Title:            f.Title,
		References:       refs,
		PrimaryURL:       refs[0],
		KnownExploited:   f.Exploited,
		Remediation:      f.Remediation,
		Status:           model.FindingOpen,
		SeverityRank:     f.Severity.Rank(),
		DemoData:         img.DemoData,
	}
}

// references lists a CVE's Security Update Guide page, then its KB article
// and the remediation's link when there are.
func references(cve, kb, url string) []string {
	refs := []string{"https://msrc.microsoft.com/update-guide/vulnerability/" + cve}
	if n := strings.TrimPrefix(kb, "KB"); n != "" {
		refs = append(refs, "https://support.microsoft.com/help/"+n)
	}
	if url != "" && !slices.Contains(refs, url) {
		refs = append(refs, url)
	}
	return slices.Clip(refs)
}
