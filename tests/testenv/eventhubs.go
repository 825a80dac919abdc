package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
)

// EventHubs is the AMQP 1.0 stand-in for Event Hubs (tests/servers/eventhubs.js)
// started for one test.
type EventHubs struct {
	Port, ControlPort int
	Hub               string
	Proc              *Process
}

// ReceivedEvent is one event the stand-in accepted: Body is its body as
// text, BodyBytes as sent (binary bodies, such as compressed ones).
type ReceivedEvent struct {
	ID           string `json:"id"`
	PartitionKey string `json:"partitionKey"`
	Body         string `json:"body"`
	BodyBytes    []byte `json:"bodyBase64"`
}

// StartEventHubs starts the stand-in with node; env adds settings such as
// MAX_MESSAGE_SIZE=....
func StartEventHubs(t testing.TB, env ...string) *EventHubs {
	t.Helper()
	NodeModules(t)
	e := &EventHubs{Port: FreePort(t), ControlPort: FreePort(t), Hub: "runtime"}
	env = append([]string{"PORT=" + strconv.Itoa(e.Port), "CONTROL_PORT=" + strconv.Itoa(e.ControlPort)}, env...)
	e.Proc = Start(t, DialReady(fmt.Sprintf("127.0.0.1:%d", e.Port)), env,
		"node", filepath.Join(Root(t), "tests", "servers", "eventhubs.js"))
	return e
}

// ConnectionString is what the azeventhubs client needs for the stand-in.
func (e *EventHubs) ConnectionString() string {
	return fmt.Sprintf("Endpoint=sb://127.0.0.1:%d;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true;EntityPath=%s", e.Port, e.Hub)
}

func (e *EventHubs) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", e.ControlPort, path)
}

// Events returns every event accepted so far, in arrival order.
func (e *EventHubs) Events(t testing.TB) []ReceivedEvent {
	t.Helper()
	var out []ReceivedEvent
	e.get(t, "/events", &out)
	return out
}

// Stats returns the stand-in's counters (batches, rejected, detached, ...).
func (e *EventHubs) Stats(t testing.TB) map[string]any {
	t.Helper()
	var out map[string]any
	e.get(t, "/stats", &out)
	return out
}

// Control posts to the control port: "/down", "/up", "/reset",
// "/fault?busy=N", "/fault?detach=N", "/fault?lateDetach=N".
func (e *EventHubs) Control(t testing.TB, path string) {
	t.Helper()
	resp, err := http.Post(e.url(path), "text/plain", nil)
	if err != nil {
		t.Fatalf("eventhubs stand-in %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("eventhubs stand-in %s: %s %s", path, resp.Status, b)
	}
}

func (e *EventHubs) get(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(e.url(path))
	if err != nil {
		t.Fatalf("eventhubs stand-in %s: %v", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("eventhubs stand-in %s: %v", path, err)
	}
}
