// Package ops serves the sensor's operational endpoints: /healthz, and
// /metrics in the Prometheus exposition formats (client_golang, on a
// registry of the sensor's own, not the process-wide default).
package ops

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/palisade-sec/palisade/shared/ehsink/queue"
	"github.com/palisade-sec/palisade/shared/serve"
)

const namespace = "palisade_sensor"

// latencyBuckets are the upper bounds, in seconds, of the send latency
// histogram.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics counts what the sensor does. It is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	received, invalid                    *prometheus.CounterVec // by input
	sent, sentBytes, batches, sendErrors prometheus.Counter
	latency                              prometheus.Histogram
	lastSent                             atomic.Int64 // unix nanoseconds
}

// NewMetrics returns zeroed metrics.
func NewMetrics() *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "events_received_total",
			Help: "Falco events accepted, by input."}, []string{"input"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "events_invalid_total",
			Help: "Inputs that could not be decoded, by input."}, []string{"input"}),
		sent:       counter("events_sent_total", "Events Event Hubs accepted."),
		sentBytes:  counter("sent_bytes_total", "Bytes of event bodies Event Hubs accepted."),
		batches:    counter("batches_sent_total", "Batches Event Hubs accepted."),
		sendErrors: counter("send_errors_total", "Failed attempts to send a batch (each retried)."),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "send_latency_seconds",
			Help: "Time to send one batch, retries within the attempt included.", Buckets: latencyBuckets}),
	}
	m.reg.MustRegister(m.received, m.invalid, m.sent, m.sentBytes, m.batches, m.sendErrors, m.latency)
	return m
}

// Received counts an event accepted from input.
func (m *Metrics) Received(input string) { m.received.WithLabelValues(input).Inc() }

// Invalid counts an input that could not be decoded.
func (m *Metrics) Invalid(input string) { m.invalid.WithLabelValues(input).Inc() }

// Sent counts a batch Event Hubs accepted.
func (m *Metrics) Sent(events, bytes int, took time.Duration) {
	m.sent.Add(float64(events))
	m.sentBytes.Add(float64(bytes))
	m.batches.Inc()
	m.lastSent.Store(time.Now().UnixNano())
	m.latency.Observe(took.Seconds())
}

// SendFailed counts a failed attempt to send a batch.
func (m *Metrics) SendFailed(error) { m.sendErrors.Inc() }

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
	s := Snapshot{Received: byLabel(m.received, "input"), Invalid: byLabel(m.invalid, "input"),
		Sent: value(m.sent), SentBytes: value(m.sentBytes), Batches: value(m.batches), SendErrors: value(m.sendErrors)}
	if ns := m.lastSent.Load(); ns != 0 {
		s.LastSent = time.Unix(0, ns)
	}
	return s
}

func value(c prometheus.Counter) uint64 {
	var d dto.Metric
	_ = c.Write(&d)
	return uint64(d.GetCounter().GetValue())
}

func byLabel(v *prometheus.CounterVec, label string) map[string]uint64 {
	out := map[string]uint64{}
	ch := make(chan prometheus.Metric)
	go func() { v.Collect(ch); close(ch) }()
	for pm := range ch {
		var d dto.Metric
		_ = pm.Write(&d)
		for _, lp := range d.GetLabel() {
			if lp.GetName() == label {
				out[lp.GetValue()] = uint64(d.GetCounter().GetValue())
			}
		}
	}
	return out
}

// Stats gives the queue's state at scrape time.
type Stats interface {
	Stats() queue.Stats
}

// priorityNames label the queue's levels as Falco names them.
var priorityNames = [queue.Levels]string{"Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"}

// queueCollector reads the queue's counters and gauges when scraped, so
// the queue keeps its own bookkeeping and knows nothing of Prometheus.
type queueCollector struct {
	q                                       Stats
	dropped, events, bytes, inFlight, spool *prometheus.Desc
}

func newQueueCollector(q Stats) *queueCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	}
	return &queueCollector{
		q:        q,
		dropped:  desc("events_dropped_total", "Events dropped, by reason and Falco priority.", "reason", "priority"),
		events:   desc("buffer_events", "Events held in the buffer, in flight included."),
		bytes:    desc("buffer_bytes", "Bytes held in the buffer, in flight included."),
		inFlight: desc("buffer_in_flight_events", "Events being sent."),
		spool:    desc("spool_errors_total", "Events kept in memory because writing them to the spool failed."),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.dropped, c.events, c.bytes, c.inFlight, c.spool} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	qs := c.q.Stats()
	for reason, byPrio := range qs.Drops {
		for p, n := range byPrio {
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n), reason, priorityNames[p])
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(qs.Events))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(qs.Bytes))
	ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(qs.InFlight))
	ch <- prometheus.MustNewConstMetric(c.spool, prometheus.CounterValue, float64(qs.SpoolErrors))
}

// gatherer is the sensor's metrics and the queue's, as one scrape.
func (m *Metrics) gatherer(q Stats) prometheus.Gatherer {
	qr := prometheus.NewRegistry()
	qr.MustRegister(newQueueCollector(q))
	return prometheus.Gatherers{m.reg, qr}
}

// Write writes every metric in the Prometheus text format (version 0.0.4).
func (m *Metrics) Write(w io.Writer, q Stats) error {
	mfs, err := m.gatherer(q).Gather()
	if err != nil {
		return fmt.Errorf("gather metrics: %w", err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("write metrics: %w", err)
		}
	}
	return nil
}

// Handler serves /healthz and /metrics.
func Handler(m *Metrics, q Stats) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		qs := q.Stats()
		w.Header().Set("Content-Type", "application/json")
		last := ""
		if ns := m.lastSent.Load(); ns != 0 {
			last = time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
		}
		fmt.Fprintf(w, "{\"status\":\"ok\",\"bufferedEvents\":%d,\"lastSent\":%q}\n", qs.Events, last)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.gatherer(q), promhttp.HandlerOpts{}))
	return mux
}

// Serve serves h on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	return serve.Until(ctx, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln)
}
