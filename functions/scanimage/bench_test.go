package scanimage_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/scanimage"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
	"github.com/palisade-sec/palisade/shared/store/embedded"
)

// bigLayer is a layer of n files of size bytes each, half random and half
// text, generated from seed on every read so the image is never held in
// memory.
func bigLayer(b *testing.B, seed uint64, files, size int, extra []scantest.File) v1.Layer {
	b.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
			buf := make([]byte, size)
			text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), size/55+1)
			for i := range files {
				for j := 0; j < size/2; j += 8 {
					v := rng.Uint64()
					for k := 0; k < 8 && j+k < size/2; k++ {
						buf[j+k] = byte(v >> (8 * k))
					}
				}
				copy(buf[size/2:], text)
				hdr := &tar.Header{Name: fmt.Sprintf("opt/data/%d/file-%05d.bin", seed, i), Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
				if err := tw.WriteHeader(hdr); err != nil {
					pw.CloseWithError(err)
					return
				}
				if _, err := tw.Write(buf); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			for _, f := range extra {
				if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: 0o644, Size: int64(len(f.Body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
					pw.CloseWithError(err)
					return
				}
				_, _ = tw.Write(f.Body)
			}
			pw.CloseWithError(tw.Close())
		}()
		return pr, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

type benchImages struct {
	registry         string
	first, second    string // digests
	firstRepo        string
	secondRepo       string
	uncompressedMB   float64
	compressedMB     float64
	secondTopLayerMB float64
}

var (
	benchOnce sync.Once
	benchImg  benchImages
)

// images pushes a ~100 MB image (a Debian base layer with its package DB,
// three 20 MB data layers, a 40 MB app layer) and a second image sharing
// all but the app layer, to a registry that lives for the whole run.
func images(b *testing.B) benchImages {
	benchOnce.Do(func() {
		reg := scantest.Registry(&testing.T{})
		base := bigLayer(b, 1, 40, 256<<10, scantest.DebianFiles())
		data := []v1.Layer{bigLayer(b, 2, 80, 256<<10, nil), bigLayer(b, 3, 80, 256<<10, nil), bigLayer(b, 4, 80, 256<<10, nil)}
		app1 := bigLayer(b, 5, 160, 256<<10, nil)
		app2 := bigLayer(b, 6, 40, 256<<10, nil)
		first := scantest.Image(b, append(append([]v1.Layer{base}, data...), app1)...)
		second := scantest.Image(b, append(append([]v1.Layer{base}, data...), app2)...)
		benchImg = benchImages{registry: reg, firstRepo: "bench/first", secondRepo: "bench/second"}
		benchImg.first = scantest.Push(b, reg, benchImg.firstRepo, "1", first)
		benchImg.second = scantest.Push(b, reg, benchImg.secondRepo, "1", second)
		ls, _ := first.Layers()
		for _, l := range ls {
			c, _ := l.Size()
			benchImg.compressedMB += float64(c) / (1 << 20)
		}
		benchImg.uncompressedMB = float64(40+80*3+160) * 256 / 1024
		benchImg.secondTopLayerMB = float64(40) * 256 / 1024
	})
	if benchImg.registry == "" {
		b.Fatal("benchmark images were not built")
	}
	return benchImg
}

// peakMem samples the Go runtime's memory (heap and stacks in use, not
// released to the OS) until stop is called and returns the peak in MB.
func peakMem() (stop func() float64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if v := ms.Sys - ms.HeapReleased; v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 { close(done); <-finished; return float64(peak.Load()) / (1 << 20) }
}

// scanOnce runs one ImagePushed event through Handle with a fresh store.
func scanOnce(b *testing.B, cacheDir, dbDir, registry, repo, digest string) {
	b.Helper()
	sc, err := scanner.New(context.Background(), scanner.Options{CacheDir: cacheDir, DBDir: dbDir, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	st, err := embedded.Open(filepath.Join(b.TempDir(), "s.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	fn := scanimage.New(st, sc, scanimage.Options{Registries: []string{registry}})
	ev := eventBench(registry, repo, digest)
	req := &customhandler.Request{Data: map[string]json.RawMessage{"event": ev}}
	if _, err := fn.Handle(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	if s := fn.Stats(); s.Scanned != 1 {
		b.Fatalf("not scanned: %+v", s)
	}
}

func eventBench(registry, repo, digest string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"id": "bench", "eventType": "Microsoft.ContainerRegistry.ImagePushed", "eventTime": "2026-05-02T10:00:00Z",
		"subject": repo, "dataVersion": "1.0",
		"data": map[string]any{"timestamp": "2026-05-02T10:00:00Z", "target": map[string]any{"repository": repo, "digest": digest, "tag": "1"},
			"request": map[string]any{"host": registry}},
	})
	return b
}

func trivyCLI(b *testing.B) string {
	if *trivyBin != "" {
		return *trivyBin
	}
	if _, err := os.Stat("/tmp/trivy-cli"); err == nil {
		return "/tmp/trivy-cli"
	}
	out := filepath.Join(b.TempDir(), "trivy")
	cmd := exec.Command("go", "build", "-o", out, "github.com/aquasecurity/trivy/cmd/trivy")
	cmd.Env = append(os.Environ(), "GOEXPERIMENT=jsonv2")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build trivy CLI: %v\n%s", err, msg)
	}
	return out
}

// runTrivy scans ref with the Trivy CLI against the same fixture DB (copied
// into cacheDir/db) and returns its peak RSS in MB.
func runTrivy(b *testing.B, exe, cacheDir, ref string) float64 {
	b.Helper()
	cmd := exec.Command(exe, "image", "--cache-dir", cacheDir, "--skip-db-update", "--skip-java-db-update",
		"--offline-scan", "--scanners", "vuln", "--image-src", "remote", "--format", "json", "--quiet",
		"--skip-version-check", "--disable-telemetry", "--output", filepath.Join(b.TempDir(), "report.json"), ref)
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	peak, err := runSampled(cmd)
	if err != nil {
		b.Fatalf("trivy: %v\n%s", err, msg.Bytes())
	}
	return peak
}

func copyDB(b *testing.B, from, to string) {
	b.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		b.Fatal(err)
	}
	for _, f := range []string{"trivy.db", "metadata.json"} {
		data, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, f), data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanOnPush measures an ImagePushed event to stored findings for
// a ~100 MB image: cold (empty layer cache), warm (every layer cached), and
// a second image sharing all but its top layer; side by side with the Trivy
// CLI built from the same module scanning the same image with the same DB.
func BenchmarkScanOnPush(b *testing.B) {
	im := images(b)
	dbDir := scantest.FixtureDB(b)
	ref1 := im.registry + "/" + im.firstRepo + "@" + im.first
	ref2 := im.registry + "/" + im.secondRepo + "@" + im.second

	b.Run("palisade-cold", func(b *testing.B) {
		var peak float64
		for b.Loop() {
			b.StopTimer()
			cache := b.TempDir()
			runtime.GC()
			stop := peakMem()
			b.StartTimer()
			scanOnce(b, cache, dbDir, im.registry, im.firstRepo, im.first)
			b.StopTimer()
			peak = max(peak, stop())
			b.StartTimer()
		}
		b.ReportMetric(peak, "peak-MB")
		b.ReportMetric(im.uncompressedMB, "image-MB")
		b.ReportMetric(im.compressedMB, "compressed-MB")
	})
	b.Run("palisade-warm", func(b *testing.B) {
		cache := b.TempDir()
		scanOnce(b, cache, dbDir, im.registry, im.firstRepo, im.first)
		for b.Loop() {
			scanOnce(b, cache, dbDir, im.registry, im.firstRepo, im.first)
		}
	})
	b.Run("palisade-second-image-shared-base", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			cache := b.TempDir()
			scanOnce(b, cache, dbDir, im.registry, im.firstRepo, im.first)
			b.StartTimer()
			scanOnce(b, cache, dbDir, im.registry, im.secondRepo, im.second)
		}
		b.ReportMetric(im.secondTopLayerMB, "new-layer-MB")
	})
	exe := trivyCLI(b)
	b.Run("trivy-cli-cold", func(b *testing.B) {
		var peak float64
		for b.Loop() {
			b.StopTimer()
			cache := b.TempDir()
			copyDB(b, dbDir, filepath.Join(cache, "db"))
			b.StartTimer()
			peak = max(peak, runTrivy(b, exe, cache, ref1))
		}
		b.ReportMetric(peak, "peak-RSS-MB")
	})
	b.Run("trivy-cli-second-image-shared-base", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			cache := b.TempDir()
			copyDB(b, dbDir, filepath.Join(cache, "db"))
			runTrivy(b, exe, cache, ref1)
			b.StartTimer()
			runTrivy(b, exe, cache, ref2)
		}
	})
}
