package audit

import (
	"bytes"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAuditBatch measures one Event Hubs event holding 100 diagnostic
// records (decode of all three encoding levels + rules + de-duplication),
// without I/O.
func BenchmarkAuditBatch(b *testing.B) {
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	if err != nil {
		b.Fatal(err)
	}
	var events [][]byte
	for i := range 100 {
		ev := readEvent(b, strings.TrimSuffix(filepath.Base(files[i%len(files)]), ".json"))
		events = append(events, ev)
	}
	body := diagnosticBody(b, events...)
	d := newDetector(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for b.Loop() {
		batch := d.NewBatch()
		n, bad, err := (Analyzer{}).AddBody(batch, body)
		if err != nil || n != 100 || len(bad) != 0 {
			b.Fatalf("%d events, %d bad, %v", n, len(bad), err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
	// The machine is shared: CPU time shows the cost per core regardless
	// of what else runs.
	b.ReportMetric(float64(b.N*100)/(cpuTime(b)-cpu0).Seconds(), "records/cpu-s")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAuditBenign measures the committed benign corpus (two hours of
// an ordinary cluster, mostly reads and controller traffic, with records
// of other categories), body by body: the mix a real audit hub carries.
func BenchmarkAuditBenign(b *testing.B) {
	var bodies [][]byte
	for line := range bytes.Lines(readGzip(b, benignPath)) {
		bodies = append(bodies, line)
	}
	d := newDetector(b)
	a := Analyzer{}
	records := 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for b.Loop() {
		batch := d.NewBatch()
		var c Counts
		for _, body := range bodies {
			if _, err := a.Analyze(batch, body, &c); err != nil {
				b.Fatal(err)
			}
		}
		records += c.Events + c.SkippedTotal()
	}
	b.ReportMetric(float64(records)/(cpuTime(b)-cpu0).Seconds(), "records/cpu-s")
}
