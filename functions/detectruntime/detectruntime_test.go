package detectruntime

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/falcoevent"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/faultstore"
)

var now = func() time.Time { return time.Date(2026, 7, 10, 21, 0, 0, 0, time.UTC) }

// recorder is a Publisher that records what it is sent and can fail.
type recorder struct {
	mu    sync.Mutex
	sent  []model.Alert
	fails int
}

func (r *recorder) Publish(_ context.Context, alerts []model.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fails > 0 {
		r.fails--
		return errors.New("429 too many requests")
	}
	r.sent = append(r.sent, alerts...)
	return nil
}

// options are the settings' defaults, with short retry delays.
func options(t *testing.T) Options {
	t.Helper()
	return Options{Detection: detection.Options{Window: time.Hour, AlertTTL: 90 * 24 * time.Hour},
		BaselineLearning: 24 * time.Hour, BaselineMaxDestinations: 2000, Retries: 4, RetryDelay: time.Millisecond, Now: now}
}

// envelopes turns the Falco samples into sensor envelopes.
func envelopes(t *testing.T, names ...string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("..", "..", "shared", "detection", "testdata", "falco", n+".json"))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := falcoevent.DecodeJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		falcoevent.Stamp(&ev.Envelope, "aks-prod", "")
		j, err := json.Marshal(ev.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(j))
	}
	return out
}

// hostRequest builds the body the Functions host posts for an
// eventHubTrigger with cardinality many and dataType string: Data.events
// is a string holding a JSON array of strings.
func hostRequest(t *testing.T, events []string) *customhandler.Request {
	t.Helper()
	arr, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{
		"Data": map[string]any{"events": string(arr)},
		"Metadata": map[string]any{
			"PartitionContext":    map[string]any{"EventHubName": "runtime", "ConsumerGroup": "$Default", "PartitionId": "0"},
			"SequenceNumberArray": "[41,42]",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := customhandler.DecodeRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func alertsIn(t *testing.T, st store.Store) map[string]int {
	t.Helper()
	got := map[string]int{}
	err := store.Each(t.Context(), st, store.Alerts, store.Query{}, func(a model.Alert) error {
		got[a.Type] += a.Count
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestCorruptEventAndRedelivery: one corrupt event is parked and the rest
// processed; the same batch again leaves the same alerts and counts.
func TestCorruptEventAndRedelivery(t *testing.T) {
	st := faultstore.Open(t)
	pub := &recorder{}
	f, err := New(st, pub, options(t))
	if err != nil {
		t.Fatal(err)
	}
	events := envelopes(t, "netcat_rce", "drop_execute", "imds")
	events = append(events[:1], append([]string{`{"v":1,"id":"x","cluster":`}, events[1:]...)...)
	req := hostRequest(t, events)
	if _, err := f.Handle(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"ReverseShell": 1, "BinaryDrift": 1, "ImdsAccess": 1}
	first := alertsIn(t, st)
	if len(first) != len(want) {
		t.Fatalf("alerts %v, want %v", first, want)
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("alert %s count %d, want %d", k, first[k], v)
		}
	}
	var parked []model.Parked
	if err := store.Each(t.Context(), st, store.State, store.Query{PartitionKey: model.KindParked}, func(p model.Parked) error {
		parked = append(parked, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || !strings.Contains(parked[0].Reason, "event 1 of 4") || parked[0].Sample != `{"v":1,"id":"x","cluster":` || parked[0].Function != Name {
		t.Fatalf("parked %+v", parked)
	}
	if len(pub.sent) != 3 {
		t.Errorf("published %d alerts, want 3", len(pub.sent))
	}
	if _, err := f.Handle(t.Context(), hostRequest(t, events)); err != nil {
		t.Fatal(err)
	}
	if again := alertsIn(t, st); len(again) != len(first) || again["ReverseShell"] != 1 {
		t.Errorf("after redelivery %v, want %v", again, first)
	}
	var sensors []detection.SensorNode
	if err := detection.EachSensor(t.Context(), st, func(n detection.SensorNode) error {
		sensors = append(sensors, n)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(sensors) == 0 || sensors[0].Cluster != "aks-prod" || sensors[0].LastEvent.IsZero() {
		t.Errorf("sensor records %+v, want the nodes' last events", sensors)
	}
	// One parked record, the IMDS workload's baseline, one sensor record per node.
	if n := st.Len(t, store.State); n != 2+len(sensors) {
		t.Errorf("%d state items after redelivery, want %d", n, 2+len(sensors))
	}
	ids := map[string]bool{}
	for _, a := range pub.sent {
		ids[a.ID] = true
	}
	if len(ids) != 3 {
		t.Errorf("published ids %v: want the same 3 alerts re-sent", ids)
	}
}

// TestFailures: a Sentinel failure is retried inside the call; a store that
// keeps failing fails the invocation (so the retry policy applies).
func TestFailures(t *testing.T) {
	st := faultstore.Open(t)
	pub := &recorder{fails: 2}
	f, err := New(st, pub, options(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Handle(t.Context(), hostRequest(t, envelopes(t, "nmap"))); err != nil {
		t.Fatalf("transient Sentinel failures: %v", err)
	}
	if len(pub.sent) != 1 {
		t.Errorf("published %d alerts, want 1", len(pub.sent))
	}
	st.SetFail(func(op string, c store.Container) error {
		if op == "put" && c == store.Alerts {
			return errors.New("connection reset")
		}
		return nil
	})
	if _, err := f.Handle(t.Context(), hostRequest(t, envelopes(t, "kmod"))); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("store down: err %v, want the store error", err)
	}
	bad, err := customhandler.DecodeRequest([]byte(`{"Data":{"events":"not an array"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Handle(t.Context(), bad); !errors.Is(err, customhandler.ErrBadRequest) {
		t.Errorf("undecodable Data.events: err %v, want a bad request", err)
	}
}

func TestFunctionJSON(t *testing.T) {
	b, err := os.ReadFile("function.json")
	if err != nil {
		t.Fatal(err)
	}
	var fj struct {
		Bindings []map[string]string `json:"bindings"`
		Retry    map[string]any      `json:"retry"`
	}
	if err := json.Unmarshal(b, &fj); err != nil {
		t.Fatal(err)
	}
	if len(fj.Bindings) != 1 {
		t.Fatalf("%d bindings", len(fj.Bindings))
	}
	bd := fj.Bindings[0]
	got := []string{bd["type"], bd["name"], bd["cardinality"], bd["dataType"], bd["connection"]}
	want := []string{"eventHubTrigger", "events", "many", "string", "PALISADE_EVENTHUB_CONNECTION"}
	sort.Strings(got)
	sort.Strings(want)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("binding %v, want %v", got, want)
			break
		}
	}
	if fj.Retry["strategy"] == nil {
		t.Error("function.json has no retry policy")
	}
}
