// Package scaneventstest is a loopback HTTPS Event Grid topic for tests of
// the functions that publish events: it checks what the azeventgrid client
// sends (path, access key, the Event Grid schema's required fields) and
// keeps the events, and can be told to fail.
package scaneventstest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/palisade-sec/palisade/shared/scanevents"
)

// Key is the topic's access key.
const Key = "topic-key"

// Event is one event the topic received.
type Event struct {
	ID          string          `json:"id"`
	EventType   string          `json:"eventType"`
	Subject     string          `json:"subject"`
	EventTime   string          `json:"eventTime"`
	DataVersion string          `json:"dataVersion"`
	Data        json.RawMessage `json:"data"`
}

// Topic is the loopback topic.
type Topic struct {
	srv *httptest.Server

	mu     sync.Mutex
	status int // answered instead of 200 when set
	events []Event
}

// New starts a topic, stopped when the test ends.
func New(t testing.TB) *Topic {
	t.Helper()
	tp := &Topic{}
	tp.srv = httptest.NewTLSServer(http.HandlerFunc(tp.serve))
	t.Cleanup(tp.srv.Close)
	return tp
}

func (tp *Topic) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/events" {
		http.Error(w, "want POST /api/events", http.StatusNotFound)
		return
	}
	if r.Header.Get("aeg-sas-key") != Key {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var batch []Event
	if err := json.Unmarshal(body, &batch); err != nil {
		http.Error(w, "not an array of events: "+err.Error(), http.StatusBadRequest)
		return
	}
	for _, e := range batch {
		if e.ID == "" || e.EventType == "" || e.Subject == "" || e.EventTime == "" || e.DataVersion == "" || len(e.Data) == 0 {
			http.Error(w, "an event lacks a required field", http.StatusBadRequest)
			return
		}
	}
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.status != 0 {
		http.Error(w, http.StatusText(tp.status), tp.status)
		return
	}
	tp.events = append(tp.events, batch...)
}

// Publisher is a real publisher to the topic, with no retries.
func (tp *Topic) Publisher(t testing.TB) *scanevents.Publisher {
	t.Helper()
	p, err := scanevents.New(tp.srv.URL+"/api/events", Key, nil,
		&azcore.ClientOptions{Transport: tp.srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Fail makes the topic answer status to every request; 0 stops it.
func (tp *Topic) Fail(status int) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.status = status
}

// Events returns the events received so far, in order.
func (tp *Topic) Events() []Event {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]Event(nil), tp.events...)
}

// OfType returns the events of one type received so far.
func (tp *Topic) OfType(eventType string) []Event {
	var out []Event
	for _, e := range tp.Events() {
		if e.EventType == eventType {
			out = append(out, e)
		}
	}
	return out
}
