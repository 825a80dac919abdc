package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

type entry struct {
	name, link string
	typ        byte
	data       []byte
}

func writeTar(t *testing.T, entries []entry) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.data))}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tarDir packs a directory as `tar -C dir .` does, with ./ names.
func tarDir(t *testing.T, dir string) []entry {
	t.Helper()
	var out []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		out = append(out, entry{name: "./" + filepath.ToSlash(rel), data: b})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReadLayoutOfAnotherWriter: a layout written by go-containerregistry's
// layout package (as other tools write them), packed with ./ names, reads
// back as the same index, and its digest is found from index.json alone.
func TestReadLayoutOfAnotherWriter(t *testing.T) {
	idx, err := random.Index(512, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	file := writeTar(t, append([]entry{{name: "./", typ: tar.TypeDir}}, tarDir(t, dir)...))
	got, cleanup, err := readLayout(file)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	want, _ := idx.Digest()
	if d, _ := got.Digest(); d != want {
		t.Errorf("read index %s, want %s", d, want)
	}
	if d, err := layoutDigest(file); err != nil || d.Digest != want {
		t.Errorf("layoutDigest = %v, %v; want %s", d.Digest, err, want)
	}
}

// TestLayoutRoundTrip: what writeLayout writes, readLayout reads; the same
// index written twice gives the same bytes.
func TestLayoutRoundTrip(t *testing.T) {
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var a, b bytes.Buffer
	if err := writeLayout(&a, idx, "v1", mtime); err != nil {
		t.Fatal(err)
	}
	if err := writeLayout(&b, idx, "v1", mtime); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same index written twice differs")
	}
	file := filepath.Join(t.TempDir(), "x.tar")
	if err := os.WriteFile(file, a.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, cleanup, err := readLayout(file)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	want, _ := idx.Digest()
	if d, _ := got.Digest(); d != want {
		t.Errorf("read index %s, want %s", d, want)
	}
	im, _ := got.IndexManifest()
	for _, m := range im.Manifests {
		img, err := got.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := img.Layers()
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatalf("layer of %s: %v", m.Digest, err)
			}
			rc.Close()
		}
	}
}

func TestReadLayoutRefuses(t *testing.T) {
	const hexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	oneIndex := []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:` + hexA + `","size":2}]}`)
	tests := map[string]struct {
		entries []entry
		want    string
	}{
		"path traversal":      {[]entry{{name: "../index.json", data: oneIndex}}, `unexpected entry "../index.json"`},
		"absolute path":       {[]entry{{name: "/etc/passwd", data: []byte("x")}}, `unexpected entry "/etc/passwd"`},
		"symlink":             {[]entry{{name: "index.json", typ: tar.TypeSymlink, link: "/etc/passwd"}}, "not a regular file"},
		"other file":          {[]entry{{name: "blobs/sha256/evil.sh", data: []byte("x")}}, "unexpected entry"},
		"blob with wrong sum": {[]entry{{name: "blobs/sha256/" + hexA, data: []byte("{}")}}, "blob " + hexA + " has digest sha256:44136fa3"},
		"duplicate entry":     {[]entry{{name: "oci-layout", data: []byte("{}")}, {name: "./oci-layout", data: []byte("{}")}}, "file exists"},
		"no index.json":       {[]entry{{name: "oci-layout", data: []byte("{}")}}, "no index.json"},
		"two entries": {[]entry{{name: "index.json", data: []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json"},{"mediaType":"application/vnd.oci.image.index.v1+json"}]}`)}},
			"index.json lists 2 entries"},
		"not an index":  {[]entry{{name: "index.json", data: []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json"}]}`)}}, "want one image index"},
		"not json":      {[]entry{{name: "index.json", data: []byte(`<html>`)}}, "index.json: invalid character"},
		"missing index": {[]entry{{name: "index.json", data: oneIndex}, {name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)}}, "image index sha256:" + hexA},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, cleanup, err := readLayout(writeTar(t, tt.entries))
			if err == nil {
				cleanup()
				t.Fatal("read without error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if name != "missing index" && !errors.Is(err, ErrLayout) {
				t.Errorf("error %v is not ErrLayout", err)
			}
		})
	}
}

// FuzzReadLayout: any bytes given as an image file are refused with an
// error or read; nothing panics, nothing lands outside the scratch folder.
func FuzzReadLayout(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		file := filepath.Join(t.TempDir(), "image.tar")
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		idx, cleanup, err := readLayout(file)
		if err != nil {
			return
		}
		defer cleanup()
		if _, err := idx.IndexManifest(); err != nil {
			return
		}
		if _, err := layoutDigest(file); err != nil {
			t.Errorf("readLayout read it, layoutDigest refused it: %v", err)
		}
	})
}
