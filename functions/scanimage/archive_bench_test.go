package scanimage_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/palisade-sec/palisade/shared/scanner/scantest"
)

var (
	palisadeBin = flag.String("palisade-cli", "", "palisade binary for BenchmarkScanArchiveCLI (default: built from this tree)")
	trivyBin    = flag.String("trivy-cli", "", "trivy binary for the benchmarks that run the Trivy CLI (default: built from the module)")
)

// storedUncompressed is a layer that tarball.Write stores as `docker save`
// does: the layer's tar itself, named <diff ID>.tar, not gzipped.
type storedUncompressed struct {
	v1.Layer
	size int64
}

func uncompressedLayer(b *testing.B, l v1.Layer) v1.Layer {
	rc, err := l.Uncompressed()
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		b.Fatal(err)
	}
	return storedUncompressed{Layer: l, size: n}
}

func (l storedUncompressed) Compressed() (io.ReadCloser, error) { return l.Layer.Uncompressed() }
func (l storedUncompressed) Digest() (v1.Hash, error)           { return l.Layer.DiffID() }
func (l storedUncompressed) Size() (int64, error)               { return l.size, nil }
func (l storedUncompressed) MediaType() (types.MediaType, error) {
	return types.DockerUncompressedLayer, nil
}

// dockerSave writes an ~86 MB `docker save` archive: a Debian base layer
// with its package DB and vulnerable packages, two 20 MB data layers and a
// 36 MB app layer, all stored uncompressed. It returns the path and the
// archive's size in MB.
func dockerSave(b *testing.B) (string, float64) {
	b.Helper()
	layers := []v1.Layer{
		uncompressedLayer(b, bigLayer(b, 11, 40, 256<<10, scantest.DebianFiles())),
		uncompressedLayer(b, bigLayer(b, 12, 80, 256<<10, nil)),
		uncompressedLayer(b, bigLayer(b, 13, 80, 256<<10, nil)),
		uncompressedLayer(b, bigLayer(b, 14, 144, 256<<10, nil)),
	}
	img := scantest.Image(b, layers...)
	tag, err := name.NewTag("example.com/shop/web:1.4.2")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "web.tar")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return path, float64(fi.Size()) / (1 << 20)
}

func buildBinary(b *testing.B, given, pkg string) string {
	b.Helper()
	if given != "" {
		return given
	}
	out := filepath.Join(b.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOEXPERIMENT=jsonv2")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build %s: %v\n%s", pkg, err, msg)
	}
	return out
}

// runCLI runs one whole process, its standard output written to stdout,
// and returns its peak RSS in MB.
func runCLI(b *testing.B, stdout, exe string, args ...string) float64 {
	b.Helper()
	out, err := os.Create(stdout)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "PALISADE_LOG_LEVEL=warn")
	cmd.Stdout, cmd.Stderr = out, &stderr
	peak, err := runSampled(cmd)
	if err != nil {
		b.Fatalf("%s: %v\n%s", filepath.Base(exe), err, stderr.Bytes())
	}
	return peak
}

// runSampled runs cmd and returns its peak resident memory in MB, sampled
// from /proc while it runs. The rusage of an exec'd child is no use here:
// Linux carries the high-water mark of the process that started it across
// exec, so every child would report at least this benchmark's own memory.
func runSampled(cmd *exec.Cmd) (float64, error) {
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	comm := filepath.Base(cmd.Path)
	comm = comm[:min(len(comm), 15)]
	var peakKB int
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if data, err := os.ReadFile(status); err == nil {
			var name string
			var hwm int
			for line := range strings.SplitSeq(string(data), "\n") {
				k, v, _ := strings.Cut(line, ":")
				switch k {
				case "Name":
					name = strings.TrimSpace(v)
				case "VmHWM":
					hwm, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				}
			}
			// Until exec completes the child still shares this process's
			// memory, and its name.
			if name == comm {
				peakKB = max(peakKB, hwm)
			}
		}
		select {
		case err := <-done:
			return float64(peakKB) / 1024, err
		case <-t.C:
		}
	}
}

// BenchmarkScanArchiveCLI runs `palisade scan --input TAR` and `trivy image
// --input TAR` side by side as whole processes (start-up, DB open, analysis,
// report) on the same `docker save` archive and the same fixture DB, offline,
// each with an empty layer cache. Both must report the same number of
// vulnerabilities. -palisade-cli and -trivy-cli take prebuilt binaries.
// A binary that go build has just written can show a higher peak RSS than
// a copy of it (the kernel maps its freshly cached file pages in larger
// blocks); compare RSS on copies.
func BenchmarkScanArchiveCLI(b *testing.B) {
	archive, archiveMB := dockerSave(b)
	dbDir := scantest.FixtureDB(b)
	palisade := buildBinary(b, *palisadeBin, "github.com/palisade-sec/palisade/functions")
	trivy := trivyCLI(b)
	var counts [2]int
	for i, tool := range []struct {
		name string
		run  func(cache, report string) float64
	}{
		{"palisade", func(cache, report string) float64 {
			return runCLI(b, report, palisade, "scan", "--input", archive, "--cache-dir", cache, "--skip-db-update", "--format", "json")
		}},
		{"trivy-cli", func(cache, report string) float64 {
			return runCLI(b, os.DevNull, trivy, "image", "--input", archive, "--cache-dir", cache, "--skip-db-update", "--skip-java-db-update",
				"--offline-scan", "--scanners", "vuln", "--format", "json", "--quiet", "--skip-version-check",
				"--disable-telemetry", "--output", report)
		}},
	} {
		b.Run(tool.name, func(b *testing.B) {
			var peak float64
			report := filepath.Join(b.TempDir(), "report.json")
			for b.Loop() {
				b.StopTimer()
				cache := b.TempDir()
				copyDB(b, dbDir, filepath.Join(cache, "db"))
				b.StartTimer()
				peak = max(peak, tool.run(cache, report))
			}
			counts[i] = vulnerabilities(b, report)
			b.ReportMetric(peak, "peak-RSS-MB")
			b.ReportMetric(archiveMB, "archive-MB")
			b.ReportMetric(float64(counts[i]), "findings")
		})
	}
	if counts[0] != counts[1] {
		b.Errorf("palisade reported %d vulnerabilities, the Trivy CLI %d: the timings do not compare like with like", counts[0], counts[1])
	}
}

// vulnerabilities counts the findings of a palisade or Trivy JSON report.
func vulnerabilities(b *testing.B, path string) int {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var r struct {
		Findings []json.RawMessage `json:"findings"`
		Results  []struct {
			Vulnerabilities []json.RawMessage
		}
	}
	if err := json.Unmarshal(data, &r); err != nil {
		b.Fatalf("%s: %v", path, err)
	}
	n := len(r.Findings)
	for _, res := range r.Results {
		n += len(res.Vulnerabilities)
	}
	return n
}
