// Package testenv starts the loopback servers that tests run against (the
// Cosmos DB REST server, the AMQP 1.0 peer, registries) and finds the files
// they need. It is for tests only.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Root returns the repository root (the folder holding go.mod).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// NodeModules returns tests/node_modules, failing the test with the command
// to run when the test servers' npm packages are not installed.
func NodeModules(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(Root(t), "tests", "node_modules")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("testenv: %s is missing: run `npm ci --prefix tests` (make test and .ci/run do)", dir)
	}
	return dir
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a server started for a test.
type Process struct {
	Cmd *exec.Cmd
	out *Buffer
}

// Output returns what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// Stop kills the process and waits for it.
func (p *Process) Stop() {
	if p.Cmd.Process != nil {
		_ = p.Cmd.Process.Kill()
		_ = p.Cmd.Wait()
	}
}

// Start runs name with args and env (added to the test's environment), waits
// until ready returns nil (polling for up to 30 s), and stops the process when
// the test ends. On failure the process output is in the test log.
func Start(t testing.TB, ready func(context.Context) error, env []string, name string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start %s: %v", name, err)
	}
	p := &Process{Cmd: cmd, out: out}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %s not ready after 30s: %v\n%s", name, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DialReady returns a readiness check that succeeds once addr accepts TCP.
func DialReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("dial %s: %w", addr, err)
		}
		return c.Close()
	}
}

// Buffer collects output written from several goroutines (a process's,
// a logger's).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
