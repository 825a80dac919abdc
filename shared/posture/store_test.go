package posture

import (
	"context"
	"testing"

	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// testStore is the embedded store in a temporary folder.
type testStore struct{ store.Store }

func newTestStore(t testing.TB) *testStore {
	t.Helper()
	return &testStore{Store: testenv.Store(t)}
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
