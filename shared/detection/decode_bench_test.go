package detection

import (
	"testing"

	"github.com/palisade-sec/palisade/tests/cputime"
)

// BenchmarkDecodeEnvelope measures decoding one sensor envelope as the
// sensor writes it (the Falco samples, ~1 KB each).
func BenchmarkDecodeEnvelope(b *testing.B) {
	corpus := runtimeCorpus(b)
	var size int
	for _, raw := range corpus {
		size += len(raw)
	}
	b.SetBytes(int64(size / len(corpus)))
	b.ReportAllocs()
	i := 0
	cpu0 := cputime.Process(b)
	for b.Loop() {
		if _, err := DecodeEnvelope(corpus[i%len(corpus)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	// The machine may be shared: CPU time is the cost regardless of load.
	b.ReportMetric(float64((cputime.Process(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
