package audit

import (
	"fmt"
	"strings"

	"github.com/palisade-sec/palisade/shared/detection"
)

// auditCategories are the diagnostic categories that carry audit events.
// An AKS diagnostic setting may send its other categories (kube-apiserver,
// kube-controller-manager, kube-scheduler, cluster-autoscaler, guard,
// cloud-controller-manager, csi-*) to the same hub; those are not audit
// events and are skipped, not parked.
var auditCategories = map[string]bool{"kube-audit": true, "kube-audit-admin": true}

// MaxSkippedCategories bounds the distinct categories Counts keeps by name;
// further ones are counted under "other".
const MaxSkippedCategories = 32

// Counts say what Analyze did with the records of diagnostic bodies.
type Counts struct {
	Events int // audit events analysed
	// Skipped counts the records of other diagnostic categories by category.
	Skipped map[string]int
}

// SkippedTotal is the number of records skipped.
func (c *Counts) SkippedTotal() int {
	n := 0
	for _, v := range c.Skipped {
		n += v
	}
	return n
}

func (c *Counts) skip(category string) {
	if c.Skipped == nil {
		c.Skipped = map[string]int{}
	}
	if _, ok := c.Skipped[category]; !ok && len(c.Skipped) >= MaxSkippedCategories {
		category = "other"
	}
	c.Skipped[category]++
}

// Analyze decodes one Event Hubs event body of AKS diagnostics and folds
// the hits of each kube-audit record's audit event into b, adding to c.
// Records of other diagnostic categories are counted in c.Skipped. A record
// without a category is taken for an audit record. Audit records that
// cannot be decoded are returned with the reason, for parking; the others
// are processed.
func (a Analyzer) Analyze(b *detection.Batch, body []byte, c *Counts) (bad []BadRecord, err error) {
	return a.AnalyzeObserving(b, body, c, nil)
}

// AnalyzeObserving is Analyze that also adds to obs (when not nil) what
// the identity baselines learn from each audit event (see Identities).
func (a Analyzer) AnalyzeObserving(b *detection.Batch, body []byte, c *Counts, obs *Observations) (bad []BadRecord, err error) {
	d, err := DecodeDiagnostic(body)
	if err != nil {
		return nil, err
	}
	var hits []detection.Hit
	var lastID, cluster string
	var lastErr error
	parsed := false
	for i := range d.Records {
		rec := &d.Records[i]
		if cat := strings.ToLower(rec.Category); cat != "" && !auditCategories[cat] {
			c.skip(truncate(cat, 64))
			continue
		}
		// The records of a body come from one cluster's setting: its id
		// is parsed once.
		if !parsed || rec.ResourceID != lastID {
			parsed, lastID = true, rec.ResourceID
			cluster, lastErr = ClusterFromResourceID(rec.ResourceID)
		}
		if err := lastErr; err != nil {
			bad = append(bad, BadRecord{Index: i, Reason: fmt.Sprintf("record %d: %v", i, err), Log: rec.Properties.Log})
			continue
		}
		e, err := decodeEvent(stringBytes(rec.Properties.Log), rec.Properties.Log)
		if err != nil {
			bad = append(bad, BadRecord{Index: i, Reason: fmt.Sprintf("record %d: %v", i, err), Log: rec.Properties.Log})
			continue
		}
		c.Events++
		hits = a.Hits(cluster, &e, hits[:0])
		for _, h := range hits {
			b.Add(h)
		}
		if obs != nil {
			obs.add(cluster, &e)
		}
	}
	return bad, nil
}

// AddBody is Analyze for one body on its own, returning the number of
// audit events analysed; use Analyze to count the records it skips.
func (a Analyzer) AddBody(b *detection.Batch, body []byte) (events int, bad []BadRecord, err error) {
	var c Counts
	bad, err = a.Analyze(b, body, &c)
	return c.Events, bad, err
}

// BadRecord is a record of a diagnostic body that could not be analysed.
type BadRecord struct {
	Index  int
	Reason string
	Log    string
}
