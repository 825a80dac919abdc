package scanner_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
)

// archiveEntry is one file of a hand-made `docker save` archive.
type archiveEntry = scantest.File

// saveArchive writes img as `docker save` does: each layer an uncompressed
// tar under <n>/layer.tar, the config, and manifest.json naming them.
// extra entries are added after the image's own.
func saveArchive(t *testing.T, img v1.Image, edit func(*tarball.Descriptor), extra ...archiveEntry) string {
	t.Helper()
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	d := tarball.Descriptor{Config: cfgName.Hex + ".json", RepoTags: []string{"example.com/team/web:1"}}
	files := []archiveEntry{{Name: d.Config, Body: cfg}}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		p := fmt.Sprintf("%d/layer.tar", i)
		d.Layers = append(d.Layers, p)
		files = append(files, archiveEntry{Name: p, Body: b})
	}
	if edit != nil {
		edit(&d)
	}
	m, err := json.Marshal(tarball.Manifest{d})
	if err != nil {
		t.Fatal(err)
	}
	files = append(append(files, extra...), archiveEntry{Name: "manifest.json", Body: m})
	return scantest.WriteFile(t, "image.tar", scantest.Tar(t, files))
}

// scanRegistry pushes img and scans it, as the reference result.
func scanRegistry(t *testing.T, s *scanner.Scanner, img v1.Image) *scanner.Result {
	t.Helper()
	host := scantest.Registry(t)
	dig := scantest.Push(t, host, "team/web", "1", img)
	res, err := s.Scan(t.Context(), scanner.Target{Registry: host, Repository: "team/web", Digest: dig})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// sameFindings compares findings apart from the image they are keyed by.
func sameFindings(t *testing.T, want, got []model.Finding) {
	t.Helper()
	strip := func(fs []model.Finding) []model.Finding {
		out := make([]model.Finding, len(fs))
		for i, f := range fs {
			f.ID, f.Digest, f.Registry, f.Repository = "", "", "", ""
			out[i] = f
		}
		return out
	}
	if d := cmp.Diff(strip(want), strip(got)); d != "" {
		t.Errorf("findings differ from the registry scan of the same image (-registry +archive):\n%s", d)
	}
}

func TestScanDockerSaveArchives(t *testing.T) {
	img := scantest.Image(t, scantest.Layer(t, scantest.DebianFiles()),
		scantest.Layer(t, scantest.Files(map[string]string{"app/server.js": "console.log(1)\n"})))
	cfgName, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	s := newScanner(t, scanner.Options{CacheDir: t.TempDir()})
	want := scanRegistry(t, s, img)

	crane := filepath.Join(t.TempDir(), "crane.tar")
	tag, _ := name.NewTag("example.com/team/web:1")
	if err := tarball.WriteToFile(crane, tag, img); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path string }{
		// docker save: layers stored as plain tars.
		{"docker save", saveArchive(t, img, nil)},
		// go-containerregistry and crane keep the layers gzipped.
		{"gzipped layers", crane},
		// Older docker save links a layer it already wrote.
		{"linked layer", saveArchive(t, img, func(d *tarball.Descriptor) { d.Layers[1] = "dup/layer.tar" },
			archiveEntry{Name: "dup/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../1/layer.tar"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A cache of its own, so the archive's layers are really read.
			s := newScanner(t, scanner.Options{DBDir: s.DB().Dir})
			res, err := s.Scan(t.Context(), scanner.Target{Input: tc.path})
			if err != nil {
				t.Fatal(err)
			}
			// An archive has no registry manifest: the image is known by
			// its ID, the config digest.
			if res.Image.Digest != cfgName.String() || res.Image.OS != "debian 12.5" || res.Image.Platform != "linux/amd64" ||
				res.Image.Status != model.ImageActive || res.Image.MediaType == "" {
				t.Fatalf("summary %+v", res.Image)
			}
			if d := cmp.Diff(want.Image.Counts, res.Image.Counts); d != "" {
				t.Errorf("counts (-registry +archive):\n%s", d)
			}
			sameFindings(t, want.Findings, res.Findings)
			if d := cmp.Diff(want.Inventory, res.Inventory); d != "" {
				t.Errorf("inventory (-registry +archive):\n%s", d)
			}
		})
	}
}

// TestArchiveCannotPoisonTheLayerCache: the layer cache is keyed by diff ID
// and shared with registry scans. An archive whose config claims the diff
// ID of a real Debian layer for a layer without packages must fail, and
// must leave nothing under that key: a later registry scan of the real
// image, with the same cache, still finds the Debian packages.
func TestArchiveCannotPoisonTheLayerCache(t *testing.T) {
	debian := scantest.Layer(t, scantest.DebianFiles())
	real := scantest.Image(t, debian)
	cf, err := real.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	empty := scantest.Image(t, scantest.Layer(t, scantest.Files(map[string]string{"etc/motd": "hi\n"})))
	cf = cf.DeepCopy()
	fake, err := mutate.ConfigFile(empty, cf) // the empty layer under Debian's diff ID
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	s := newScanner(t, scanner.Options{CacheDir: cacheDir})
	_, err = s.Scan(t.Context(), scanner.Target{Input: saveArchive(t, fake, nil)})
	if !errors.Is(err, scanner.ErrCorruptLayer) {
		t.Fatalf("an archive lying about a diff ID: want %v, got %v", scanner.ErrCorruptLayer, err)
	}
	res := scanRegistry(t, s, real)
	if res.Image.Counts[model.SeverityHigh] != 2 || res.Image.OS != "debian 12.5" {
		t.Fatalf("the registry scan was served a planted analysis: %+v", res.Image)
	}
}

// TestArchiveLayersAreCached: a second scan of an archive reads no layer
// again (a budget smaller than the image proves it).
func TestArchiveLayersAreCached(t *testing.T) {
	img := scantest.Image(t, scantest.Layer(t, scantest.DebianFiles()))
	path := saveArchive(t, img, nil)
	cacheDir := t.TempDir()
	s := newScanner(t, scanner.Options{CacheDir: cacheDir})
	if _, err := s.Scan(t.Context(), scanner.Target{Input: path}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tight := newScanner(t, scanner.Options{CacheDir: cacheDir, MaxBytes: 1024})
	res, err := tight.Scan(t.Context(), scanner.Target{Input: path})
	if err != nil {
		t.Fatalf("second scan re-read a cached layer: %v", err)
	}
	if res.Image.Counts[model.SeverityHigh] != 2 {
		t.Fatalf("cached layer lost its packages: %+v", res.Image.Counts)
	}
}

// zeros is a gzip layer of one file of n zero bytes: a decompression bomb
// when n is large.
func zeros(t *testing.T, n int) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "var/zeros", Mode: 0o644, Size: int64(n), ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for left := n; left > 0; left -= len(chunk) {
		if _, err := tw.Write(chunk[:min(left, len(chunk))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestHostileArchives(t *testing.T) {
	debian := scantest.Image(t, scantest.Layer(t, scantest.DebianFiles()))
	traversal := scantest.Image(t, scantest.Layer(t, []scantest.File{
		{Name: "etc/debian_version", Body: []byte("12.5\n")},
		{Name: "../../../../etc/cron.d/evil", Body: []byte("* * * * * root sh\n")},
	}))
	bomb := filepath.Join(t.TempDir(), "bomb.tar")
	tag, _ := name.NewTag("example.com/team/bomb:1")
	if err := tarball.WriteToFile(bomb, tag, scantest.Image(t, zeros(t, 64<<20))); err != nil {
		t.Fatal(err)
	}
	twoImages := filepath.Join(t.TempDir(), "two.tar")
	tag2, _ := name.NewTag("example.com/team/other:1")
	if err := tarball.MultiWriteToFile(twoImages, map[name.Tag]v1.Image{tag: debian, tag2: traversal}); err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte("not a tar "), 200)
	for _, tc := range []struct {
		name string
		path string
		opts scanner.Options
		want error
	}{
		{name: "no such file", path: filepath.Join(t.TempDir(), "missing.tar"), want: scanner.ErrImageNotFound},
		{name: "not a tar", path: scantest.WriteFile(t, "junk.tar", junk), want: scanner.ErrNotImage},
		{name: "no manifest", path: scantest.WriteFile(t, "empty.tar", scantest.Tar(t, scantest.Files(map[string]string{"README": "x"}))), want: scanner.ErrNotImage},
		{name: "two images", path: twoImages, want: scanner.ErrNotImage},
		{name: "config missing", path: saveArchive(t, debian, func(d *tarball.Descriptor) { d.Config = "nothing.json" }), want: scanner.ErrNotImage},
		{name: "more layer files than diff IDs", path: saveArchive(t, debian, func(d *tarball.Descriptor) { d.Layers = append(d.Layers, d.Layers[0]) }), want: scanner.ErrNotImage},
		{name: "layer file missing", path: saveArchive(t, debian, func(d *tarball.Descriptor) { d.Layers[0] = "gone/layer.tar" }), want: scanner.ErrNotImage},
		{name: "link loop", path: saveArchive(t, debian, func(d *tarball.Descriptor) { d.Layers[0] = "a/layer.tar" },
			archiveEntry{Name: "a/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../b/layer.tar"},
			archiveEntry{Name: "b/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../a/layer.tar"}), want: scanner.ErrNotImage},
		{name: "path traversal", path: saveArchive(t, traversal, nil), want: scanner.ErrPathTraversal},
		{name: "too large", path: saveArchive(t, debian, nil), opts: scanner.Options{MaxBytes: 1024}, want: scanner.ErrTooLarge},
		{name: "decompression bomb", path: bomb, opts: scanner.Options{MaxBytes: 8 << 20}, want: scanner.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScanner(t, tc.opts)
			_, err := s.Scan(t.Context(), scanner.Target{Input: tc.path})
			if !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
		})
	}
}
