package testenv

import (
	"path/filepath"
	"testing"

	"github.com/palisade-sec/palisade/shared/store/embedded"
)

// Store opens an embedded store in t's temporary directory, closed when the
// test ends. (The embedded store's own tests cannot use it: this package
// imports that one.)
func Store(t testing.TB) *embedded.Store {
	t.Helper()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "palisade.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
