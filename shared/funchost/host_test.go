package funchost

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/customhandler"
)

const testHostJSON = `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"palisade"},"enableForwardingHttpRequest":true}}`

var testFunctions = map[string]string{
	"scan":  `{"bindings":[{"type":"eventGridTrigger","direction":"in","name":"event"}]}`,
	"audit": `{"bindings":[{"type":"eventHubTrigger","direction":"in","name":"events","eventHubName":"audit","cardinality":"many","dataType":"string","connection":"HUB"}],"retry":{"strategy":"fixedDelay","maxRetryCount":2,"delayInterval":"00:00:01"}}`,
	"once":  `{"bindings":[{"type":"eventHubTrigger","direction":"in","name":"events","eventHubName":"rt","cardinality":"many","dataType":"string","connection":"HUB"}]}`,
	"tick":  `{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"%TICK_SCHEDULE%"}]}`,
	"api":   `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","authLevel":"function","route":"{*path}","methods":["get"]},{"type":"http","direction":"out","name":"res"}]}`,
	"form":  `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","authLevel":"function","route":"forms/{*rest}","methods":["post"]},{"type":"http","direction":"out","name":"res"}]}`,
}

func writeApp(t *testing.T, hostJSON string, funcs map[string]string) *App {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "host.json"), []byte(hostJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, fj := range funcs {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "function.json"), []byte(fj), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	app, err := LoadApp(dir)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// recorder is a handler that records what each function received.
type recorder struct {
	mu       sync.Mutex
	events   []string
	batches  [][]string
	retries  []customhandler.RetryContext
	read     []customhandler.EventHubBatch
	timers   []customhandler.TimerInfo
	failNext atomic.Int32
}

// timerInfos returns a copy of the timer invocations recorded so far.
func (rc *recorder) timerInfos() []customhandler.TimerInfo {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.timers)
}

func (rc *recorder) server() *customhandler.Server {
	s := customhandler.NewServer(zerolog.Nop())
	fail := func() error {
		if rc.failNext.Add(-1) >= 0 {
			return errors.New("injected failure")
		}
		return nil
	}
	s.Handle("scan", func(_ context.Context, r *customhandler.Request) (*customhandler.Response, error) {
		var ev struct{ ID string }
		if err := r.DataJSON("event", &ev); err != nil {
			return nil, err
		}
		rc.mu.Lock()
		rc.events = append(rc.events, ev.ID)
		rc.mu.Unlock()
		return nil, fail()
	})
	batch := func(_ context.Context, r *customhandler.Request) (*customhandler.Response, error) {
		items, err := r.DataStrings("events")
		if err != nil {
			return nil, err
		}
		retry, _ := r.Retry()
		where, _ := r.EventHubBatch()
		rc.mu.Lock()
		rc.batches = append(rc.batches, items)
		rc.retries = append(rc.retries, retry)
		rc.read = append(rc.read, where)
		rc.mu.Unlock()
		return nil, fail()
	}
	s.Handle("audit", batch)
	s.Handle("once", batch)
	s.Handle("tick", func(_ context.Context, r *customhandler.Request) (*customhandler.Response, error) {
		var ti customhandler.TimerInfo
		if err := r.DataJSON("timer", &ti); err != nil {
			return nil, err
		}
		rc.mu.Lock()
		rc.timers = append(rc.timers, ti)
		rc.mu.Unlock()
		return nil, nil
	})
	s.HandleHTTP("/api/", "api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		customhandler.WriteJSON(w, http.StatusTeapot, map[string]string{"path": r.URL.Path, "query": r.URL.RawQuery, "invocation": r.Header.Get(customhandler.HeaderInvocationID)})
	}))
	return s
}

