package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// falcoLines are real Falco JSON alerts, one per line: the detection rules'
// samples and the sensor's (older and newer Falco formats).
func falcoLines(t *testing.T) [][]byte {
	t.Helper()
	root := testenv.Root(t)
	files, _ := filepath.Glob(filepath.Join(root, "shared", "detection", "testdata", "falco", "*.json"))
	more, _ := filepath.Glob(filepath.Join(root, "shared", "falcoevent", "testdata", "*.json"))
	var lines [][]byte
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var line bytes.Buffer
		if err := json.Compact(&line, b); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		lines = append(lines, line.Bytes())
	}
	if len(lines) < 30 {
		t.Fatalf("only %d Falco samples", len(lines))
	}
	return lines
}

// TestDetectDecodesAsTheSensor: the envelopes `palisade detect` makes of
// Falco JSON lines are the envelopes the sensor sends to Event Hubs for
// the same lines (posted to its http_output input), field for field.
func TestDetectDecodesAsTheSensor(t *testing.T) {
	const cluster, node = "aks-prod", "aks-nodepool1-12345678-vmss000001"
	lines := falcoLines(t)

	sensor := filepath.Join(t.TempDir(), "palisade-sensor")
	build := exec.Command("go", "build", "-o", sensor, "./sensor")
	build.Dir = testenv.Root(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the sensor: %v\n%s", err, out)
	}
	eh := testenv.StartEventHubs(t)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	testenv.Start(t, testenv.DialReady(httpAddr), []string{
		"PALISADE_SENSOR_CLUSTER_ID=" + cluster, "PALISADE_SENSOR_NODE_NAME=" + node,
		"PALISADE_SENSOR_HTTP_ADDR=" + httpAddr, fmt.Sprintf("PALISADE_SENSOR_OPS_ADDR=127.0.0.1:%d", testenv.FreePort(t)),
		"PALISADE_SENSOR_EVENTHUBS_CONNECTION_STRING=" + eh.ConnectionString(),
		"PALISADE_SENSOR_FLUSH_INTERVAL=50ms",
	}, sensor)
	for _, l := range lines {
		resp, err := http.Post("http://"+httpAddr+"/", "application/json", bytes.NewReader(l))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the sensor refused %s: %s", l, resp.Status)
		}
	}
	var events []testenv.ReceivedEvent
	for deadline := time.Now().Add(30 * time.Second); len(events) < len(lines) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		events = eh.Events(t)
	}
	if len(events) != len(lines) {
		t.Fatalf("the sensor sent %d events for %d lines", len(events), len(lines))
	}
	sent := map[string]model.Envelope{} // by id: samples of the same alert share one
	for _, e := range events {
		var env model.Envelope
		if err := json.Unmarshal([]byte(e.Body), &env); err != nil {
			t.Fatal(err)
		}
		sent[env.ID] = env
	}

	input := filepath.Join(t.TempDir(), "falco.jsonl")
	if err := os.WriteFile(input, append(bytes.Join(lines, []byte("\n")), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "detect", "--input", input, "--format", "envelopes", "--cluster", cluster, "--node", node)
	if code != 0 {
		t.Fatalf("palisade detect: exit %d\n%s", code, errOut)
	}
	decoded := map[string]model.Envelope{}
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var env model.Envelope
		if err := dec.Decode(&env); err != nil {
			t.Fatal(err)
		}
		decoded[env.ID] = env
	}
	if d := cmp.Diff(sent, decoded); d != "" {
		t.Errorf("envelopes by id (-sensor +palisade detect):\n%s", d)
	}
}
