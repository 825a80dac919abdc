// Package ops serves the sensor's operational endpoints: /healthz, and
// /metrics in the Prometheus text exposition format (version 0.0.4).
package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palisade-sec/palisade/shared/ehsink/queue"
)

// latencyBuckets are the upper bounds, in seconds, of the send latency
// histogram.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics counts what the sensor does. It is safe for concurrent use.
type Metrics struct {
	mu       sync.Mutex
	received map[string]uint64 // by input
	invalid  map[string]uint64 // by input

	sent, sentBytes, batches, sendErrors atomic.Uint64
	lastSent                             atomic.Int64 // unix nanoseconds

	latMu    sync.Mutex
	latCount [13]uint64 // per bucket, the last is +Inf
	latSum   float64
	latN     uint64
}

// NewMetrics returns zeroed metrics.
func NewMetrics() *Metrics {
	return &Metrics{received: map[string]uint64{}, invalid: map[string]uint64{}}
}

// Received counts an event accepted from input.
func (m *Metrics) Received(input string) {
	m.mu.Lock()
	m.received[input]++
	m.mu.Unlock()
}

// Invalid counts an input that could not be decoded.
func (m *Metrics) Invalid(input string) {
	m.mu.Lock()
	m.invalid[input]++
	m.mu.Unlock()
}

// Sent counts a batch Event Hubs accepted.
func (m *Metrics) Sent(events, bytes int, took time.Duration) {
	m.sent.Add(uint64(events))
	m.sentBytes.Add(uint64(bytes))
	m.batches.Add(1)
	m.lastSent.Store(time.Now().UnixNano())
	s := took.Seconds()
	m.latMu.Lock()
	i, _ := slices.BinarySearch(latencyBuckets, s)
	m.latCount[i]++
	m.latSum += s
	m.latN++
	m.latMu.Unlock()
}

// SendFailed counts a failed attempt to send a batch.
func (m *Metrics) SendFailed(error) { m.sendErrors.Add(1) }

// Snapshot is a copy of the counters, for tests and health.
type Snapshot struct {
	Received, Invalid map[string]uint64
	Sent, SentBytes   uint64
	Batches           uint64
	SendErrors        uint64
	LastSent          time.Time
}

// Snapshot returns a copy of the counters.
func (m *Metrics) Snapshot() Snapshot {
	m.mu.Lock()
	s := Snapshot{Received: maps.Clone(m.received), Invalid: maps.Clone(m.invalid)}
	m.mu.Unlock()
	s.Sent, s.SentBytes, s.Batches, s.SendErrors = m.sent.Load(), m.sentBytes.Load(), m.batches.Load(), m.sendErrors.Load()
	if ns := m.lastSent.Load(); ns != 0 {
		s.LastSent = time.Unix(0, ns)
	}
	return s
}

// Stats gives the queue's state at scrape time.
type Stats interface {
	Stats() queue.Stats
}

// priorityNames label the queue's levels as Falco names them.
var priorityNames = [queue.Levels]string{"Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"}

// Write writes every metric in the Prometheus text format.
func (m *Metrics) Write(w io.Writer, q Stats) error {
	s := m.Snapshot()
	qs := q.Stats()
	var b strings.Builder
	family := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	byLabel := func(name, label string, v map[string]uint64) {
		for _, k := range slices.Sorted(maps.Keys(v)) {
			fmt.Fprintf(&b, "%s{%s=%q} %d\n", name, label, k, v[k])
		}
	}
	family("palisade_sensor_events_received_total", "counter", "Falco events accepted, by input.")
	byLabel("palisade_sensor_events_received_total", "input", s.Received)
	family("palisade_sensor_events_invalid_total", "counter", "Inputs that could not be decoded, by input.")
	byLabel("palisade_sensor_events_invalid_total", "input", s.Invalid)
	family("palisade_sensor_events_sent_total", "counter", "Events Event Hubs accepted.")
	fmt.Fprintf(&b, "palisade_sensor_events_sent_total %d\n", s.Sent)
	family("palisade_sensor_sent_bytes_total", "counter", "Bytes of event bodies Event Hubs accepted.")
	fmt.Fprintf(&b, "palisade_sensor_sent_bytes_total %d\n", s.SentBytes)
	family("palisade_sensor_batches_sent_total", "counter", "Batches Event Hubs accepted.")
	fmt.Fprintf(&b, "palisade_sensor_batches_sent_total %d\n", s.Batches)
	family("palisade_sensor_send_errors_total", "counter", "Failed attempts to send a batch (each retried).")
	fmt.Fprintf(&b, "palisade_sensor_send_errors_total %d\n", s.SendErrors)
	family("palisade_sensor_events_dropped_total", "counter", "Events dropped, by reason and Falco priority.")
	for _, r := range slices.Sorted(maps.Keys(qs.Drops)) {
		for p, n := range qs.Drops[r] {
			if n > 0 {
				fmt.Fprintf(&b, "palisade_sensor_events_dropped_total{reason=%q,priority=%q} %d\n", r, priorityNames[p], n)
			}
		}
	}
	family("palisade_sensor_buffer_events", "gauge", "Events held in the buffer, in flight included.")
	fmt.Fprintf(&b, "palisade_sensor_buffer_events %d\n", qs.Events)
	family("palisade_sensor_buffer_bytes", "gauge", "Bytes held in the buffer, in flight included.")
	fmt.Fprintf(&b, "palisade_sensor_buffer_bytes %d\n", qs.Bytes)
	family("palisade_sensor_buffer_in_flight_events", "gauge", "Events being sent.")
	fmt.Fprintf(&b, "palisade_sensor_buffer_in_flight_events %d\n", qs.InFlight)
	family("palisade_sensor_spool_errors_total", "counter", "Events kept in memory because writing them to the spool failed.")
	fmt.Fprintf(&b, "palisade_sensor_spool_errors_total %d\n", qs.SpoolErrors)
	family("palisade_sensor_send_latency_seconds", "histogram", "Time to send one batch, retries within the attempt included.")
	m.latMu.Lock()
	var cum uint64
	for i, le := range latencyBuckets {
		cum += m.latCount[i]
		fmt.Fprintf(&b, "palisade_sensor_send_latency_seconds_bucket{le=%q} %d\n", strconv.FormatFloat(le, 'g', -1, 64), cum)
	}
	cum += m.latCount[len(latencyBuckets)]
	fmt.Fprintf(&b, "palisade_sensor_send_latency_seconds_bucket{le=\"+Inf\"} %d\n", cum)
	fmt.Fprintf(&b, "palisade_sensor_send_latency_seconds_sum %s\n", strconv.FormatFloat(m.latSum, 'g', -1, 64))
	fmt.Fprintf(&b, "palisade_sensor_send_latency_seconds_count %d\n", m.latN)
	m.latMu.Unlock()
	_, err := io.WriteString(w, b.String())
	return err
}

// Handler serves /healthz and /metrics.
func Handler(m *Metrics, q Stats) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		qs := q.Stats()
		s := m.Snapshot()
		w.Header().Set("Content-Type", "application/json")
		last := ""
		if !s.LastSent.IsZero() {
			last = s.LastSent.UTC().Format(time.RFC3339Nano)
		}
		fmt.Fprintf(w, "{\"status\":\"ok\",\"bufferedEvents\":%d,\"lastSent\":%q}\n", qs.Events, last)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = m.Write(w, q)
	})
	return mux
}

// Serve serves h on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}
