package golden_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/tests/golden"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Errorf(f string, a ...any) { r.failed = true; r.msg = f }
func (r *recorder) Fatalf(f string, a ...any) { r.failed = true; r.msg = f; panic(r) }
func (r *recorder) Fatal(a ...any)            { r.failed = true; panic(r) }
func (r *recorder) run(fn func(testing.TB))   { defer func() { _ = recover() }(); fn(r) }

func TestCompare(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "out.json")

	r := &recorder{TB: t}
	r.run(func(tb testing.TB) { golden.Compare(tb, path, []byte("one\n"), false) })
	if !r.failed || !strings.Contains(r.msg, "-update") {
		t.Fatalf("missing golden file: failed %v, message %q; want a failure naming -update", r.failed, r.msg)
	}

	r = &recorder{TB: t}
	r.run(func(tb testing.TB) { golden.Compare(tb, path, []byte("one\n"), true) })
	if r.failed {
		t.Fatalf("update: failed with %q", r.msg)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "one\n" {
		t.Fatalf("update wrote %q, %v; want %q", b, err, "one\n")
	}

	r = &recorder{TB: t}
	r.run(func(tb testing.TB) { golden.Compare(tb, path, []byte("one\n"), false) })
	if r.failed {
		t.Errorf("same output: failed with %q", r.msg)
	}

	r = &recorder{TB: t}
	r.run(func(tb testing.TB) { golden.Compare(tb, path, []byte("two\n"), false) })
	if !r.failed || !strings.Contains(r.msg, "differs") {
		t.Errorf("different output: failed %v, message %q; want a diff", r.failed, r.msg)
	}
}
