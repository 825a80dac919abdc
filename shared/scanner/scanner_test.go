package scanner_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func newScanner(t *testing.T, opts scanner.Options) *scanner.Scanner {
	t.Helper()
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	if opts.DBDir == "" {
		opts.DBDir = scantest.FixtureDB(t)
	}
	opts.Logger = zerolog.New(zerolog.NewTestWriter(t))
	s, err := scanner.New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func golden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(b)+"\n"); d != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, d)
	}
}

func TestScanRegistryImages(t *testing.T) {
	host := scantest.Registry(t)
	s := newScanner(t, scanner.Options{})
	if got := s.DB().Version; got != scantest.DBVersion {
		t.Fatalf("DB version %q, want %q", got, scantest.DBVersion)
	}
	for _, tc := range []struct {
		name  string
		files []scantest.File
		os    string
		count model.Counts
	}{
		{"debian", scantest.DebianFiles(), "debian 12.5", model.Counts{model.SeverityHigh: 2, model.SeverityMedium: 1, model.SeverityLow: 1}},
		{"alpine", scantest.AlpineFiles(), "alpine 3.19.1", model.Counts{model.SeverityMedium: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := scantest.Image(t, scantest.Layer(t, tc.files))
			digest := scantest.Push(t, host, "team/"+tc.name, "1.0", img)
			res, err := s.Scan(t.Context(), scanner.Target{Registry: host, Repository: "team/" + tc.name, Digest: digest, Tag: "1.0"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Image.Digest != digest || res.Image.OS != tc.os || res.Image.Status != model.ImageActive ||
				res.Image.Platform != "linux/amd64" || res.Image.DBVersion != scantest.DBVersion {
				t.Fatalf("summary %+v", res.Image)
			}
			if d := cmp.Diff(tc.count, res.Image.Counts); d != "" {
				t.Errorf("counts (-want +got):\n%s", d)
			}
			// The digest differs per run only if the image does; findings
			// are keyed by it, so normalise it for the golden file.
			golden(t, tc.name+"-findings.golden.json", normalise(res.Findings, digest, host))
			golden(t, tc.name+"-inventory.golden.json", res.Inventory)

			// Re-matching the stored inventory gives the same findings.
			m, err := s.Match(t.Context(), res.Image, res.Inventory)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(res.Findings, m.Findings); d != "" {
				t.Errorf("Match of the inventory differs from Scan (-scan +match):\n%s", d)
			}
		})
	}
}

// normalise replaces the run-specific registry host in findings.
func normalise(fs []model.Finding, digest, host string) []model.Finding {
	out := make([]model.Finding, len(fs))
	for i, f := range fs {
		if f.Digest != digest {
			f.Digest = "MISMATCH " + f.Digest
		}
		f.Registry = "REGISTRY"
		out[i] = f
	}
	return out
}
