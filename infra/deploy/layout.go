package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// An image file is an OCI image layout (oci-layout, index.json, blobs/) in
// one tar, the format `docker buildx --output type=oci` and skopeo's
// oci-archive: write. Its index.json names one image index, the image.

const (
	layoutFile = "oci-layout"
	indexFile  = "index.json"
	// maxLayoutBytes bounds what reading an image file may write to disk.
	maxLayoutBytes = 4 << 30
)

// ErrLayout is returned for an image file that is not an OCI image layout
// holding one image index.
var ErrLayout = errors.New("not an OCI image layout of one image index")

var blobName = regexp.MustCompile(`^blobs/sha256/[0-9a-f]{64}$`)

// blob is one file of the layout.
type blob struct {
	size int64
	open func() (io.ReadCloser, error)
}

func bytesBlob(b []byte) blob {
	return blob{size: int64(len(b)), open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

// writeLayoutFile writes idx to path (through a temporary file, so a failed
// build leaves no half image behind).
func writeLayoutFile(path string, idx v1.ImageIndex, ref string, mtime time.Time) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".image-*.tar")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := writeLayout(f, idx, ref, mtime); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// writeLayout writes idx, its images, configs and layers as an OCI image
// layout tar. ref names the index in index.json. Entries are sorted and
// dated mtime, so the same index always gives the same bytes.
func writeLayout(w io.Writer, idx v1.ImageIndex, ref string, mtime time.Time) error {
	files := map[string]blob{}
	add := func(d v1.Hash, b blob) { files["blobs/"+d.Algorithm+"/"+d.Hex] = b }

	raw, err := idx.RawManifest()
	if err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	mt, err := idx.MediaType()
	if err != nil {
		return err
	}
	add(digest, bytesBlob(raw))
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			return fmt.Errorf("index entry %s is a %s, not an image manifest", d.Digest, d.MediaType)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		m, err := img.RawManifest()
		if err != nil {
			return err
		}
		add(d.Digest, bytesBlob(m))
		cfgName, err := img.ConfigName()
		if err != nil {
			return err
		}
		cfg, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		add(cfgName, bytesBlob(cfg))
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			ld, err := l.Digest()
			if err != nil {
				return err
			}
			size, err := l.Size()
			if err != nil {
				return err
			}
			add(ld, blob{size: size, open: l.Compressed})
		}
	}
	top, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: mt, Digest: digest, Size: int64(len(raw)),
			Annotations: map[string]string{annotationRef: ref},
		}},
	})
	if err != nil {
		return err
	}
	files[indexFile] = bytesBlob(top)
	files[layoutFile] = bytesBlob([]byte(`{"imageLayoutVersion":"1.0.0"}`))
	files["blobs/"] = blob{size: -1}
	files["blobs/sha256/"] = blob{size: -1}

	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	tw := tar.NewWriter(w)
	for _, n := range names {
		b := files[n]
		h := &tar.Header{Name: n, Mode: 0o644, Size: b.size, ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if b.size < 0 {
			h.Mode, h.Size, h.Typeflag = 0o755, 0, tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		if b.open == nil {
			continue
		}
		rc, err := b.open()
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		_, err = io.Copy(tw, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	return tw.Close()
}

// readLayout unpacks an image file into a temporary directory and returns
// its image index, which reads from there until cleanup is called. Every
// blob is checked against its name; anything but the layout's own files
// is refused.
func readLayout(file string) (idx v1.ImageIndex, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "palisade-layout-")
	if err != nil {
		return nil, nil, err
	}
	remove := func() { os.RemoveAll(dir) }
	defer func() {
		if err != nil {
			remove()
		}
	}()
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if err := unpackLayout(f, dir); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	top, err := os.ReadFile(filepath.Join(dir, indexFile))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: no %s", file, ErrLayout, indexFile)
	}
	d, err := topIndex(top)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	idx, err = p.ImageIndex()
	if err == nil {
		idx, err = idx.ImageIndex(d.Digest)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: image index %s: %w", file, d.Digest, err)
	}
	return idx, remove, nil
}

// unpackLayout writes the layout files of a tar into dir.
func unpackLayout(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrLayout, err)
		}
		name := strings.TrimPrefix(path.Clean(h.Name), "./")
		switch {
		case h.Typeflag == tar.TypeDir && (name == "." || name == "blobs" || name == "blobs/sha256"):
			continue
		case h.Typeflag != tar.TypeReg:
			return fmt.Errorf("%w: entry %q is not a regular file", ErrLayout, h.Name)
		case name != layoutFile && name != indexFile && !blobName.MatchString(name):
			return fmt.Errorf("%w: unexpected entry %q", ErrLayout, h.Name)
		}
		total += h.Size
		if total > maxLayoutBytes {
			return fmt.Errorf("%w: more than %d bytes", ErrLayout, maxLayoutBytes)
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("%w: entry %q: %v", ErrLayout, h.Name, err)
		}
		sum := sha256.New()
		_, err = io.Copy(io.MultiWriter(out, sum), io.LimitReader(tr, h.Size))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
		if want := strings.TrimPrefix(name, "blobs/sha256/"); want != name && hex.EncodeToString(sum.Sum(nil)) != want {
			return fmt.Errorf("%w: blob %s has digest sha256:%x", ErrLayout, want, sum.Sum(nil))
		}
	}
}

// topIndex returns the one image index an index.json names.
func topIndex(b []byte) (v1.Descriptor, error) {
	var im v1.IndexManifest
	if err := json.Unmarshal(b, &im); err != nil {
		return v1.Descriptor{}, fmt.Errorf("%w: %s: %v", ErrLayout, indexFile, err)
	}
	if len(im.Manifests) != 1 || !im.Manifests[0].MediaType.IsIndex() {
		return v1.Descriptor{}, fmt.Errorf("%w: %s lists %d entries; want one image index", ErrLayout, indexFile, len(im.Manifests))
	}
	return im.Manifests[0], nil
}

// layoutDigest returns the digest and annotations of the image index an
// image file holds, reading only its index.json.
func layoutDigest(file string) (v1.Descriptor, error) {
	f, err := os.Open(file)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return v1.Descriptor{}, fmt.Errorf("%s: %w: no %s", file, ErrLayout, indexFile)
		}
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("%s: %w: %v", file, ErrLayout, err)
		}
		if strings.TrimPrefix(path.Clean(h.Name), "./") != indexFile {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("%s: %w", file, err)
		}
		d, err := topIndex(b)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("%s: %w", file, err)
		}
		return d, nil
	}
}
