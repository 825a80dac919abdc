package intel_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/intel/inteltest"
	"github.com/palisade-sec/palisade/tests/cputime"
)

// benchRows is the size of a full EPSS feed (about 300,000 CVEs).
const benchRows = 300000

// BenchmarkEPSSFeed parses and indexes a full-size EPSS feed as published
// (gzip-compressed CSV) and looks every CVE up once. The goal is at most
// 2 s and 150 MB; it reports the CPU time (the machine is shared), the
// peak heap above the compressed input, and rows per CPU-second.
func BenchmarkEPSSFeed(b *testing.B) {
	gz := inteltest.Gzip(inteltest.GenerateEPSS(time.Date(2026, 11, 29, 12, 55, 0, 0, time.UTC), benchRows, 1))
	cves := make([]string, 0, benchRows)
	e, err := intel.DecodeEPSS(bytes.NewReader(gz), 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range bytes.Split(inteltest.GenerateEPSS(e.ScoreDate, benchRows, 1), []byte("\n"))[2:] {
		if i := bytes.IndexByte(line, ','); i > 0 {
			cves = append(cves, string(line[:i]))
		}
	}
	e = nil
	heap := cputime.StartHeap()
	cpu := cputime.Process(b)
	b.ResetTimer()
	for b.Loop() {
		e, err := intel.DecodeEPSS(bytes.NewReader(gz), 0)
		if err != nil || e.Len() != benchRows {
			b.Fatal(err, e.Len())
		}
		for _, c := range cves {
			if _, ok := e.Lookup(c); !ok {
				b.Fatalf("%s not found", c)
			}
		}
	}
	used := cputime.Process(b) - cpu
	b.ReportMetric(heap.MB(), "peak-MB")
	b.ReportMetric(float64(used.Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(benchRows*b.N)/used.Seconds(), "rows/cpu-s")
}
