package intel_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/model"
)

// FuzzDecodeKEV feeds catalogues as the network (or anyone between) might
// serve them through decoding, lookups and annotation. Seeds are in
// testdata/fuzz/FuzzDecodeKEV.
func FuzzDecodeKEV(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := intel.DecodeKEV(bytes.NewReader(data), 1<<20)
		if err != nil {
			if !errors.Is(err, intel.ErrMalformed) && !errors.Is(err, intel.ErrTooLarge) {
				t.Fatalf("error outside ErrMalformed: %v", err)
			}
			return
		}
		if !slices.IsSortedFunc(k.Entries, func(a, b intel.KEVEntry) int { return strings.Compare(a.CVE, b.CVE) }) {
			t.Fatal("entries not sorted")
		}
		for _, e := range k.Entries {
			got, ok := k.Lookup(e.CVE)
			if !model.IsCVE(e.CVE) || !ok || got != e || e.DateAdded == "" {
				t.Fatalf("entry kept: %+v", e)
			}
			f := model.Finding{VulnID: e.CVE, Severity: model.SeverityLow}
			(&intel.Feeds{KEV: k}).Annotate(&f, true)
			if f.KEV == nil || f.Priority != model.P1 {
				t.Fatalf("annotation of a listed CVE: %+v", f)
			}
		}
	})
}

// FuzzDecodeEPSS does the same for the scores (plain or gzip). Seeds are in
// testdata/fuzz/FuzzDecodeEPSS.
func FuzzDecodeEPSS(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := intel.DecodeEPSS(bytes.NewReader(data), 1<<20)
		if err != nil {
			if !errors.Is(err, intel.ErrMalformed) && !errors.Is(err, intel.ErrTooLarge) {
				t.Fatalf("error outside ErrMalformed: %v", err)
			}
			return
		}
		if e.ModelVersion == "" || e.ScoreDate.IsZero() {
			t.Fatalf("metadata kept: %q %s", e.ModelVersion, e.ScoreDate)
		}
		for _, line := range strings.Split(string(data), "\n") {
			cve, _, _ := strings.Cut(line, ",")
			if !model.IsCVE(cve) {
				continue
			}
			s, ok := e.Lookup(cve)
			if !ok || s.Score < 0 || s.Score > 1 || s.Percentile < 0 || s.Percentile > 1 {
				t.Fatalf("%s: %+v %v", cve, s, ok)
			}
		}
	})
}
