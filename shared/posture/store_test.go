package posture

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/embedded"
)

// testStore is the embedded store in a temporary folder.
type testStore struct{ store.Store }

func newTestStore(t testing.TB) *testStore {
	t.Helper()
	s, err := embedded.Open(filepath.Join(t.TempDir(), "palisade.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &testStore{Store: s}
}

// count returns the number of items of a container.
func (s *testStore) count(c store.Container) int {
	n := 0
	err := store.Each(context.Background(), s.Store, c, store.Query{Limit: 1000}, func(map[string]any) error {
		n++
		return nil
	})
	if err != nil {
		panic(err)
	}
	return n
}
