package ops

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/ehsink/queue"
)

type fixedStats queue.Stats

func (f fixedStats) Stats() queue.Stats { return queue.Stats(f) }

func TestMetricsExposition(t *testing.T) {
	m := NewMetrics()
	m.Received("http")
	m.Received("http")
	m.Received("grpc")
	m.Invalid("http")
	m.Sent(3, 300, 20*time.Millisecond)
	m.Sent(2, 200, 3*time.Second)
	m.SendFailed(nil)
	q := fixedStats{Events: 7, Bytes: 700, InFlight: 2, Drops: map[string][queue.Levels]uint64{
		queue.ReasonBufferFull: {7: 4, 5: 1},
	}}
	srv := httptest.NewServer(Handler(m, q))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{
		`palisade_sensor_events_received_total{input="grpc"} 1`,
		`palisade_sensor_events_received_total{input="http"} 2`,
		`palisade_sensor_events_invalid_total{input="http"} 1`,
		`palisade_sensor_events_sent_total 5`,
		`palisade_sensor_sent_bytes_total 500`,
		`palisade_sensor_batches_sent_total 2`,
		`palisade_sensor_send_errors_total 1`,
		`palisade_sensor_events_dropped_total{reason="buffer_full",priority="Notice"} 1`,
		`palisade_sensor_events_dropped_total{reason="buffer_full",priority="Debug"} 4`,
		`palisade_sensor_buffer_events 7`,
		`palisade_sensor_buffer_in_flight_events 2`,
		`palisade_sensor_send_latency_seconds_bucket{le="0.01"} 0`,
		`palisade_sensor_send_latency_seconds_bucket{le="0.025"} 1`,
		`palisade_sensor_send_latency_seconds_bucket{le="2.5"} 1`,
		`palisade_sensor_send_latency_seconds_bucket{le="5"} 2`,
		`palisade_sensor_send_latency_seconds_bucket{le="+Inf"} 2`,
		`palisade_sensor_send_latency_seconds_count 2`,
		`# TYPE palisade_sensor_send_latency_seconds histogram`,
	} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("missing %q in:\n%s", line, body)
		}
	}
	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"bufferedEvents":7`) {
		t.Errorf("healthz %d %s", resp.StatusCode, body)
	}
}
