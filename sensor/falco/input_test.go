package falco

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/falcosecurity/client-go/pkg/api/outputs"
	"github.com/falcosecurity/client-go/pkg/api/schema"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/palisade-sec/palisade/sensor/falco/falcotest"
	"github.com/palisade-sec/palisade/shared/falcoevent"
)

// collector is a Receiver that keeps what it gets.
type collector struct {
	mu      sync.Mutex
	rules   []string
	inputs  map[string]int
	invalid map[string]int
}

func newCollector() *collector {
	return &collector{inputs: map[string]int{}, invalid: map[string]int{}}
}

func (c *collector) Receive(ev falcoevent.Event, input string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rules = append(c.rules, ev.Envelope.Rule)
	c.inputs[input]++
}

func (c *collector) Invalid(input string, _ error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invalid[input]++
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rules)
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func response(i int) *outputs.Response {
	return &outputs.Response{
		Time: timestamppb.New(time.Unix(1783714373, int64(i))), Priority: schema.Priority_WARNING,
		Rule: fmt.Sprintf("rule-%d", i), Output: "out", Hostname: "node-1",
		OutputFields: map[string]string{"container.id": "abc"},
	}
}

func TestGRPCInputReceivesAndReconnectsAfterFalcoRestarts(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "falco.sock")
	falco := falcotest.Start(t, sock)
	c := newCollector()
	in := NewGRPCInput(GRPCOptions{Address: "unix://" + sock, PollInterval: 20 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, c, zerolog.Nop())
	done := make(chan error, 1)
	ctx, cancel := contextWithCancel(t)
	go func() { done <- in.Run(ctx) }()

	for i := range 100 {
		falco.Publish(response(i))
	}
	waitFor(t, "the first 100 events", 10*time.Second, func() bool { return c.count() == 100 })

	// Falco crashes; the socket is gone for a while; Falco comes back.
	falco.Stop()
	os.Remove(sock)
	time.Sleep(300 * time.Millisecond)
	falco.Restart(t)
	for i := 100; i < 150; i++ {
		falco.Publish(response(i))
	}
	falco.Publish(&outputs.Response{Rule: "no time"}) // invalid: counted, not fatal
	waitFor(t, "the events after the restart", 10*time.Second, func() bool { return c.count() == 150 })
	waitFor(t, "the invalid event to be counted", 5*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.invalid["grpc"] == 1
	})
	for i, r := range c.rules {
		if r != fmt.Sprintf("rule-%d", i) {
			t.Fatalf("event %d is %s: order or content lost", i, r)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestGRPCInputRejectsNetworkWithoutTLS(t *testing.T) {
	in := NewGRPCInput(GRPCOptions{Address: "falco:5060"}, newCollector(), zerolog.Nop())
	if err := in.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "mTLS") {
		t.Errorf("Run: %v, want an error about mTLS", err)
	}
}

func TestHTTPInput(t *testing.T) {
	sample := readSample(t, "falco-0.4x.json")
	old := readSample(t, "falco-0.2x.json")
	tests := []struct {
		name        string
		method      string
		body        []byte
		wantStatus  int
		wantEvents  int
		wantInvalid int
	}{
		{"one alert, as http_output posts it", http.MethodPost, sample, 200, 1, 0},
		{"json lines", http.MethodPost, bytes.Join([][]byte{sample, old, sample}, []byte("\n")), 200, 3, 0},
		{"one good one bad", http.MethodPost, append(append([]byte{}, sample...), []byte(`{"rule":""}`)...), 400, 1, 1},
		{"garbage", http.MethodPost, []byte("<html>"), 400, 0, 1},
		{"empty", http.MethodPost, nil, 400, 0, 1},
		{"too large", http.MethodPost, bytes.Repeat([]byte(" "), 2<<20), 413, 0, 1},
		{"wrong method", http.MethodGet, nil, 405, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCollector()
			srv := httptest.NewServer(NewHTTPInput(HTTPOptions{}, c, zerolog.Nop()))
			defer srv.Close()
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+"/", bytes.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if c.inputs["http"] != tt.wantEvents || c.invalid["http"] != tt.wantInvalid {
				t.Errorf("events %d invalid %d, want %d and %d", c.inputs["http"], c.invalid["http"], tt.wantEvents, tt.wantInvalid)
			}
		})
	}
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(t.Context())
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "shared", "falcoevent", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
