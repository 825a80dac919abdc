package intel

import (
	"slices"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
)

// Feeds is the exploitation data one scan, rescan or update is annotated
// with. Either feed may be nil: not available (offline, or never
// downloaded). A nil *Feeds has neither. Feeds are read-only once built and
// safe for concurrent use.
type Feeds struct {
	KEV  *KEV
	EPSS *EPSS
	// VEX, when set, says which findings a VEX statement suppresses
	// (package vex); Annotate sets Finding.Suppressed from it.
	VEX Suppressor
}

// Suppressor says why a finding does not count (a VEX statement), or nil;
// *vex.Set is the implementation.
type Suppressor interface {
	Suppression(f *model.Finding) *model.Suppression
}

// Missing names the feeds not held (model.FeedKEV, model.FeedEPSS), nil
// when both are.
func (fs *Feeds) Missing() []string { return fs.missing() }

// Changes is what changed between two versions of the feeds, for the
// update of stored findings.
type Changes struct {
	// All: every finding is affected (a feed held for the first time, or
	// more CVEs changed than are worth listing).
	All bool `json:"all,omitempty"`
	// CVEs changed materially (a KEV entry added, removed or changed; an
	// EPSS bucket changed), sorted.
	CVEs []string `json:"cves,omitempty"`
	// KEVAdded are the CVEs newly listed in the KEV catalogue (not those
	// of the first catalogue held, which is the baseline), sorted.
	KEVAdded []string `json:"kevAdded,omitempty"`
	// DetectedAt is when the earliest of the changes was downloaded.
	DetectedAt time.Time `json:"detectedAt,omitzero"`
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool { return !c.All && len(c.CVEs) == 0 && len(c.KEVAdded) == 0 }

// MaxChangedCVEs bounds the CVEs a Changes lists; beyond it, All is set.
const MaxChangedCVEs = 50000

// Merge adds o to c (changes not yet applied accumulate).
func (c Changes) Merge(o Changes) Changes {
	out := Changes{All: c.All || o.All, KEVAdded: union(c.KEVAdded, o.KEVAdded), DetectedAt: c.DetectedAt}
	if out.DetectedAt.IsZero() || (!o.DetectedAt.IsZero() && o.DetectedAt.Before(out.DetectedAt)) {
		out.DetectedAt = o.DetectedAt
	}
	if !out.All {
		out.CVEs = union(c.CVEs, o.CVEs)
	}
	return out.capped()
}

func (c Changes) capped() Changes {
	if len(c.CVEs) > MaxChangedCVEs {
		c.All, c.CVEs = true, nil
	}
	if c.All {
		c.CVEs = nil
	}
	return c
}

func union(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// diffKEV returns the CVEs whose entry differs between old and next, and
// those newly listed. With no old catalogue every finding is affected and
// nothing counts as newly listed.
func diffKEV(old, next *KEV) Changes {
	if old == nil {
		return Changes{All: true}
	}
	var c Changes
	for _, e := range next.Entries {
		prev, ok := old.Lookup(e.CVE)
		switch {
		case !ok:
			c.CVEs = append(c.CVEs, e.CVE)
			c.KEVAdded = append(c.KEVAdded, e.CVE)
		case prev.KEV != e.KEV:
			c.CVEs = append(c.CVEs, e.CVE)
		}
	}
	for _, e := range old.Entries {
		if _, ok := next.Lookup(e.CVE); !ok {
			c.CVEs = append(c.CVEs, e.CVE)
		}
	}
	slices.Sort(c.CVEs)
	return c.capped()
}

// diffEPSS returns the CVEs whose score bucket differs between old and
// next (either side may lack the CVE): a merge of the two sorted indexes.
func diffEPSS(old, next *EPSS) Changes {
	if old == nil {
		return Changes{All: true}
	}
	var c Changes
	i, j := 0, 0
	for i < len(old.keys) || j < len(next.keys) {
		switch {
		case j == len(next.keys) || (i < len(old.keys) && old.keys[i] < next.keys[j]):
			c.CVEs = append(c.CVEs, cveOfKey(old.keys[i]))
			i++
		case i == len(old.keys) || next.keys[j] < old.keys[i]:
			c.CVEs = append(c.CVEs, cveOfKey(next.keys[j]))
			j++
		default:
			if old.bucket(i) != next.bucket(j) {
				c.CVEs = append(c.CVEs, cveOfKey(next.keys[j]))
			}
			i, j = i+1, j+1
		}
		if len(c.CVEs) > MaxChangedCVEs {
			return Changes{All: true}
		}
	}
	slices.Sort(c.CVEs) // keys sort numerically, ids as text
	return c
}

func (e *EPSS) bucket(i int) bucket {
	v := e.vals[i]
	return epssBucket(model.EPSS{Score: round5(v.score), Percentile: round5(v.percentile)})
}
