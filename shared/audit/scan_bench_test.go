package audit

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/tests/cputime"
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
		cpu0 := cputime.Process(b)
		for b.Loop() {
			for _, body := range bodies {
				if err := decode(body); err != nil {
					b.Fatal(err)
				}
			}
		}
		cpu := cputime.Process(b) - cpu0
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*records), "cpu-ns/record")
		b.ReportMetric(float64(b.N*records)/cpu.Seconds(), "records/cpu-s")
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
