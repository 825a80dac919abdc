// Package ops serves palisade-agent's operational endpoints: /healthz
// (ready once the cache has synced) and /metrics in the Prometheus text
// exposition format (version 0.0.4).
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
	"strings"
	"sync/atomic"
	"time"

	"github.com/palisade-sec/palisade/agent/internal/sender"
	"github.com/palisade-sec/palisade/shared/ehsink/queue"
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
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = write(w, sent, state())
	})
	return mux
}

func write(w io.Writer, sent *Sent, st State) error {
	var b strings.Builder
	metric := func(name, typ, help string, v any) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, v)
	}
	b2i := map[bool]int{false: 0, true: 1}
	metric("palisade_agent_leader", "gauge", "1 when this instance is the leader that sends the inventory.", b2i[st.Leader])
	metric("palisade_agent_cache_synced", "gauge", "1 once every informer has listed its kind.", b2i[st.Synced])
	fmt.Fprintf(&b, "# HELP palisade_agent_cached_objects Objects in the cache, by kind.\n# TYPE palisade_agent_cached_objects gauge\n")
	for _, k := range slices.Sorted(maps.Keys(st.Objects)) {
		fmt.Fprintf(&b, "palisade_agent_cached_objects{kind=%q} %d\n", k, st.Objects[k])
	}
	s := st.Sender
	metric("palisade_agent_generation", "gauge", "Generation of the last snapshot sent.", s.Generation)
	metric("palisade_agent_snapshots_total", "counter", "Full snapshots queued.", s.Snapshots)
	metric("palisade_agent_snapshot_parts_total", "counter", "Snapshot parts queued.", s.SnapshotParts)
	metric("palisade_agent_snapshot_bytes", "gauge", "Compressed size of the last snapshot.", s.SnapshotBytes)
	metric("palisade_agent_snapshot_seconds", "gauge", "Time the last snapshot took to encode.", s.LastSnapshot.Seconds())
	metric("palisade_agent_changes_total", "counter", "Changes messages queued.", s.Changes)
	metric("palisade_agent_changed_objects_total", "counter", "Changed or deleted objects sent.", s.ChangedObjects)
	metric("palisade_agent_heartbeats_total", "counter", "Heartbeats queued.", s.Heartbeats)
	metric("palisade_agent_remediation_reports_total", "counter", "Remediation reports queued.", s.Reports)
	metric("palisade_agent_objects_not_sent_total", "counter", "Objects too large for a message (listed as skipped in snapshots).", s.Skipped+s.Refused)
	metric("palisade_agent_messages_sent_total", "counter", "Messages Event Hubs accepted.", sent.messages.Load())
	metric("palisade_agent_sent_bytes_total", "counter", "Bytes of messages Event Hubs accepted.", sent.bytes.Load())
	metric("palisade_agent_batches_sent_total", "counter", "Batches Event Hubs accepted.", sent.batches.Load())
	metric("palisade_agent_send_errors_total", "counter", "Failed attempts to send a batch (each retried).", sent.errors.Load())
	var dropped uint64
	for _, byPrio := range st.Queue.Drops {
		for _, n := range byPrio {
			dropped += n
		}
	}
	metric("palisade_agent_messages_dropped_total", "counter", "Messages the full send queue dropped (a new snapshot follows).", dropped)
	metric("palisade_agent_queue_messages", "gauge", "Messages waiting to be sent, in flight included.", st.Queue.Events)
	metric("palisade_agent_queue_bytes", "gauge", "Bytes waiting to be sent.", st.Queue.Bytes)
	_, err := io.WriteString(w, b.String())
	return err
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
