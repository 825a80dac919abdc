package scanner

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Bounds on what a `docker save` archive may make the scanner hold in
// memory before any layer is read. Real archives have a handful of entries
// per layer and metadata of a few kilobytes.
const (
	maxArchiveEntries  = 1 << 16
	maxArchiveMetadata = 8 << 20 // manifest.json, and the image config
	maxArchiveLinks    = 8       // symbolic or hard links followed to reach one file
)

// archive is a `docker save` tar opened once. One pass over its headers
// (skipping file contents with Seek) indexes where each file lies; the
// manifest, the config and the layers are then read in place with ReadAt,
// concurrently, without extracting, re-reading or re-compressing anything.
// Layers are known by the diff IDs the config lists, as Trivy does for
// archives: the compressed digests a registry manifest would hold do not
// exist here.
type archive struct {
	f       *os.File
	name    string
	entries map[string]tarEntry
	config  []byte
	layers  map[v1.Hash]string // diff ID → file in the archive
}

// tarEntry is where a file's bytes lie, or the file a link points to.
type tarEntry struct {
	off, size int64
	link      string
}

// openArchive opens and checks a `docker save` tar holding one image.
func openArchive(name string) (a *archive, err error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImageNotFound, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()
	entries, err := indexTar(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a docker save archive: %v", ErrNotImage, name, err)
	}
	a = &archive{f: f, name: name, entries: entries}
	if err := a.load(); err != nil {
		return nil, fmt.Errorf("%w: %s is not a docker save archive: %v", ErrNotImage, name, err)
	}
	return a, nil
}

// indexTar reads every header of the tar in f once. f's offset is left
// wherever the pass ended; files are read later with ReadAt only.
func indexTar(f io.ReadSeeker) (map[string]tarEntry, error) {
	entries := map[string]tarEntry{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		if len(entries) == maxArchiveEntries {
			return nil, fmt.Errorf("more than %d entries", maxArchiveEntries)
		}
		name := cleanArchivePath(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeReg:
			for k := range hdr.PAXRecords {
				// A sparse file's bytes are not laid out as they read.
				if strings.HasPrefix(k, "GNU.sparse.") {
					return nil, fmt.Errorf("entry %q is a sparse file", hdr.Name)
				}
			}
			// tar.Reader reads headers block by block without buffering,
			// so the file's contents start where it stopped.
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, fmt.Errorf("read tar: %w", err)
			}
			entries[name] = tarEntry{off: off, size: hdr.Size}
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(name), target)
			}
			entries[name] = tarEntry{link: cleanArchivePath(target)}
		case tar.TypeLink:
			entries[name] = tarEntry{link: cleanArchivePath(hdr.Linkname)}
		case tar.TypeGNUSparse:
			return nil, fmt.Errorf("entry %q is a sparse file", hdr.Name)
		}
	}
	return entries, nil
}

// cleanArchivePath names a file relative to the archive's root, so that
// "./manifest.json", "/manifest.json" and "manifest.json" are one file.
func cleanArchivePath(p string) string {
	return strings.TrimPrefix(path.Clean("/"+p), "/")
}

// open returns a reader over a file of the archive, following links.
func (a *archive) open(name string) (*io.SectionReader, error) {
	name = cleanArchivePath(name)
	for range maxArchiveLinks + 1 {
		e, ok := a.entries[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("no file %q in the archive", name)
		case e.link == "":
			return io.NewSectionReader(a.f, e.off, e.size), nil
		}
		name = e.link
	}
	return nil, fmt.Errorf("more than %d links to follow to reach %q", maxArchiveLinks, name)
}

func (a *archive) readSmall(name string) ([]byte, error) {
	r, err := a.open(name)
	if err != nil {
		return nil, err
	}
	if r.Size() > maxArchiveMetadata {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", name, r.Size(), maxArchiveMetadata)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

// load reads manifest.json and the config, and pairs each layer file with
// its diff ID.
func (a *archive) load() error {
	raw, err := a.readSmall("manifest.json")
	if err != nil {
		return err
	}
	var m tarball.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest.json: %w", err)
	}
	if len(m) != 1 {
		return fmt.Errorf("manifest.json lists %d images, want exactly one", len(m))
	}
	if a.config, err = a.readSmall(m[0].Config); err != nil {
		return err
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(a.config))
	if err != nil {
		return fmt.Errorf("config %s: %w", m[0].Config, err)
	}
	if len(cf.RootFS.DiffIDs) != len(m[0].Layers) {
		return fmt.Errorf("config %s lists %d diff IDs for %d layer files", m[0].Config, len(cf.RootFS.DiffIDs), len(m[0].Layers))
	}
	a.layers = make(map[v1.Hash]string, len(m[0].Layers))
	for i, file := range m[0].Layers {
		if _, err := a.open(file); err != nil {
			return fmt.Errorf("layer %s: %w", cf.RootFS.DiffIDs[i], err)
		}
		a.layers[cf.RootFS.DiffIDs[i]] = file
	}
	return nil
}

// blob returns a layer's bytes as stored: a tar, or a compressed tar.
func (a *archive) blob(diffID v1.Hash) (io.ReadCloser, error) {
	file, ok := a.layers[diffID]
	if !ok {
		return nil, fmt.Errorf("%w: %s has no layer %s", ErrNotImage, a.name, diffID)
	}
	r, err := a.open(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotImage, a.name, err)
	}
	return io.NopCloser(r), nil
}

// Close closes the archive's file.
func (a *archive) Close() error { return a.f.Close() }

// image is the archive as a v1.Image for Trivy's image artifact. Only the
// config and the layers by diff ID are ever asked for; a manifest digest
// would mean compressing every layer, and nothing calls for one.
func (a *archive) image() (v1.Image, error) { return partial.UncompressedToImage(archiveCore{a}) }

type archiveCore struct{ a *archive }

func (c archiveCore) RawConfigFile() ([]byte, error) { return c.a.config, nil }

func (c archiveCore) MediaType() (types.MediaType, error) { return types.DockerManifestSchema2, nil }

func (c archiveCore) LayerByDiffID(h v1.Hash) (partial.UncompressedLayer, error) {
	if _, ok := c.a.layers[h]; !ok {
		return nil, fmt.Errorf("%w: %s has no layer %s", ErrNotImage, c.a.name, h)
	}
	return archiveLayer{a: c.a, diffID: h}, nil
}

type archiveLayer struct {
	a      *archive
	diffID v1.Hash
}

func (l archiveLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

func (l archiveLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }

func (l archiveLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.a.blob(l.diffID)
	if err != nil {
		return nil, err
	}
	dec, _, err := decompress(rc, l.diffID.String())
	return dec, err
}
