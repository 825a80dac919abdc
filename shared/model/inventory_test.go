package model

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestInventoryChunkRoundTrip(t *testing.T) {
	big := Inventory{OSFamily: "debian", OSName: "12.5"}
	os := PackageGroup{Type: "debian", Class: "os-pkgs"}
	for i := range 3000 {
		os.Packages = append(os.Packages, Package{Name: fmt.Sprintf("lib%04d", i), Version: "1.2.3-4", SrcName: "src", Arch: "amd64", PURL: fmt.Sprintf("pkg:deb/debian/lib%04d@1.2.3-4?arch=amd64", i)})
	}
	big.Groups = []PackageGroup{os, {Type: "node-pkg", Class: "lang-pkgs", Target: "app/package.json", Packages: []Package{{Name: "lodash", Version: "4.17.20"}}}}

	for _, tc := range []struct {
		name       string
		inv        Inventory
		wantChunks int
	}{
		{"empty", Inventory{OSFamily: "alpine", Groups: []PackageGroup{}}, 1},
		{"small", Inventory{Groups: big.Groups[1:]}, 1},
		{"large", big, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chunks := tc.inv.Chunk("sha256:abc", 0)
			if tc.wantChunks > 0 && len(chunks) != tc.wantChunks {
				t.Fatalf("%d chunks, want %d", len(chunks), tc.wantChunks)
			}
			for _, c := range chunks {
				b, _ := json.Marshal(c)
				if len(b) > 2*InventoryChunkBytes {
					t.Fatalf("chunk %d is %d bytes", c.Index, len(b))
				}
				if c.Chunks != len(chunks) || c.ID != InventoryChunkID("sha256:abc", c.Index) {
					t.Fatalf("chunk header %+v", c)
				}
			}
			// Reverse order on purpose: assembly sorts.
			rev := make([]InventoryChunk, len(chunks))
			for i, c := range chunks {
				rev[len(chunks)-1-i] = c
			}
			got, err := AssembleInventory(rev)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.inv
			if want.Groups == nil {
				want.Groups = []PackageGroup{}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("round trip (-want +got):\n%s", d)
			}
		})
	}
	chunks := big.Chunk("sha256:abc", 0)
	if len(chunks) < 2 {
		t.Fatalf("a 3000-package inventory should need several chunks, got %d", len(chunks))
	}
	if _, err := AssembleInventory(chunks[1:]); err == nil {
		t.Fatal("assembling with a missing chunk succeeded")
	}
}
