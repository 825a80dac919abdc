// Package ops serves palisade-agent's operational endpoints: /healthz
// (ready once the cache has synced) and /metrics in the Prometheus
// exposition formats (client_golang, on a registry of the agent's own, as
// the sensor's).
package ops

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/palisade-sec/palisade/agent/internal/sender"
	"github.com/palisade-sec/palisade/shared/ehsink/queue"
	"github.com/palisade-sec/palisade/shared/serve"
)

// Sent counts what Event Hubs accepted; it is the sink's Observer.
type Sent struct {
	messages, bytes, batches, errors atomic.Uint64
}

// Sent implements ehsink.Observer.
func (s *Sent) Sent(messages, bytes int, _ time.Duration) {
	s.messages.Add(uint64(messages))
	s.bytes.Add(uint64(bytes))
	s.batches.Add(1)
}

// SendFailed implements ehsink.Observer.
func (s *Sent) SendFailed(error) { s.errors.Add(1) }

// State is what the endpoints report, read at each request.
type State struct {
	Synced  bool
	Leader  bool
	Sender  sender.Stats
	Queue   queue.Stats
	Objects map[string]int // cached objects by kind
}

// Handler serves /healthz and /metrics from state().
func Handler(sent *Sent, state func() State) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		st := state()
		w.Header().Set("Content-Type", "application/json")
		if !st.Synced {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, `{"status":"syncing"}`)
			return
		}
		fmt.Fprintf(w, "{\"status\":\"ok\",\"leader\":%t,\"generation\":%d,\"queued\":%d}\n", st.Leader, st.Sender.Generation, st.Queue.Events)
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{sent: sent, state: state})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// metric describes one metric of the agent.
type metric struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

func newMetric(name string, typ prometheus.ValueType, help string, labels ...string) metric {
	return metric{prometheus.NewDesc(prometheus.BuildFQName("palisade_agent", "", name), help, labels, nil), typ}
}

// The agent's metrics. Their values are read from State and Sent at each
// scrape, so the cache, sender and queue keep their own bookkeeping and
// know nothing of Prometheus.
var (
	mLeader         = newMetric("leader", prometheus.GaugeValue, "1 when this instance is the leader that sends the inventory.")
	mSynced         = newMetric("cache_synced", prometheus.GaugeValue, "1 once every informer has listed its kind.")
	mCached         = newMetric("cached_objects", prometheus.GaugeValue, "Objects in the cache, by kind.", "kind")
	mGeneration     = newMetric("generation", prometheus.GaugeValue, "Generation of the last snapshot sent.")
	mSnapshots      = newMetric("snapshots_total", prometheus.CounterValue, "Full snapshots queued.")
	mSnapshotParts  = newMetric("snapshot_parts_total", prometheus.CounterValue, "Snapshot parts queued.")
	mSnapshotBytes  = newMetric("snapshot_bytes", prometheus.GaugeValue, "Compressed size of the last snapshot.")
	mSnapshotSecs   = newMetric("snapshot_seconds", prometheus.GaugeValue, "Time the last snapshot took to encode.")
	mChanges        = newMetric("changes_total", prometheus.CounterValue, "Changes messages queued.")
	mChangedObjects = newMetric("changed_objects_total", prometheus.CounterValue, "Changed or deleted objects sent.")
	mHeartbeats     = newMetric("heartbeats_total", prometheus.CounterValue, "Heartbeats queued.")
	mReports        = newMetric("remediation_reports_total", prometheus.CounterValue, "Remediation reports queued.")
	mNotSent        = newMetric("objects_not_sent_total", prometheus.CounterValue, "Objects too large for a message (listed as skipped in snapshots).")
	mMessages       = newMetric("messages_sent_total", prometheus.CounterValue, "Messages Event Hubs accepted.")
	mBytes          = newMetric("sent_bytes_total", prometheus.CounterValue, "Bytes of messages Event Hubs accepted.")
	mBatches        = newMetric("batches_sent_total", prometheus.CounterValue, "Batches Event Hubs accepted.")
	mSendErrors     = newMetric("send_errors_total", prometheus.CounterValue, "Failed attempts to send a batch (each retried).")
	mDropped        = newMetric("messages_dropped_total", prometheus.CounterValue, "Messages the full send queue dropped (a new snapshot follows).")
	mQueued         = newMetric("queue_messages", prometheus.GaugeValue, "Messages waiting to be sent, in flight included.")
	mQueuedBytes    = newMetric("queue_bytes", prometheus.GaugeValue, "Bytes waiting to be sent.")
)

var allMetrics = []metric{mLeader, mSynced, mCached, mGeneration, mSnapshots, mSnapshotParts, mSnapshotBytes, mSnapshotSecs,
	mChanges, mChangedObjects, mHeartbeats, mReports, mNotSent, mMessages, mBytes, mBatches, mSendErrors, mDropped, mQueued, mQueuedBytes}

// collector is a prometheus.Collector over State and Sent.
type collector struct {
	sent  *Sent
	state func() State
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range allMetrics {
		ch <- m.desc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.state()
	emit := func(m metric, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, v, labels...)
	}
	b2f := map[bool]float64{false: 0, true: 1}
	emit(mLeader, b2f[st.Leader])
	emit(mSynced, b2f[st.Synced])
	for k, n := range st.Objects {
		emit(mCached, float64(n), k)
	}
	s := st.Sender
	emit(mGeneration, float64(s.Generation))
	emit(mSnapshots, float64(s.Snapshots))
	emit(mSnapshotParts, float64(s.SnapshotParts))
	emit(mSnapshotBytes, float64(s.SnapshotBytes))
	emit(mSnapshotSecs, s.LastSnapshot.Seconds())
	emit(mChanges, float64(s.Changes))
	emit(mChangedObjects, float64(s.ChangedObjects))
	emit(mHeartbeats, float64(s.Heartbeats))
	emit(mReports, float64(s.Reports))
	emit(mNotSent, float64(s.Skipped+s.Refused))
	emit(mMessages, float64(c.sent.messages.Load()))
	emit(mBytes, float64(c.sent.bytes.Load()))
	emit(mBatches, float64(c.sent.batches.Load()))
	emit(mSendErrors, float64(c.sent.errors.Load()))
	var dropped uint64
	for _, byPrio := range st.Queue.Drops {
		for _, n := range byPrio {
			dropped += n
		}
	}
	emit(mDropped, float64(dropped))
	emit(mQueued, float64(st.Queue.Events))
	emit(mQueuedBytes, float64(st.Queue.Bytes))
}

// Serve serves h on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	return serve.Until(ctx, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln)
}
