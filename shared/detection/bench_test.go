package detection

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/tests/cputime"
	"github.com/palisade-sec/palisade/tests/testfile"
)

// runtimeCorpus is 100 envelopes cycling through the Falco samples, each
// with its own id, as a batch arrives from Event Hubs.
func runtimeCorpus(b *testing.B) [][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "falco", "*.json"))
	if err != nil {
		b.Fatal(err)
	}
	var out [][]byte
	for i := range 100 {
		e := loadFalco(b, strings.TrimSuffix(filepath.Base(files[i%len(files)]), ".json"))
		e.ID = fmt.Sprintf("evt-%d", i)
		j, err := json.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, j)
	}
	return out
}

// BenchmarkRuntimeBatch measures decode + rules + de-duplication of a
// 100-event batch, without I/O.
func BenchmarkRuntimeBatch(b *testing.B) {
	corpus := runtimeCorpus(b)
	d := newTestDetector(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process(b)
	for b.Loop() {
		batch := d.NewBatch()
		for _, raw := range corpus {
			e, err := DecodeEnvelope(raw)
			if err != nil {
				b.Fatal(err)
			}
			batch.AddEnvelope(&e)
		}
		if len(batch.Folds()) == 0 {
			b.Fatal("no alerts")
		}
	}
	b.ReportMetric(float64(b.N*len(corpus))/b.Elapsed().Seconds(), "events/s")
	// The machine is shared: CPU time shows the cost per core regardless
	// of what else runs.
	b.ReportMetric(float64(b.N*len(corpus))/(cputime.Process(b)-cpu0).Seconds(), "events/cpu-s")
}

// BenchmarkRuntimeBenign measures the committed benign Falco corpus, the
// mix of routine alerts a cluster's Falco sends all day, as envelopes.
func BenchmarkRuntimeBenign(b *testing.B) {
	raw := testfile.Gunzip(b, benignFalcoPath)
	var corpus [][]byte
	for line := range bytes.Lines(raw) {
		e, err := decodeFalco(line)
		if err != nil {
			b.Fatal(err)
		}
		j, err := json.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		corpus = append(corpus, j)
	}
	d := newTestDetector(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process(b)
	for b.Loop() {
		batch := d.NewBatch()
		for _, raw := range corpus {
			e, err := DecodeEnvelope(raw)
			if err != nil {
				b.Fatal(err)
			}
			batch.AddEnvelope(&e)
		}
	}
	b.ReportMetric(float64(b.N*len(corpus))/(cputime.Process(b)-cpu0).Seconds(), "events/cpu-s")
}
