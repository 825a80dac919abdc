package ehsink

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/ehsink/queue"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// countObserver records what the sink reports.
type countObserver struct {
	mu             sync.Mutex
	sent, failures int
}

func (o *countObserver) Sent(n, _ int, _ time.Duration) { o.mu.Lock(); o.sent += n; o.mu.Unlock() }
func (o *countObserver) SendFailed(error)               { o.mu.Lock(); o.failures++; o.mu.Unlock() }

func envelope(i int, output string) *model.Envelope {
	return &model.Envelope{
		Version: model.EnvelopeVersion, ID: fmt.Sprintf("id-%05d", i), Cluster: "c1", Node: "node-a",
		Source: "syscall", Time: time.Date(2026, 7, 10, 20, 12, 53, i, time.UTC), Rule: "Terminal shell in container",
		Priority: "Notice", Output: output,
	}
}

// record frames an envelope as the sensor does.
func record(env *model.Envelope) ([]byte, error) {
	body, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	return Frame(env.ID, body)
}

func push(t *testing.T, q *queue.Queue, from, n int, output string) {
	t.Helper()
	for i := from; i < from+n; i++ {
		rec, err := record(envelope(i, output))
		if err != nil {
			t.Fatal(err)
		}
		q.Push(5, rec)
	}
}

type harness struct {
	eh   *testenv.EventHubs
	q    *queue.Queue
	s    *Sink
	obs  *countObserver
	stop func()
}

