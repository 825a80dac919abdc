package scanner_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/msrc/msrctest"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
	"github.com/palisade-sec/palisade/tests/cputime"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// BenchmarkMatchWindowsImage is a rescan's work for one Windows image, end
// to end in Match: the Windows data (twelve synthetic months shaped like
// the real ones) loaded from the store's state container as the pipeline
// keeps it, the identity matched, the language packages matched by Trivy,
// and every finding in the stored shape. An image a year behind has every
// fix of the year as a finding (the worst case); a current one, none.
func BenchmarkMatchWindowsImage(b *testing.B) {
	ids, docs := msrctest.Synth(b, msrctest.Realistic)
	f := msrctest.NewServer(b)
	for i, id := range ids {
		f.Publish(id, "2024-12-10T08:00:00Z", docs[i])
	}
	now := func() time.Time { return time.Date(2024, 12, 20, 0, 0, 0, 0, time.UTC) }
	src := msrc.NewSource(msrc.StateStore{St: testenv.Store(b), Now: now}, msrc.Options{BaseURL: f.BaseURL(), Now: now})
	s, err := scanner.New(b.Context(), scanner.Options{CacheDir: b.TempDir(), DBDir: scantest.FixtureDB(b), Logger: zerolog.Nop(), Windows: src})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	if db, _ := s.RefreshDB(b.Context()); len(db.Windows.Months) != 12 {
		b.Fatalf("windows data %+v", db.Windows)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "windows-inventory.golden.json"))
	if err != nil {
		b.Fatal(err)
	}
	img := model.Image{Digest: "sha256:" + strings.Repeat("ab", 32), Registry: "contoso.azurecr.io", Repository: "shop/api", Platform: "windows/amd64"}
	for _, tc := range []struct{ name, osVersion string }{{"a-year-behind", "10.0.20348.1000"}, {"current", "10.0.20348.3200"}} {
		b.Run(tc.name, func(b *testing.B) {
			var inv model.Inventory
			if err := json.Unmarshal(raw, &inv); err != nil {
				b.Fatal(err)
			}
			inv.OSName, inv.Groups[0].Packages[0].Version = tc.osVersion, tc.osVersion
			n := 0
			b.ReportAllocs()
			cpu := cputime.Process(b)
			for b.Loop() {
				m, err := s.Match(b.Context(), img, inv)
				if err != nil || m.Image.Status != model.ImageActive {
					b.Fatalf("%v: %+v", err, m.Image)
				}
				n = len(m.Findings)
			}
			b.ReportMetric(float64(cputime.Process(b)-cpu)/float64(b.N)/float64(time.Microsecond), "cpu-µs/op")
			b.ReportMetric(float64(n), "findings")
		})
	}
}