func startHost(t *testing.T, hostJSON string) (*Host, *recorder, *httptest.Server) {
	t.Helper()
	rc := &recorder{}
	handler := httptest.NewServer(rc.server())
	t.Cleanup(handler.Close)
	h := Attach(writeApp(t, hostJSON, testFunctions), handler.URL, zerolog.Nop())
	h.RetryScale = 0.001
	if err := h.WaitReady(t.Context(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(h.ServeMux())
	t.Cleanup(front.Close)
	return h, rc, front
}

func post(t *testing.T, url, eventType, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if eventType != "" {
		req.Header.Set("aeg-event-type", eventType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEventGridWebhook(t *testing.T) {
	_, rc, front := startHost(t, testHostJSON)
	hook := front.URL + "/runtime/webhooks/eventgrid?functionName=scan"

	t.Run("validation handshake, event grid schema", func(t *testing.T) {
		code, body := post(t, hook, "SubscriptionValidation", `[{"id":"1","eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"validationCode":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}]`)
		if code != 200 || body != `{"validationResponse":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}` {
			t.Errorf("got %d %s", code, body)
		}
	})
	t.Run("validation handshake, cloud event with data encoded as a string", func(t *testing.T) {
		code, body := post(t, hook, "SubscriptionValidation", `{"id":"1","specversion":"1.0","type":"Microsoft.EventGrid.SubscriptionValidationEvent","data":"{\"validationCode\":\"abc\"}"}`)
		if code != 200 || body != `{"validationResponse":"abc"}` {
			t.Errorf("got %d %s", code, body)
		}
	})
	t.Run("handshake does not invoke the function", func(t *testing.T) {
		if len(rc.events) != 0 {
			t.Errorf("function invoked during the handshake: %v", rc.events)
		}
	})
	t.Run("notification: one invocation per event", func(t *testing.T) {
		code, _ := post(t, hook, "Notification", `[{"id":"a","data":{}},{"id":"b","data":{}}]`)
		if code != http.StatusAccepted {
			t.Fatalf("status %d, want 202", code)
		}
		rc.mu.Lock()
		got := append([]string(nil), rc.events...)
		rc.mu.Unlock()
		if diff := cmp.Diff([]string{"a", "b"}, sortStrings(got)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
	t.Run("a failed event fails the whole delivery", func(t *testing.T) {
		rc.failNext.Store(1)
		code, _ := post(t, hook, "Notification", `{"id":"c","specversion":"1.0","data":{}}`)
		if code != http.StatusInternalServerError {
			t.Errorf("status %d, want 500", code)
		}
	})
	t.Run("unknown event type header", func(t *testing.T) {
		if code, _ := post(t, hook, "", `[]`); code != http.StatusBadRequest {
			t.Errorf("status %d, want 400", code)
		}
	})
}

func TestPublishEventGridRedeliversWholeBatch(t *testing.T) {
	h, rc, _ := startHost(t, testHostJSON)
	rc.failNext.Store(1)
	batch := []json.RawMessage{json.RawMessage(`{"id":"x","data":{}}`), json.RawMessage(`{"id":"y","data":{}}`)}
	if err := h.PublishEventGrid(t.Context(), "scan", batch, 3); err != nil {
		t.Fatal(err)
	}
	// One event failed on the first delivery: both are delivered again.
	if diff := cmp.Diff([]string{"x", "x", "y", "y"}, sortStrings(rc.events)); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

func TestEventGridStringForm(t *testing.T) {
	h, rc, _ := startHost(t, testHostJSON)
	if err := h.DeliverEventGrid(t.Context(), "scan", []json.RawMessage{json.RawMessage(`{"id":"s1","eventTime":"2018-04-25T21:39:47Z","data":{"x":1}}`)}, true); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"s1"}, rc.events); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEventHubsRetryThenCheckpoint(t *testing.T) {
	h, rc, _ := startHost(t, testHostJSON)
	events := []EventHubEvent{{Body: []byte(`{"records":[]}`), SequenceNumber: 41}, {Body: []byte("not json at all"), SequenceNumber: 42}}
	pc := PartitionContext{EventHubName: "audit", ConsumerGroup: "$Default", PartitionID: "0"}

	rc.failNext.Store(1)
	attempts, err := h.DeliverEventHubs(t.Context(), "audit", pc, events)
	if err != nil || attempts != 2 {
		t.Fatalf("attempts=%d err=%v, want a success on the second attempt", attempts, err)
	}
	if diff := cmp.Diff([]int{0, 1}, []int{rc.retries[0].RetryCount, rc.retries[1].RetryCount}); diff != "" {
		t.Errorf("RetryCount (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{`{"records":[]}`, "not json at all"}, rc.batches[1]); diff != "" {
		t.Errorf("batch (-want +got):\n%s", diff)
	}

	rc.failNext.Store(10)
	attempts, err = h.DeliverEventHubs(t.Context(), "audit", pc, events)
	if !errors.Is(err, ErrInvocation) || attempts != 3 {
		t.Errorf("attempts=%d err=%v, want 3 attempts (1 + maxRetryCount 2) then failure", attempts, err)
	}

	rc.failNext.Store(10)
	attempts, _ = h.DeliverEventHubs(t.Context(), "once", pc, events)
	if attempts != 1 {
		t.Errorf("without a retry policy: %d attempts, want 1", attempts)
	}
}

// TestRunNowNumbersEvents: events run through the admin API are numbered
// in order and stamped, as a partition's events are, so that detection
// does not take the second for a redelivery of the first.
func TestRunNowNumbersEvents(t *testing.T) {
	_, rc, front := startHost(t, testHostJSON)
	for range 2 {
		if code, body := post(t, front.URL+"/admin/functions/audit", "", `{"input":"{\"records\":[]}"}`); code != http.StatusAccepted {
			t.Fatalf("admin run: %d %s", code, body)
		}
	}
	if len(rc.read) != 2 || len(rc.read[0].Sequence) != 1 || len(rc.read[1].Sequence) != 1 {
		t.Fatalf("batches read %+v", rc.read)
	}
	first, second := rc.read[0], rc.read[1]
	if second.Sequence[0] <= first.Sequence[0] || first.Source() != second.Source() || first.Enqueued == nil || first.Enqueued[0].IsZero() {
		t.Errorf("two runs: %+v then %+v; want one partition, increasing sequence numbers and enqueued times", first, second)
	}
}

func TestTimer(t *testing.T) {
	h, rc, front := startHost(t, testHostJSON)
	if err := h.FireTimer(t.Context(), "tick"); err != nil {
		t.Fatal(err)
	}
	if code, body := post(t, front.URL+"/admin/functions/tick", "", `{"input":""}`); code != http.StatusAccepted {
		t.Errorf("admin run: %d %s", code, body)
	}
	if timers := rc.timerInfos(); len(timers) != 2 || !timers[0].ScheduleStatus.Last.IsZero() || timers[0].ScheduleStatus.Next.IsZero() {
		t.Errorf("timer infos = %+v", timers)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
	defer cancel()
	err := h.RunTimers(ctx, func(string) string { return "* * * * * *" })
	if err != nil {
		t.Fatal(err)
	}
	// A cancelled run's last invocation may still be finishing in the
	// handler, so the count is read under the recorder's lock.
	if n := len(rc.timerInfos()); n < 3 {
		t.Errorf("every-second schedule fired %d times in 2.5 s", n-2)
	}
	if err := h.RunTimers(t.Context(), func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "TICK_SCHEDULE") {
		t.Errorf("unset schedule setting: err = %v", err)
	}
}

func TestHTTPForwarding(t *testing.T) {
	_, _, front := startHost(t, testHostJSON)
	resp, err := http.Get(front.URL + "/api/images/sha256:abc?severity=high")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != http.StatusTeapot || got["path"] != "/api/images/sha256:abc" || got["query"] != "severity=high" || got["invocation"] == "" {
		t.Errorf("forwarded: %d %v", resp.StatusCode, got)
	}
	resp, err = http.Post(front.URL+"/api/images", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST to a GET route: %d", resp.StatusCode)
	}
	// The catch-all GET route of "api", registered first, does not take a
	// POST: the next route whose methods match gets it.
	resp, err = http.Post(front.URL+"/api/forms/login", "application/x-www-form-urlencoded", strings.NewReader("a=b"))
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || got["path"] != "/api/forms/login" {
		t.Errorf("POST to a later function's route: %d %v", resp.StatusCode, got)
	}
}

func TestInvokeResponseRules(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		status                  int
		want                    string
	}{
		{"success", "application/json", `{"Outputs":{},"Logs":["x"],"ReturnValue":1}`, 200, ""},
		{"non-2xx", "application/json", `{"error":"no"}`, 500, "does not indicate success: 500"},
		{"text content type", "text/plain; charset=utf-8", `{"Outputs":{}}`, 200, "not JSON"},
		{"null body", "application/json", `null`, 200, "null"},
		{"empty body", "application/json", ``, 200, "invalid HttpResponseMessage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Azure-Functions-InvocationId") == "" || !strings.HasPrefix(r.UserAgent(), "Azure-Functions-Host/") {
					w.WriteHeader(400)
					return
				}
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			h := Attach(writeApp(t, testHostJSON, testFunctions), srv.URL, zerolog.Nop())
			_, err := h.Invoke(t.Context(), "scan", Payload{Data: map[string]json.RawMessage{}})
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMatchRoute(t *testing.T) {
	tests := []struct {
		route, path string
		want        map[string]string
	}{
		{"{*path}", "images/sha256:1/findings", map[string]string{"path": "images/sha256:1/findings"}},
		{"images/{digest}", "images/sha256:1", map[string]string{"digest": "sha256:1"}},
		{"images/{digest}", "images/sha256:1/findings", nil},
		{"images", "alerts", nil},
	}
	for _, tt := range tests {
		got, ok := matchRoute(tt.route, tt.path)
		if ok != (tt.want != nil) || (ok && !cmp.Equal(tt.want, got)) {
			t.Errorf("matchRoute(%q, %q) = %v, %v; want %v", tt.route, tt.path, got, ok, tt.want)
		}
	}
}

func sortStrings(s []string) []string { return slices.Sorted(slices.Values(s)) }
