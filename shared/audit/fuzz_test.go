package audit

import (
	"time"

	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeEvent: any audit log either decodes and goes through the rules
// or fails cleanly.
func FuzzDecodeEvent(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEvent(b)
		if err != nil {
			return
		}
		_ = (Analyzer{}).Hits("fuzz", &e, nil)
	})
}

// FuzzDiagnostic: the outer {"records":[…]} body with its string-encoded
// audit events.
func FuzzDiagnostic(f *testing.F) {
	f.Add([]byte(`{"records":[{"resourceId":"/x/MANAGEDCLUSTERS/AKS","properties":{"log":"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":\"a\",\"verb\":\"create\",\"stageTimestamp\":\"2024-05-01T11:59:59Z\",\"objectRef\":{\"resource\":\"pods\",\"subresource\":\"exec\",\"namespace\":\"d\",\"name\":\"p\"},\"responseStatus\":{\"code\":101}}"}}]}`))
	f.Add([]byte(`{"records":[{"properties":{}}]}`))
	f.Add([]byte(`{"records":null}`))
	f.Add([]byte(`{"records":[{"category":"guard","properties":{"log":"x"}},{"category":"kube-audit","properties":{"log":"{}"}}]}`))
	d := newDetector(f)
	ids := NewIdentities(nil, IdentityOptions{Learning: time.Nanosecond, MinActiveHours: 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		batch := d.NewBatch()
		var c Counts
		var obs Observations
		bad, err := (Analyzer{}).AnalyzeObserving(batch, b, &c, &obs)
		if err != nil {
			return
		}
		d, _ := DecodeDiagnostic(b)
		if c.Events+len(bad)+c.SkippedTotal() != len(d.Records) {
			t.Fatalf("%d events, %d bad, %d skipped of %d records", c.Events, len(bad), c.SkippedTotal(), len(d.Records))
		}
		if obs.Len() > c.Events {
			t.Fatalf("%d observations of %d events", obs.Len(), c.Events)
		}
		// Whatever the events say, a baseline learned from them, twice,
		// stays within its bound and the second time changes nothing.
		for _, o := range obs.List() {
			if kindOf(o.User) == notBaselined {
				continue
			}
			base := IdentityBaseline{Cluster: o.Cluster, User: o.User, Since: o.At.Unix()}
			list := []*Observation{&o, &o}
			next, _, _ := ids.apply(base, list)
			again, _, changed := ids.apply(next, list)
			if changed || len(again.Features) > maxFeatures {
				t.Fatalf("applied again: changed %v, %d features", changed, len(again.Features))
			}
		}
	})
}

// FuzzParseThreatList: a threat feed either parses into a list whose every
// entry is found again, or fails with ErrThreatList.
func FuzzParseThreatList(f *testing.F) {
	f.Add([]byte("185.220.101.0/24 tor\n# c\n2001:db8::/32,proxy\n203.0.113.9\n"))
	f.Add([]byte("::ffff:1.2.3.4/120 vpn"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ti, err := ParseThreatList(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrThreatList) {
				t.Fatalf("error %v is not ErrThreatList", err)
			}
			return
		}
		for p, cat := range ti.byPrefix {
			if got, ok := ti.Lookup(p.Addr()); !ok || got == "" {
				t.Fatalf("entry %s (%s) not found: %q %v", p, cat, got, ok)
			}
		}
	})
}
