package audit

import (
	"fmt"

	"github.com/palisade-sec/palisade/shared/detection"
)

// AddBody decodes one Event Hubs event body of AKS diagnostics and folds
// the hits of each record's audit event into b. Records that cannot be
// decoded are returned with the reason, for parking; the others are
// processed. It returns the number of audit events analysed.
func (a Analyzer) AddBody(b *detection.Batch, body []byte) (events int, bad []BadRecord, err error) {
	d, err := DecodeDiagnostic(body)
	if err != nil {
		return 0, nil, err
	}
	var hits []detection.Hit
	for i := range d.Records {
		rec := &d.Records[i]
		cluster, err := ClusterFromResourceID(rec.ResourceID)
		if err != nil {
			bad = append(bad, BadRecord{Index: i, Reason: fmt.Sprintf("record %d: %v", i, err), Log: rec.Properties.Log})
			continue
		}
		e, err := DecodeEvent([]byte(rec.Properties.Log))
		if err != nil {
			bad = append(bad, BadRecord{Index: i, Reason: fmt.Sprintf("record %d: %v", i, err), Log: rec.Properties.Log})
			continue
		}
		events++
		hits = a.Hits(cluster, &e, hits[:0])
		for _, h := range hits {
			b.Add(h)
		}
	}
	return events, bad, nil
}

// BadRecord is a record of a diagnostic body that could not be analysed.
type BadRecord struct {
	Index  int
	Reason string
	Log    string
}
