package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/tests/testenv"
)

// runCLI runs the built binary and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), binary, args...)
	cmd.Env = append(cmd.Environ(), "PALISADE_STORE_PATH="+filepath.Join(t.TempDir(), "cli.db"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

func TestPostureCLI(t *testing.T) {
	root := testenv.Root(t)
	code, out, errOut := runCLI(t, "posture", "--manifests", filepath.Join(root, "shared/posture/testdata/bad"), "--format", "json")
	if code != 1 {
		t.Fatalf("bad manifests: exit %d, want 1 (failures at or above high)\n%s", code, errOut)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("--format json is not JSON: %v\n%s", err, out)
	}
	if !strings.Contains(out, "privileged") {
		t.Errorf("no privileged-container failure in the report")
	}
	if code, _, errOut := runCLI(t, "posture", "--manifests", filepath.Join(root, "shared/posture/testdata/good"), "--fail-on", "critical"); code != 0 {
		t.Errorf("good manifests: exit %d\n%s", code, errOut)
	}
	if code, _, _ := runCLI(t, "posture"); code != 2 {
		t.Errorf("no --manifests: exit %d, want 2", code)
	}
}

func TestDetectCLI(t *testing.T) {
	root := testenv.Root(t)
	input := filepath.Join(root, "shared/detection/testdata/falco/drop_execute.json")
	code, out, errOut := runCLI(t, "detect", "--input", input, "--format", "json")
	if code != 0 || !strings.Contains(out, "K8S.NODE_BinaryDrift") {
		t.Errorf("detect: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
