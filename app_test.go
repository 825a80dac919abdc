package palisade_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade"
	"github.com/palisade-sec/palisade/shared/funchost"
)

// TestEmbeddedAppIsTheSourceTree: the definitions built into the binary are
// the function folders of this tree, as `make app` copies them.
func TestEmbeddedAppIsTheSourceTree(t *testing.T) {
	embedded, err := funchost.LoadAppFS(palisade.App())
	if err != nil {
		t.Fatal(err)
	}
	disk, err := funchost.LoadApp(".")
	if err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join("functions", "*", "function.json"))
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(filepath.Dir(p)))
	}
	if d := cmp.Diff(names, embedded.Names()); d != "" || len(names) < 6 {
		t.Errorf("embedded functions (-disk +embedded):\n%s", d)
	}
	if d := cmp.Diff(disk.Functions, embedded.Functions); d != "" {
		t.Errorf("function definitions (-disk +embedded):\n%s", d)
	}
	if d := cmp.Diff(disk.Host, embedded.Host); d != "" || embedded.Host.CustomHandler == nil {
		t.Errorf("host.json (-disk +embedded):\n%s", d)
	}
	if _, err := os.Stat("host.json"); err != nil {
		t.Fatal(err)
	}
}
