package audit

import (
	"encoding/json"
	"strings"
	"testing"
)

// BenchmarkDecode decodes the benign corpus's diagnostic bodies and their
// audit events as Analyze does ("scan"), and as encoding/json alone did
// before the scanners ("unmarshal").
func BenchmarkDecode(b *testing.B) {
	bodies, _ := auditCorpus(b)
	records := 0
	for _, body := range bodies {
		d, err := DecodeDiagnostic(body)
		if err != nil {
			b.Fatal(err)
		}
		records += len(d.Records)
	}
	run := func(b *testing.B, decode func(body []byte) error) {
		b.ReportAllocs()
		for b.Loop() {
			for _, body := range bodies {
				if err := decode(body); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*records), "ns/record")
	}
	b.Run("scan", func(b *testing.B) {
		run(b, func(body []byte) error {
			d, err := DecodeDiagnostic(body)
			for _, r := range d.Records {
				if strings.HasPrefix(r.Category, "kube-audit") && err == nil {
					_, err = decodeEvent(stringBytes(r.Properties.Log), r.Properties.Log)
				}
			}
			return err
		})
	})
	b.Run("unmarshal", func(b *testing.B) {
		run(b, func(body []byte) error {
			var d Diagnostic
			err := json.Unmarshal(body, &d)
			for _, r := range d.Records {
				if strings.HasPrefix(r.Category, "kube-audit") && err == nil {
					var e Event
					err = json.Unmarshal([]byte(r.Properties.Log), &e)
				}
			}
			return err
		})
	})
}
