package msrc

import (
	"bytes"
	"errors"
	"regexp"
	"slices"
	"testing"

	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// FuzzDecode feeds documents as the API (or anyone between) might serve
// them through decoding, extraction, the stored form and matching.
func FuzzDecode(f *testing.F) {
	kbForm := regexp.MustCompile(`^KB[0-9]{6,8}$`)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(bytes.NewReader(data), "2024-Nov")
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error outside ErrMalformed: %v", err)
			}
			return
		}
		fixed := map[int]map[string]bool{} // build → CVEs
		for _, v := range m.Vulns {
			if !vulnIDRE.MatchString(v.CVE) || len(v.Fixes) == 0 || len(v.Title) > maxTitle {
				t.Fatalf("vulnerability kept: %+v", v)
			}
			for _, fx := range v.Fixes {
				if !slices.Contains(m.Builds, fx.Build) || fx.Revision <= 0 || fx.KB != "" && !kbForm.MatchString(fx.KB) ||
					len(fx.Supersedes) > maxSupersedes || fx.Score < 0 || fx.Score > 10 {
					t.Fatalf("fix kept: %+v", fx)
				}
				if fixed[fx.Build] == nil {
					fixed[fx.Build] = map[string]bool{}
				}
				fixed[fx.Build][v.CVE] = true
			}
		}
		// The stored form gives back the same month.
		_, ids, items, err := chunkMonth(m, 512)
		if err != nil {
			t.Fatal(err)
		}
		back, err := assembleMonth(MonthStatus{ID: m.ID, Hash: monthHash(m), Chunks: ids}, items)
		if err != nil {
			t.Fatalf("stored form: %v", err)
		}
		if monthHash(back) != monthHash(m) {
			t.Fatal("stored form changed the month")
		}
		// An image at revision 0 lacks every fix of its release.
		ix := NewIndex([]Month{back})
		for _, b := range m.Builds {
			p, _ := windowsimage.ProductForBuild(b)
			id := windowsimage.Identity{OSVersion: "10.0.x.0", Version: windowsimage.Version{Major: 10, Build: b},
				Product: p, Edition: windowsimage.NanoServer}
			fs, err := ix.Match(id)
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != len(fixed[b]) {
				t.Fatalf("build %d: %d findings for %d CVEs", b, len(fs), len(fixed[b]))
			}
		}
	})
}

// FuzzDecodeUpdates feeds the updates index through its decoder.
func FuzzDecodeUpdates(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := DecodeUpdates(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error outside ErrMalformed: %v", err)
			}
			return
		}
		for _, e := range u.Value {
			if mt, err := ParseMonth(e.ID); err == nil && MonthID(mt) != e.ID {
				t.Fatalf("month %q does not round-trip", e.ID)
			}
			_, _ = parseTime(e.CurrentReleaseDate)
		}
	})
}
