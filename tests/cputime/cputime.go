// Package cputime measures what benchmarks report beside wall time: the
// process's CPU time (the machines that run them are shared, so CPU time
// per operation is the steadier number) and the peak rise of the heap.
package cputime

import (
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Process is the process's user and system CPU time so far.
func Process(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// HeapSampler follows the live heap every half millisecond.
type HeapSampler struct {
	base       uint64
	peak       atomic.Uint64
	stop, done chan struct{}
}

// StartHeap collects garbage, notes the heap, and samples it until MB.
func StartHeap() *HeapSampler {
	runtime.GC()
	h := &HeapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	h.base = s[0].Value.Uint64()
	go func() {
		defer close(h.done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(500 * time.Microsecond)
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

// MB stops the sampler and returns how far the heap rose above where it
// started, in MB.
func (h *HeapSampler) MB() float64 {
	close(h.stop)
	<-h.done
	return float64(h.peak.Load()-min(h.base, h.peak.Load())) / (1 << 20)
}
