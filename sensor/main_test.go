package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/falcosecurity/client-go/pkg/api/outputs"
	"github.com/falcosecurity/client-go/pkg/api/schema"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/palisade-sec/palisade/sensor/falco/falcotest"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// testConfig is a configuration for loopback: the HTTP input and the ops
// endpoint on free ports, Event Hubs at eh.
func testConfig(t testing.TB, eh *testenv.EventHubs) Config {
	t.Helper()
	cfg, err := loadConfig(nil, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClusterID, cfg.NodeName = "aks-test", "node-a"
	cfg.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.OpsAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.EventHubsConnectionString = eh.ConnectionString()
	cfg.FlushInterval = 50 * time.Millisecond
	cfg.RetryMin, cfg.RetryMax = 100*time.Millisecond, time.Second
	cfg.GRPCPollInterval = 20 * time.Millisecond
	cfg.ShutdownTimeout = 20 * time.Second
	return cfg
}

// sensor is a running run().
type sensor struct {
	cfg  Config
	stop func() error
}

func startSensor(t testing.TB, cfg Config) *sensor {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	go func() { done <- run(ctx, cfg, log) }()
	s := &sensor{cfg: cfg}
	stopped := false
	var stopErr error
	s.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
		}
		return stopErr
	}
	t.Cleanup(func() { _ = s.stop() })
	// Ready when the ops endpoint answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + cfg.OpsAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-done:
			stopped, stopErr = true, err
			t.Fatalf("sensor stopped at start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sensor not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// post sends Falco JSON to the HTTP input as http_output does.
func (s *sensor) post(t testing.TB, body []byte) {
	t.Helper()
	if code := s.postStatus(t, body); code != http.StatusOK {
		t.Fatalf("http input answered %d", code)
	}
}

func (s *sensor) postStatus(t testing.TB, body []byte) int {
	t.Helper()
	resp, err := http.Post("http://"+s.cfg.HTTPAddr+"/", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metrics scrapes /metrics into "name{labels}" → value, labels in the
// order the exposition writes them (sorted by name).
func (s *sensor) metrics(t testing.TB) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.cfg.OpsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("metrics content type %q", ct)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func falcoJSON(rule, priority string, i int) []byte {
	ts := time.Date(2026, 7, 10, 20, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Microsecond)
	b, _ := json.Marshal(map[string]any{
		"hostname": "node-a", "output": "event " + strconv.Itoa(i), "priority": priority, "rule": rule,
		"source": "syscall", "time": ts.Format(time.RFC3339Nano), "tags": []string{"T1059"},
		"output_fields": map[string]any{"container.id": "253a53abf758", "k8s.ns.name": "prod", "k8s.pod.name": "web-1", "proc.tty": 34816, "user.loginuid": nil},
	})
	return b
}

func grpcEvent(rule string, i int) *outputs.Response {
	return &outputs.Response{
		Time: timestamppb.New(time.Date(2026, 7, 10, 21, 0, 0, i, time.UTC)), Priority: schema.Priority_CRITICAL,
		Source: "syscall", Rule: rule, Output: "grpc event " + strconv.Itoa(i), Hostname: "node-a",
		OutputFields: map[string]string{"container.id": "abc", "k8s.ns.name": "prod"},
	}
}

// arrived decodes what the stand-in received: envelope by output, and how
// many times each output arrived.
func arrived(t testing.TB, eh *testenv.EventHubs) (map[string]model.Envelope, map[string]int) {
	t.Helper()
	envs, counts := map[string]model.Envelope{}, map[string]int{}
	for _, e := range eh.Events(t) {
		var env model.Envelope
		if err := json.Unmarshal([]byte(e.Body), &env); err != nil {
			t.Fatalf("event %s: %v", e.ID, err)
		}
		if e.ID != env.ID || e.PartitionKey != env.Node {
			t.Fatalf("message id %q / partition key %q do not match envelope %q / %q", e.ID, e.PartitionKey, env.ID, env.Node)
		}
		envs[env.Output] = env
		counts[env.Output]++
	}
	return envs, counts
}

func waitUntil(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBothInputsReachEventHubs(t *testing.T) {
	eh := testenv.StartEventHubs(t)
	sock := filepath.Join(t.TempDir(), "falco.sock")
	falco := falcotest.Start(t, sock)
	cfg := testConfig(t, eh)
	cfg.GRPCAddr = "unix://" + sock
	s := startSensor(t, cfg)

	sample, err := os.ReadFile("../shared/falcoevent/testdata/falco-0.4x.json")
	if err != nil {
		t.Fatal(err)
	}
	s.post(t, sample)
	for i := range 20 {
		s.post(t, falcoJSON("Terminal shell in container", "Warning", i))
		falco.Publish(grpcEvent("Launch Privileged Container", i))
	}
	if code := s.postStatus(t, []byte(`{"rule":"broken"`)); code != http.StatusBadRequest {
		t.Errorf("broken JSON answered %d, want 400", code)
	}
	waitUntil(t, "41 events", 20*time.Second, func() bool { envs, _ := arrived(t, eh); return len(envs) == 41 })

	envs, counts := arrived(t, eh)
	for out, n := range counts {
		if n != 1 {
			t.Errorf("%q arrived %d times", out, n)
		}
	}
	real := envs["2026-07-10T20:12:53.504372321+0000: Notice A shell was spawned in a container with an attached terminal | evt_type=execve user=root user_uid=0 user_loginuid=-1 process=sh proc_exepath=/bin/busybox parent=containerd-shim command=sh terminal=34816 exe_flags=EXE_WRITABLE|EXE_LOWER_LAYER container_id=253a53abf758 container_name=test container_image_repository=alpine container_image_tag=latest k8s_pod_name=<NA> k8s_ns_name=<NA>"]
	if real.Cluster != "aks-test" || real.Node != "node-a" || real.Version != model.EnvelopeVersion || real.ID == "" ||
		real.Rule != "Terminal shell in container" || real.Container == nil || real.Container.Image != "alpine" {
		t.Errorf("real sample arrived as %+v", real)
	}
	g := envs["grpc event 7"]
	if g.Priority != "Critical" || g.Source != "syscall" || g.K8s == nil || g.K8s.Namespace != "prod" {
		t.Errorf("grpc event arrived as %+v", g)
	}

	waitUntil(t, "metrics to show 41 sent", 5*time.Second, func() bool {
		return s.metrics(t)["palisade_sensor_events_sent_total"] == 41
	})
	m := s.metrics(t)
	for k, want := range map[string]float64{
		`palisade_sensor_events_received_total{input="http"}`: 21,
		`palisade_sensor_events_received_total{input="grpc"}`: 20,
		`palisade_sensor_events_invalid_total{input="http"}`:  1,
		`palisade_sensor_buffer_events`:                       0,
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if m["palisade_sensor_send_latency_seconds_count"] < 1 || m["palisade_sensor_batches_sent_total"] < 1 {
		t.Errorf("no batch or latency recorded: %v", m)
	}
	if err := s.stop(); err != nil {
		t.Errorf("run returned %v", err)
	}
}

// outage sends rate events per second over the gRPC input for total, with
// Event Hubs refusing connections from down to up, and checks that every
// event arrives, with no drops.
func outage(t *testing.T, rate int, total, down, up time.Duration, spool bool) {
	eh := testenv.StartEventHubs(t)
	sock := filepath.Join(t.TempDir(), "falco.sock")
	falco := falcotest.Start(t, sock)
	cfg := testConfig(t, eh)
	cfg.GRPCAddr = "unix://" + sock
	cfg.FlushInterval = 200 * time.Millisecond
	cfg.RetryMax = 2 * time.Second
	if spool {
		cfg.SpoolDir = t.TempDir()
	}
	s := startSensor(t, cfg)

	n := int(total.Seconds() * float64(rate))
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	wentDown, cameUp := false, false
	for sent := 0; sent < n; {
		now := <-tick.C
		el := now.Sub(start)
		if !wentDown && el >= down {
			eh.Control(t, "/down")
			wentDown = true
		}
		if !cameUp && el >= up {
			eh.Control(t, "/up")
			cameUp = true
		}
		for due := min(n, int(el.Seconds()*float64(rate))); sent < due; sent++ {
			falco.Publish(grpcEvent("Outage test", sent))
		}
	}
	if !cameUp {
		eh.Control(t, "/up")
	}
	waitUntil(t, fmt.Sprintf("all %d events", n), 2*time.Minute, func() bool {
		envs, _ := arrived(t, eh)
		return len(envs) == n
	})
	_, counts := arrived(t, eh)
	dupes := 0
	for i := range n {
		c := counts["grpc event "+strconv.Itoa(i)]
		if c == 0 {
			t.Fatalf("event %d lost", i)
		}
		dupes += c - 1
	}
	m := s.metrics(t)
	for k, v := range m {
		if strings.HasPrefix(k, "palisade_sensor_events_dropped_total") && v > 0 {
			t.Errorf("%s = %v, want no drops", k, v)
		}
	}
	if m["palisade_sensor_send_errors_total"] == 0 {
		t.Error("no send error counted: the outage did not happen")
	}
	t.Logf("%d events at %d/s, Event Hubs down %v–%v: all arrived, %d duplicates (at-least-once), %v send errors",
		n, rate, down, up, dupes, m["palisade_sensor_send_errors_total"])
}

func TestOutageLosesNothing(t *testing.T) {
	// The shape of "30 s outage at 1,000 events/s", scaled to 3 s.
	outage(t, 1000, 6*time.Second, time.Second, 4*time.Second, false)
}

func TestOutageLosesNothingWithSpool(t *testing.T) {
	outage(t, 1000, 6*time.Second, time.Second, 4*time.Second, true)
}

// TestLongOutage is the full size: 30 s of outage in 40 s at 1,000 events/s.
// Set PALISADE_LONG_TESTS=1 to run it.
func TestLongOutage(t *testing.T) {
	if os.Getenv("PALISADE_LONG_TESTS") == "" {
		t.Skip("set PALISADE_LONG_TESTS=1 for the 30 s outage at 1,000 events/s")
	}
	outage(t, 1000, 40*time.Second, 5*time.Second, 35*time.Second, true)
}

func TestOverflowDropsExactlyTheLowestPriorityAndShutdownFlushes(t *testing.T) {
	eh := testenv.StartEventHubs(t)
	eh.Control(t, "/down")
	cfg := testConfig(t, eh)
	cfg.BufferMaxEvents = 100
	cfg.FlushInterval = time.Hour // hold everything until shutdown
	cfg.BatchMaxEvents = 1000
	s := startSensor(t, cfg)

	// 60 Debug, 80 Warning, 20 Critical into room for 100: exactly the 60
	// Debug events must go.
	i := 0
	for _, group := range []struct {
		prio string
		n    int
	}{{"Debug", 60}, {"Warning", 80}, {"Critical", 20}} {
		for range group.n {
			s.post(t, falcoJSON("Overflow "+group.prio, group.prio, i))
			i++
		}
	}
	m := s.metrics(t)
	if got := m[`palisade_sensor_events_dropped_total{priority="Debug",reason="buffer_full"}`]; got != 60 {
		t.Errorf("dropped Debug %v, want 60", got)
	}
	for k, v := range m {
		if strings.HasPrefix(k, "palisade_sensor_events_dropped_total") && !strings.Contains(k, `priority="Debug"`) && v != 0 {
			t.Errorf("%s = %v, want 0", k, v)
		}
	}
	if m["palisade_sensor_buffer_events"] != 100 {
		t.Errorf("buffer holds %v, want 100", m["palisade_sensor_buffer_events"])
	}

	eh.Control(t, "/up")
	if err := s.stop(); err != nil { // graceful shutdown sends the 100
		t.Fatal(err)
	}
	envs, counts := arrived(t, eh)
	if len(envs) != 100 {
		t.Fatalf("%d events arrived after shutdown, want 100", len(envs))
	}
	for out, env := range envs {
		if env.Priority == "Debug" || counts[out] != 1 {
			t.Errorf("%q (%s) arrived %d times", out, env.Priority, counts[out])
		}
	}
}

func TestSpoolSurvivesRestart(t *testing.T) {
	eh := testenv.StartEventHubs(t)
	eh.Control(t, "/down")
	cfg := testConfig(t, eh)
	cfg.SpoolDir = t.TempDir()
	cfg.ShutdownTimeout = 500 * time.Millisecond
	s := startSensor(t, cfg)
	for i := range 200 {
		s.post(t, falcoJSON("Spooled", "Notice", i))
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(cfg.SpoolDir, "seg-*.log")); len(files) == 0 {
		t.Fatal("nothing in the spool after stopping during an outage")
	}

	eh.Control(t, "/up")
	cfg.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.OpsAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	s2 := startSensor(t, cfg)
	waitUntil(t, "the spooled events", 30*time.Second, func() bool { envs, _ := arrived(t, eh); return len(envs) == 200 })
	s2.post(t, falcoJSON("After restart", "Notice", 1000))
	waitUntil(t, "the new event", 10*time.Second, func() bool { envs, _ := arrived(t, eh); return len(envs) == 201 })
	_, counts := arrived(t, eh)
	for out, n := range counts {
		if n != 1 {
			t.Errorf("%q arrived %d times", out, n)
		}
	}
	if err := s2.stop(); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(cfg.SpoolDir, "seg-*.log")); len(files) > 1 {
		t.Errorf("spool keeps %d segments after everything was sent", len(files))
	}
}
