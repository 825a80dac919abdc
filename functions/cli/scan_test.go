package cli_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/palisade-sec/palisade/functions/cli"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
)

// withFixtureDB points the settings at a cache dir holding the fixture DB.
func withFixtureDB(t *testing.T) {
	t.Helper()
	cache := t.TempDir()
	files, _ := filepath.Glob(filepath.Join("..", "..", "shared", "scanner", "testdata", "db", "*.yaml"))
	if err := scanner.BuildFixtureDB(filepath.Join(cache, "db"), scantest.DBUpdatedAt, files...); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PALISADE_TRIVY_CACHE_DIR", cache)
	t.Setenv("PALISADE_TRIVY_SKIP_DB_UPDATE", "true")
	t.Setenv("PALISADE_LOG_LEVEL", "warn")
	// No exploitation feed unless a test gives one (withFeeds).
	t.Setenv("PALISADE_KEV_URL", "")
	t.Setenv("PALISADE_EPSS_URL", "")
}

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Scan(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

type jsonOut struct {
	Image    model.Image
	Findings []model.Finding
}

func TestScanRegistryImageTableAndFailOn(t *testing.T) {
	withFixtureDB(t)
	withFeeds(t, "CVE-2023-4911")
	host := scantest.Registry(t)
	scantest.Push(t, host, "team/web", "2.1", scantest.Image(t, scantest.Layer(t, scantest.DebianFiles())))
	ref := host + "/team/web:2.1"
	for _, tc := range []struct {
		failOn string
		want   int
	}{{"", cli.ExitOK}, {"high", cli.ExitPolicy}, {"critical", cli.ExitOK}} {
		// Flags are read before and after the image, as the README's
		// pipeline example writes them.
		for _, args := range [][]string{{"--fail-on", tc.failOn, ref}, {ref, "--fail-on", tc.failOn}} {
			if tc.failOn == "" {
				args = []string{ref}
			}
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, out, stderr := run(t, args...)
				if code != tc.want {
					t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.want, stderr)
				}
				for _, want := range []string{"debian 12.5", "CVE-2023-4911", "libc6", "2.36-9+deb12u3", "yes", "HIGH: 2"} {
					if !strings.Contains(out, want) {
						t.Errorf("table lacks %q:\n%s", want, out)
					}
				}
			})
		}
	}
}

func TestScanLocalArchives(t *testing.T) {
	withFixtureDB(t)
	img := scantest.Image(t, scantest.Layer(t, scantest.AlpineFiles()))
	tag, _ := name.NewTag("example.com/team/alpine:1")
	tarPath := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
		t.Fatal(err)
	}
	ociDir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(ociDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := run(t, "--format", "json", "--input", tarPath)
	if code != 0 {
		t.Fatalf("docker save tar: exit %d: %s", code, stderr)
	}
	var got jsonOut
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Image.OS != "alpine 3.19.1" || len(got.Findings) != 2 || got.Findings[0].FixedVersion == "" {
		t.Fatalf("docker save tar: %+v", got)
	}

	code, out, stderr = run(t, "--format", "sarif", "--fail-on", "medium", "--input", ociDir)
	if code != cli.ExitPolicy {
		t.Fatalf("OCI layout: exit %d, want 1: %s", code, stderr)
	}
	var sarif struct {
		Version string
		Runs    []struct {
			Results []struct {
				RuleID string
				Level  string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &sarif); err != nil {
		t.Fatal(err)
	}
	if sarif.Version != "2.1.0" || len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) != 2 || sarif.Runs[0].Results[0].Level != "warning" {
		t.Fatalf("sarif: %+v", sarif)
	}
}

func TestDemoDBFallback(t *testing.T) {
	t.Setenv("PALISADE_TRIVY_CACHE_DIR", t.TempDir())
	t.Setenv("PALISADE_TRIVY_SKIP_DB_UPDATE", "true")
	t.Setenv("PALISADE_KEV_URL", "")
	t.Setenv("PALISADE_EPSS_URL", "")
	img := scantest.Image(t, scantest.Layer(t, scantest.DebianFiles()))
	tag, _ := name.NewTag("example.com/team/web:1")
	tarPath := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "--format", "json", "--input", tarPath, "--demo")
	if code != cli.ExitDemo {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got jsonOut
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Image.DemoData || !strings.HasPrefix(got.Image.DBVersion, "demo-") || len(got.Findings) == 0 || !got.Findings[0].DemoData {
		t.Fatalf("want demo-marked results, got %+v", got.Image)
	}
	if !strings.Contains(stderr, "DEMO") {
		t.Fatalf("stderr does not say the results are demo data:\n%s", stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	withFixtureDB(t)
	for _, args := range [][]string{{}, {"a", "b"}, {"--format", "xml", "x"}, {"--fail-on", "severe", "x"}, {"--input", "/does/not/exist"}, {"x", "--bogus"}, {"--input", "a.tar", "x"}} {
		if code, _, _ := run(t, args...); code != cli.ExitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, cli.ExitUsage)
		}
	}
}
