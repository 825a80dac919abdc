// Package e2e runs the built palisade binary behind the Functions host
// emulator (shared/funchost), exactly as the host launches and calls it.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/funchost"
	"github.com/palisade-sec/palisade/tests/testenv"
	"github.com/palisade-sec/palisade/tests/testfile"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "palisade-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "palisade")
	build := exec.Command("go", "build", "-o", binary, "./functions")
	build.Dir = "../.."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build palisade:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// app lays out a function app folder as `make app` does: host.json, the
// binary and one folder per function.
func app(t *testing.T) string {
	t.Helper()
	root := testenv.Root(t)
	dir := t.TempDir()
	testfile.Copy(t, filepath.Join(dir, "host.json"), filepath.Join(root, "host.json"))
	testfile.Copy(t, filepath.Join(dir, "palisade"), binary)
	if err := os.Chmod(filepath.Join(dir, "palisade"), 0o755); err != nil {
		t.Fatal(err)
	}
	fjs, _ := filepath.Glob(filepath.Join(root, "functions", "*", "function.json"))
	for _, fj := range fjs {
		name := filepath.Base(filepath.Dir(fj))
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		testfile.Copy(t, filepath.Join(dir, name, "function.json"), fj)
	}
	return dir
}

// launch starts the handler as the host does and returns the host and its
// HTTP front (the /api, webhook and admin surface).
func launch(t *testing.T, env ...string) (*funchost.Host, *httptest.Server) {
	t.Helper()
	a, err := funchost.LoadApp(app(t))
	if err != nil {
		t.Fatal(err)
	}
	env = append([]string{"PALISADE_STORE_PATH=" + filepath.Join(t.TempDir(), "palisade.db")}, env...)
	ctx, cancel := context.WithCancel(context.Background())
	h, err := funchost.Launch(ctx, a, "", env, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	front := httptest.NewServer(h.ServeMux())
	t.Cleanup(func() {
		front.Close()
		h.Stop()
		cancel()
	})
	return h, front
}

func getJSON(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", url, ct)
	}
	return resp.StatusCode, string(b)
}
