package intel

import (
	"math"

	"github.com/palisade-sec/palisade/shared/model"
)

// EPSS thresholds of the priority rule.
const (
	// EPSSLikely: a score at or above it (a 10% chance of exploitation
	// activity within 30 days; about the top 5% of scored CVEs) counts as
	// likely to be exploited.
	EPSSLikely = 0.1
	// EPSSVeryLikely: at or above it exploitation is more likely than not.
	EPSSVeryLikely = 0.5
)

// Prioritise is the priority rule. It combines, for one finding, whether
// its CVE is in CISA's KEV catalogue, its EPSS score, its severity, whether
// a fixed version exists, and whether the image runs in a monitored
// cluster:
//
//	P1  running, and known exploited (KEV), or very likely to be
//	    (EPSS >= 0.5) with severity high or critical
//	P2  known exploited (not running); or running and likely to be
//	    exploited (EPSS >= 0.1) with severity high or critical; or
//	    running, critical, with a fix available
//	P3  high or critical otherwise; or likely to be exploited
//	    (EPSS >= 0.1) at any severity
//	P4  everything else: medium, low or unknown with no exploitation
//	    signal, and suppressed findings (Finding.Suppressed)
//
// Exploitation evidence comes first (EPSS "is best used when there is no
// other evidence of active exploitation", FIRST says, so KEV outranks it);
// an image that runs is exposed now, one that does not can wait for its
// next build; and a fix that exists makes a running critical finding
// actionable today. Without exploitation feeds (offline) the rule runs on
// severity, fix and running alone, and the finding's MissingFeeds says so.
func Prioritise(f *model.Finding, running bool) model.Priority {
	if f.Suppressed != nil {
		return model.P4
	}
	kev := f.KEV != nil
	epss := 0.0
	if f.EPSS != nil {
		epss = f.EPSS.Score
	}
	severe := f.Severity.Rank() >= model.SeverityHigh.Rank()
	critical := f.Severity == model.SeverityCritical
	fix := f.FixedVersion != ""
	switch {
	case running && (kev || (severe && epss >= EPSSVeryLikely)):
		return model.P1
	case kev, running && severe && epss >= EPSSLikely, running && critical && fix:
		return model.P2
	case severe, epss >= EPSSLikely:
		return model.P3
	}
	return model.P4
}

// Annotate sets a finding's exploitation data and priority from the feeds:
// KEV, KnownExploited, EPSS, MissingFeeds (the feeds not held, for a
// finding with a CVE), Suppressed (from the VEX statements, nil without
// one), Priority and PriorityRank.
// The EPSS value f already holds is kept while the feed's differs from it
// only immaterially (see epssBucket), so that the daily feed does not
// rewrite every finding; its Date then says which day's scores it shows.
func (fs *Feeds) Annotate(f *model.Finding, running bool) {
	var kev *KEV
	var epss *EPSS
	f.Suppressed = nil
	if fs != nil {
		kev, epss = fs.KEV, fs.EPSS
		if fs.VEX != nil {
			f.Suppressed = fs.VEX.Suppression(f)
		}
	}
	cve := f.CVE()
	f.KEV, f.KnownExploited = nil, false
	if e, ok := kev.Lookup(cve); ok && cve != "" {
		k := e.KEV
		f.KEV, f.KnownExploited = &k, true
	}
	if s, ok := epss.Lookup(cve); ok && cve != "" {
		if f.EPSS == nil || epssBucket(*f.EPSS) != epssBucket(s) {
			f.EPSS = &s
		}
	} else {
		f.EPSS = nil
	}
	f.MissingFeeds = nil
	if cve != "" {
		// Feeds are keyed by CVE: one without concerns no other finding.
		f.MissingFeeds = fs.missing()
	}
	f.Priority = Prioritise(f, running)
	f.PriorityRank = f.Priority.Rank()
}

// missing names the feeds not held, nil when both are.
func (fs *Feeds) missing() []string {
	var out []string
	if fs == nil || fs.KEV == nil {
		out = append(out, model.FeedKEV)
	}
	if fs == nil || fs.EPSS == nil {
		out = append(out, model.FeedEPSS)
	}
	return out
}

// bucket is what of an EPSS value matters to a stored finding: the score
// to 0.001, the percentile to 0.01, and which side of the priority
// thresholds the score is on. Scores move a little every day; a finding is
// rewritten only when its bucket changes.
type bucket struct{ score, percentile, band int }

func epssBucket(e model.EPSS) bucket {
	band := 0
	switch {
	case e.Score >= EPSSVeryLikely:
		band = 2
	case e.Score >= EPSSLikely:
		band = 1
	}
	return bucket{score: int(math.Round(e.Score * 1000)), percentile: int(math.Round(e.Percentile * 100)), band: band}
}
