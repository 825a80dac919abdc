package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/sensor/falco/falcotest"
	"github.com/palisade-sec/palisade/sensor/ops"
	"github.com/palisade-sec/palisade/shared/ehsink/queue"
	"github.com/palisade-sec/palisade/shared/falcoevent"
	"github.com/palisade-sec/palisade/tests/testenv"
	"github.com/rs/zerolog"
)

// BenchmarkIntake is the sensor's own work per event, in process: decode
// Falco JSON, stamp, encode the envelope and queue it.
func BenchmarkIntake(b *testing.B) {
	sample, err := os.ReadFile("../shared/falcoevent/testdata/falco-0.4x.json")
	if err != nil {
		b.Fatal(err)
	}
	q, _ := queue.Open(queue.Options{MaxEvents: 1000})
	in := &intake{cluster: "c", node: "n", q: q, metrics: ops.NewMetrics(), log: zerolog.Nop()}
	b.SetBytes(int64(len(sample)))
	b.ReportAllocs()
	for b.Loop() {
		ev, err := falcoevent.DecodeJSON(sample)
		if err != nil {
			b.Fatal(err)
		}
		in.Receive(ev, "http")
	}
}

// child is the sensor binary running as its own process, so that its CPU
// and memory can be measured apart from the load generator.
type child struct {
	proc     *testenv.Process
	httpAddr string
	opsAddr  string
}

func startChild(b *testing.B, eh *testenv.EventHubs, extraEnv ...string) *child {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "palisade-sensor")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build sensor: %v\n%s", err, out)
	}
	c := &child{
		httpAddr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b)),
		opsAddr:  fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b)),
	}
	env := append([]string{
		"PALISADE_SENSOR_CLUSTER_ID=bench", "PALISADE_SENSOR_NODE_NAME=node-a",
		"PALISADE_SENSOR_HTTP_ADDR=" + c.httpAddr, "PALISADE_SENSOR_OPS_ADDR=" + c.opsAddr,
		"PALISADE_SENSOR_EVENTHUBS_CONNECTION_STRING=" + eh.ConnectionString(),
		"PALISADE_SENSOR_LOG_LEVEL=warn",
	}, extraEnv...)
	c.proc = testenv.Start(b, testenv.DialReady(c.opsAddr), env, bin)
	return c
}

