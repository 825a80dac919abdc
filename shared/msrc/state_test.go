package msrc_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/msrc/msrctest"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// The stored form in the real (embedded) store's state container, as the
// pipeline keeps it.
func TestStateStore(t *testing.T) {
	f, _, clk, opts := setup(t)
	db := testenv.Store(t)
	st := msrc.StateStore{St: db, Now: clk.Now}
	refreshed, _, err := msrc.NewSource(st, opts).Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	loaded, lst, err := msrc.NewSource(st, opts).Load(t.Context())
	if err != nil || lst.Stale {
		t.Fatalf("load: %v, %q", err, lst.Problems)
	}
	if loaded.Version() != refreshed.Version() {
		t.Fatalf("version %s, refreshed %s", loaded.Version(), refreshed.Version())
	}

	items := func() []string {
		var ids []string
		err := store.Each(t.Context(), db, store.State, store.Query{PartitionKey: msrc.KindMSRC}, func(s model.State) error {
			if s.Kind != msrc.KindMSRC || !strings.HasPrefix(s.ID, "msrc-") || s.UpdatedAt.IsZero() || len(s.Data) == 0 {
				t.Errorf("item %s: kind %q, updated %v, %d bytes", s.ID, s.Kind, s.UpdatedAt, len(s.Data))
			}
			ids = append(ids, s.ID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		return ids
	}
	before := items()
	if !slices.Contains(before, msrc.ManifestID) || len(before) < 4 {
		t.Fatalf("stored %q", before)
	}

	// January arrives, November leaves the window and its items go.
	clk.Set(time.Date(2025, 1, 15, 6, 0, 0, 0, time.UTC))
	f.Publish("2025-Jan", msrctest.JanRelease, readDoc(t, "2025-Jan"))
	if _, _, err := msrc.NewSource(st, opts).Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range items() {
		if strings.HasPrefix(id, "msrc-2024-Nov-") {
			t.Errorf("%s still stored", id)
		}
	}
	ix, _, err := msrc.NewSource(st, opts).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := ix.Months(); !slices.Equal(got, []string{"2024-Dec", "2025-Jan"}) {
		t.Fatalf("months %q", got)
	}
}
