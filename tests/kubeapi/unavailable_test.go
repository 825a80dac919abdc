package kubeapi

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// endRecorder records how unavailable ends a test instead of ending it.
type endRecorder struct {
	testing.TB
	skip, fatal string
}

func (r *endRecorder) Helper()                        {}
func (r *endRecorder) Skipf(format string, a ...any)  { r.skip = fmt.Sprintf(format, a...) }
func (r *endRecorder) Fatalf(format string, a ...any) { r.fatal = fmt.Sprintf(format, a...) }

func TestMissingBinaries(t *testing.T) {
	t.Setenv(EnvAPIServer, "/nonexistent/kube-apiserver")
	_, _, err := Binaries()
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "/nonexistent/kube-apiserver") ||
		!strings.Contains(err.Error(), MakeTarget) {
		t.Fatalf("Binaries() = %v, want ErrNotInstalled naming the path and %q", err, MakeTarget)
	}

	for _, tc := range []struct {
		name        string
		require     string
		err         error
		skip, fatal bool
	}{
		{name: "missing, developer run", err: err, skip: true},
		{name: "missing, required", require: "1", err: err, fatal: true},
		{name: "start failure", err: errors.New("kube-apiserver: exited"), fatal: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvRequire, tc.require)
			r := &endRecorder{TB: t}
			unavailable(r, tc.err)
			if (r.skip != "") != tc.skip || (r.fatal != "") != tc.fatal {
				t.Fatalf("skip %q, fatal %q; want skip %v, fatal %v", r.skip, r.fatal, tc.skip, tc.fatal)
			}
			if tc.skip && !strings.Contains(r.skip, MakeTarget) {
				t.Errorf("skip message %q does not name %s", r.skip, MakeTarget)
			}
		})
	}
}
