package intel_test

import (
	"bytes"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/intel/inteltest"
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
	heap := startHeapSampler()
	cpu := cpuTime(b)
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
	used := cpuTime(b) - cpu
	b.ReportMetric(heap.MB(), "peak-MB")
	b.ReportMetric(float64(used.Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(benchRows*b.N)/used.Seconds(), "rows/cpu-s")
}

// heapSampler tracks the largest heap seen while it runs.
type heapSampler struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func startHeapSampler() *heapSampler {
	runtime.GC()
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	h.base = s[0].Value.Uint64()
	go func() {
		defer close(h.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

// MB stops the sampler and returns how far the heap rose, in MB.
func (h *heapSampler) MB() float64 {
	close(h.stop)
	<-h.done
	return float64(h.peak.Load()-min(h.base, h.peak.Load())) / (1 << 20)
}

func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
