package msrc_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/msrc/msrctest"
)

// The stored form in a directory, as `palisade scan` keeps it under its
// cache directory: a second process loads it with no request to MSRC, and
// a refresh deletes the files of a month leaving the window.
func TestDirStore(t *testing.T) {
	f, _, clk, opts := setup(t)
	dir := filepath.Join(t.TempDir(), "msrc")
	st := msrc.DirStore{Dir: dir}
	refreshed, _, err := msrc.NewSource(st, opts).Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f.Requests()
	f.Close()
	loaded, lst, err := msrc.NewSource(msrc.DirStore{Dir: dir}, opts).Load(t.Context())
	if err != nil || lst.Stale {
		t.Fatalf("load: %v, %q", err, lst.Problems)
	}
	if loaded.Version() != refreshed.Version() {
		t.Fatalf("version %s, refreshed %s", loaded.Version(), refreshed.Version())
	}
	files := func() []string {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}
	before := files()
	if !slices.Contains(before, msrc.ManifestID+".json") || len(before) < 4 {
		t.Fatalf("files %q", before)
	}
	for _, n := range before {
		if strings.HasSuffix(n, ".tmp") {
			t.Errorf("temporary file %s left behind", n)
		}
	}

	g := msrctest.NewServer(t)
	g.Publish("2024-Dec", msrctest.DecRelease, readDoc(t, "2024-Dec"))
	g.Publish("2025-Jan", msrctest.JanRelease, readDoc(t, "2025-Jan"))
	clk.Set(time.Date(2025, 1, 15, 6, 0, 0, 0, time.UTC))
	opts.BaseURL = g.BaseURL()
	if _, _, err := msrc.NewSource(st, opts).Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := g.Requests(); !slices.Equal(got, []string{"2025-Jan"}) {
		t.Errorf("downloaded %q, want only the new month", got)
	}
	for _, n := range files() {
		if strings.HasPrefix(n, "msrc-2024-Nov-") {
			t.Errorf("%s still stored", n)
		}
	}
}

func TestDirStoreRefusesPathsInIDs(t *testing.T) {
	st := msrc.DirStore{Dir: t.TempDir()}
	for _, id := range []string{"", "../manifest", "a/b", `a\b`, "x.json"} {
		if err := st.Save(t.Context(), id, []byte("{}")); err == nil {
			t.Errorf("Save(%q) succeeded", id)
		}
		if _, _, err := st.Load(t.Context(), id); err == nil {
			t.Errorf("Load(%q) succeeded", id)
		}
	}
	if err := st.Delete(t.Context(), "never-saved"); err != nil {
		t.Errorf("deleting a missing item: %v", err)
	}
}
