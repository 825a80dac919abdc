package ops

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/palisade-sec/palisade/sensor/queue"
)

type fixedStats queue.Stats

func (f fixedStats) Stats() queue.Stats { return queue.Stats(f) }

// parse reads a text exposition the way Prometheus does; it fails on
// malformed lines, bad escapes, and HELP or TYPE given twice.
func parse(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, body)
	}
	return mfs
}

// samples flattens families into `name{label="value",...}` → value, labels
// sorted by name, histograms expanded into their _bucket, _sum and _count
// series as the text format writes them.
func samples(mfs map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	key := func(name string, labels map[string]string) string {
		if len(labels) == 0 {
			return name
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(labels)) {
			parts = append(parts, k+"="+strconv.Quote(labels[k]))
		}
		return name + "{" + strings.Join(parts, ",") + "}"
	}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key(name, labels)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key(name, labels)] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					out[key(name+"_bucket", map[string]string{"le": strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)})] = float64(b.GetCumulativeCount())
				}
				out[key(name+"_bucket", map[string]string{"le": "+Inf"})] = float64(h.GetSampleCount())
				out[key(name+"_sum", nil)] = h.GetSampleSum()
				out[key(name+"_count", nil)] = float64(h.GetSampleCount())
			default:
				out[key(name, labels)] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

func get(t *testing.T, url string) ([]byte, *http.Response) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return body, resp
}

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
	body, resp := get(t, srv.URL+"/metrics")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	mfs := parse(t, body)
	got := samples(mfs)
	for k, want := range map[string]float64{
		`palisade_sensor_events_received_total{input="grpc"}`:                          1,
		`palisade_sensor_events_received_total{input="http"}`:                          2,
		`palisade_sensor_events_invalid_total{input="http"}`:                           1,
		`palisade_sensor_events_sent_total`:                                            5,
		`palisade_sensor_sent_bytes_total`:                                             500,
		`palisade_sensor_batches_sent_total`:                                           2,
		`palisade_sensor_send_errors_total`:                                            1,
		`palisade_sensor_events_dropped_total{priority="Notice",reason="buffer_full"}`: 1,
		`palisade_sensor_events_dropped_total{priority="Debug",reason="buffer_full"}`:  4,
		`palisade_sensor_buffer_events`:                                                7,
		`palisade_sensor_buffer_in_flight_events`:                                      2,
		`palisade_sensor_send_latency_seconds_bucket{le="0.01"}`:                       0,
		`palisade_sensor_send_latency_seconds_bucket{le="0.025"}`:                      1,
		`palisade_sensor_send_latency_seconds_bucket{le="2.5"}`:                        1,
		`palisade_sensor_send_latency_seconds_bucket{le="5"}`:                          2,
		`palisade_sensor_send_latency_seconds_bucket{le="+Inf"}`:                       2,
		`palisade_sensor_send_latency_seconds_count`:                                   2,
	} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	if typ := mfs["palisade_sensor_send_latency_seconds"].GetType(); typ != dto.MetricType_HISTOGRAM {
		t.Errorf("send_latency_seconds has TYPE %v, want histogram", typ)
	}
	// Every family says what it is and what it means.
	wantTypes := map[string]dto.MetricType{
		"palisade_sensor_events_received_total": dto.MetricType_COUNTER, "palisade_sensor_events_invalid_total": dto.MetricType_COUNTER,
		"palisade_sensor_events_sent_total": dto.MetricType_COUNTER, "palisade_sensor_sent_bytes_total": dto.MetricType_COUNTER,
		"palisade_sensor_batches_sent_total": dto.MetricType_COUNTER, "palisade_sensor_send_errors_total": dto.MetricType_COUNTER,
		"palisade_sensor_events_dropped_total": dto.MetricType_COUNTER, "palisade_sensor_buffer_events": dto.MetricType_GAUGE,
		"palisade_sensor_buffer_bytes": dto.MetricType_GAUGE, "palisade_sensor_buffer_in_flight_events": dto.MetricType_GAUGE,
		"palisade_sensor_spool_errors_total": dto.MetricType_COUNTER, "palisade_sensor_send_latency_seconds": dto.MetricType_HISTOGRAM,
	}
	for name, typ := range wantTypes {
		mf, ok := mfs[name]
		if !ok {
			t.Errorf("family %s missing", name)
			continue
		}
		if mf.GetType() != typ || mf.GetHelp() == "" {
			t.Errorf("%s: TYPE %v HELP %q, want TYPE %v and a HELP text", name, mf.GetType(), mf.GetHelp(), typ)
		}
	}

	body, resp = get(t, srv.URL+"/healthz")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"bufferedEvents":7`) {
		t.Errorf("healthz %d %s", resp.StatusCode, body)
	}
}

// TestLabelValuesEscaped: label values come from outside (input names,
// drop reasons); whatever they hold, the exposition must parse and give
// them back unchanged.
func TestLabelValuesEscaped(t *testing.T) {
	odd := []string{"quote\"d", `back\slash`, "new\nline", "tab\there", "ünï", "\x01ctl"}
	m := NewMetrics()
	q := fixedStats{Drops: map[string][queue.Levels]uint64{}}
	for i, v := range odd {
		for range i + 1 {
			m.Received(v)
		}
		q.Drops[v] = [queue.Levels]uint64{2: uint64(i + 1)}
	}
	var buf bytes.Buffer
	if err := m.Write(&buf, q); err != nil {
		t.Fatal(err)
	}
	got := samples(parse(t, buf.Bytes()))
	for i, v := range odd {
		for _, k := range []string{
			`palisade_sensor_events_received_total{input=` + strconv.Quote(v) + `}`,
			`palisade_sensor_events_dropped_total{priority="Critical",reason=` + strconv.Quote(v) + `}`,
		} {
			if got[k] != float64(i+1) {
				t.Errorf("%s = %v, want %d", k, got[k], i+1)
			}
		}
	}
	if s := m.Snapshot(); s.Received["new\nline"] != 3 {
		t.Errorf("snapshot %v", s.Received)
	}
}

// TestMetricsRegistryIsPrivate: two sensors in one process (as in tests)
// keep their own counts and never touch the process-wide registry.
func TestMetricsRegistryIsPrivate(t *testing.T) {
	a, b := NewMetrics(), NewMetrics()
	a.Sent(1, 10, time.Millisecond)
	if s := b.Snapshot(); s.Sent != 0 || !s.LastSent.IsZero() {
		t.Errorf("second Metrics saw the first's counts: %+v", s)
	}
	if s := a.Snapshot(); s.Sent != 1 || s.SentBytes != 10 || s.Batches != 1 || s.LastSent.IsZero() {
		t.Errorf("snapshot %+v", s)
	}
}