func start(t *testing.T, opts Options, env ...string) *harness {
	t.Helper()
	eh := testenv.StartEventHubs(t, env...)
	q, err := queue.Open(queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts.ConnectionString = eh.ConnectionString()
	opts.PartitionKey = "node-a"
	if opts.FlushInterval == 0 {
		opts.FlushInterval = 20 * time.Millisecond
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = 50*time.Millisecond, 500*time.Millisecond
	}
	obs := &countObserver{}
	s, err := New(opts, q, obs, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	h := &harness{eh: eh, q: q, s: s, obs: obs}
	h.stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(func() {
		h.stop()
		s.Close(context.Background())
	})
	return h
}

// waitIDs waits until every id in [0,n) has arrived and returns how many
// times each arrived.
func waitIDs(t *testing.T, eh *testenv.EventHubs, n int, within time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		seen := map[string]int{}
		for _, e := range eh.Events(t) {
			seen[e.ID]++
		}
		missing := 0
		for i := range n {
			if seen[fmt.Sprintf("id-%05d", i)] == 0 {
				missing++
			}
		}
		if missing == 0 {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events missing after %v; stand-in stats %v", missing, n, within, eh.Stats(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settled waits until the queue is empty (every batch acknowledged) and
// returns how many times each id arrived.
func (h *harness) settled(t *testing.T) map[string]int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for h.q.Stats().Events > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queue not empty after 60s: %+v", h.q.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	seen := map[string]int{}
	for _, e := range h.eh.Events(t) {
		seen[e.ID]++
	}
	return seen
}

func TestSendDeliversEnvelopesWithIDAndPartitionKey(t *testing.T) {
	h := start(t, Options{})
	push(t, h.q, 0, 20, "a shell")
	seen := waitIDs(t, h.eh, 20, 20*time.Second)
	events := h.eh.Events(t)
	if len(events) != 20 {
		t.Fatalf("received %d events, want 20: %v", len(events), seen)
	}
	for i, e := range events {
		if e.PartitionKey != "node-a" {
			t.Errorf("event %s partition key %q, want node-a", e.ID, e.PartitionKey)
		}
		var got model.Envelope
		if err := json.Unmarshal([]byte(e.Body), &got); err != nil {
			t.Fatalf("body of %s: %v", e.ID, err)
		}
		if diff := cmp.Diff(envelope(i, "a shell"), &got); diff != "" {
			t.Errorf("event %d (-sent +received):\n%s", i, diff)
		}
	}
	if st := h.q.Stats(); st.Events != 0 {
		t.Errorf("queue still holds %d events after they were accepted", st.Events)
	}
}

func TestFaultsLoseNothing(t *testing.T) {
	tests := []struct {
		name      string
		fault     string
		wantDupes bool
	}{
		{"server busy within the client's retries", "/fault?busy=2", false},
		{"server busy beyond the client's retries", "/fault?busy=12", false},
		{"link detached before storing", "/fault?detach=2", false},
		{"link detached after storing", "/fault?lateDetach=1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, Options{})
			// Open the link first, so the fault hits a delivery.
			push(t, h.q, 0, 1, "warm-up")
			waitIDs(t, h.eh, 1, 20*time.Second)
			h.eh.Control(t, "/reset")
			h.eh.Control(t, tt.fault)
			push(t, h.q, 0, 200, "under fault")
			waitIDs(t, h.eh, 200, 60*time.Second)
			seen := h.settled(t)
			dupes := 0
			for _, n := range seen {
				dupes += n - 1
			}
			t.Logf("stand-in stats %v", h.eh.Stats(t))
			if (dupes > 0) != tt.wantDupes {
				t.Errorf("%d duplicates; want duplicates: %v", dupes, tt.wantDupes)
			}
			st := h.eh.Stats(t)
			if st["busy"].(float64) != 0 || st["detach"].(float64) != 0 || st["lateDetach"].(float64) != 0 {
				t.Errorf("fault not exercised: %v", st)
			}
		})
	}
}

func TestOutageThenRecovery(t *testing.T) {
	h := start(t, Options{})
	push(t, h.q, 0, 1, "warm-up")
	waitIDs(t, h.eh, 1, 20*time.Second)
	h.eh.Control(t, "/down")
	push(t, h.q, 1, 300, "during outage")
	time.Sleep(4 * time.Second) // longer than the client's own retries
	if h.obs.failuresSoFar() == 0 {
		t.Error("no failed send reported while the hub refused connections")
	}
	if n, _ := h.q.Pending(); n+h.q.Stats().InFlight != 300 {
		t.Errorf("queue holds %d events during the outage, want 300", n)
	}
	h.eh.Control(t, "/up")
	waitIDs(t, h.eh, 301, 60*time.Second)
}

func (o *countObserver) failuresSoFar() int { o.mu.Lock(); defer o.mu.Unlock(); return o.failures }

func TestBatchesStayWithinSizeAndOversizeEventsAreDropped(t *testing.T) {
	// The stand-in rejects any delivery above its limit, so every accepted
	// batch was within it.
	h := start(t, Options{MaxBatchBytes: 256 << 10}, "MAX_MESSAGE_SIZE=262144")
	big := strings.Repeat("x", 60_000)
	push(t, h.q, 0, 30, big)
	rec, _ := record(envelope(999, strings.Repeat("y", 300_000)))
	h.q.Push(5, rec)
	waitIDs(t, h.eh, 30, 30*time.Second)
	st := h.eh.Stats(t)
	if b := st["batches"].(float64); b < 8 {
		t.Errorf("%v batches for 30 events of 60 kB within 256 kB, want at least 8", b)
	}
	if d := h.q.Stats().Drops[queue.ReasonTooLarge][5]; d != 1 {
		t.Errorf("too_large drops %d, want 1", d)
	}
	for _, e := range h.eh.Events(t) {
		if e.ID == "id-00999" {
			t.Error("the oversize event arrived")
		}
	}
}

func TestDrainSendsWhatIsLeft(t *testing.T) {
	h := start(t, Options{FlushInterval: time.Hour})
	h.stop()
	push(t, h.q, 0, 50, "at shutdown")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if left := h.s.Drain(ctx); left != 0 {
		t.Fatalf("%d events left after drain", left)
	}
	waitIDs(t, h.eh, 50, time.Second)
}