// sentTotal scrapes the child's events_sent_total.
func (c *child) sentTotal(b *testing.B) float64 {
	resp, err := http.Get("http://" + c.opsAddr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "palisade_sensor_events_sent_total "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

func (c *child) waitSent(b *testing.B, n float64, within time.Duration) {
	deadline := time.Now().Add(within)
	for c.sentTotal(b) < n {
		if time.Now().After(deadline) {
			b.Fatalf("only %v of %v events sent after %v", c.sentTotal(b), n, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// usage reads the child's CPU time (user+system) and resident memory.
func (c *child) usage(b *testing.B) (cpu time.Duration, rssKB, hwmKB int) {
	pid := c.proc.Cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	const clkTck = 100 // USER_HZ on Linux
	cpu = time.Duration(utime+stime) * time.Second / clkTck
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "VmRSS":
			rssKB = kb
		case "VmHWM":
			hwmKB = kb
		}
	}
	return cpu, rssKB, hwmKB
}

// poster posts Falco JSON to the child's HTTP input over kept-alive
// connections, as Falco's http_output does.
type poster struct {
	url    string
	client *http.Client
}

func newPoster(addr string) *poster {
	return &poster{url: "http://" + addr + "/", client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
}

func (p *poster) post(b *testing.B, body []byte) {
	resp, err := p.client.Post(p.url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	// Read to the end so the connection is kept alive, as Falco's libcurl does.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("http input answered %s", resp.Status)
	}
}

// BenchmarkLoad5000 runs the sensor binary under a steady 5,000 events/s
// for 5 s per iteration, sending to Event Hubs (the AMQP stand-in), and
// reports the sensor process's CPU as a percentage of one core and its
// resident memory. Falco's two outputs are measured apart: http_output posts
// one event per request; the gRPC output streams them.
func BenchmarkLoad5000(b *testing.B) {
	for _, input := range []string{"http", "grpc"} {
		for _, spool := range []bool{false, true} {
			b.Run(fmt.Sprintf("input=%s/spool=%v", input, spool), func(b *testing.B) {
				load(b, input, spool)
			})
		}
	}
}

func load(b *testing.B, input string, spool bool) {
	const rate, window, workers = 5000, 5 * time.Second, 10
	eh := testenv.StartEventHubs(b)
	var env []string
	if spool {
		env = append(env, "PALISADE_SENSOR_SPOOL_DIR="+b.TempDir())
	}
	var send func(i int)
	var p *poster
	var stub *falcotest.Server
	var events [][]byte
	if input == "grpc" {
		sock := filepath.Join(b.TempDir(), "falco.sock")
		stub = falcotest.Start(b, sock)
		env = append(env, "PALISADE_SENSOR_GRPC_ADDR=unix://"+sock)
		send = func(i int) { stub.Publish(grpcEvent("Load", i)) }
	}
	c := startChild(b, eh, env...)
	if input == "http" {
		p = newPoster(c.httpAddr)
		events = make([][]byte, rate*int(window/time.Second))
		for i := range events {
			events[i] = falcoJSON("Load", "Warning", i)
		}
		send = func(i int) { p.post(b, events[i%len(events)]) }
	}
	// Warm up: connections open, link attached.
	send(0)
	c.waitSent(b, 1, 30*time.Second)
	var posted atomic.Int64
	posted.Add(1)

	cpu0, _, _ := c.usage(b)
	start := time.Now()
	for b.Loop() {
		begin := time.Now()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				// Each worker sends its share at its own pace, catching up
				// after a slow request.
				per := time.Second * workers / rate
				for i := w; ; i += workers {
					due := begin.Add(time.Duration(i/workers) * per)
					if due.Sub(begin) >= window {
						return
					}
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
					send(int(posted.Add(1)))
				}
			})
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	cpu1, rss, hwm := c.usage(b)
	c.waitSent(b, float64(posted.Load()), time.Minute)
	b.ReportMetric(float64(cpu1-cpu0)/float64(elapsed)*100, "cpu%")
	b.ReportMetric(float64(rss)/1024, "rss-MB")
	b.ReportMetric(float64(hwm)/1024, "peak-rss-MB")
	b.ReportMetric(float64(posted.Load())/elapsed.Seconds(), "events/s")
}

// BenchmarkSaturation posts as fast as the machine allows (batches of 100
// JSON lines, 4 concurrent posters) and reports the events per second the
// sensor takes in and gets accepted by Event Hubs.
func BenchmarkSaturation(b *testing.B) {
	eh := testenv.StartEventHubs(b)
	c := startChild(b, eh, "PALISADE_SENSOR_BUFFER_MAX_EVENTS=1000000", "PALISADE_SENSOR_BUFFER_MAX_BYTES=1073741824")
	p := newPoster(c.httpAddr)
	var body bytes.Buffer
	for i := range 100 {
		body.Write(falcoJSON("Saturation", "Warning", i))
		body.WriteByte('\n')
	}
	batch := body.Bytes()
	p.post(b, batch)
	c.waitSent(b, 100, 30*time.Second)
	base := c.sentTotal(b)

	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan struct{}, 64)
	for range 4 {
		wg.Go(func() {
			for range work {
				p.post(b, batch)
			}
		})
	}
	n := 0
	for b.Loop() { // one op = 100 events
		work <- struct{}{}
		n += 100
	}
	close(work)
	wg.Wait()
	c.waitSent(b, base+float64(n), 5*time.Minute)
	elapsed := time.Since(start)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	_, _, hwm := c.usage(b)
	b.ReportMetric(float64(hwm)/1024, "peak-rss-MB")
}
