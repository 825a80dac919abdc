package scanner

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/aquasecurity/trivy/pkg/cache"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
)

// budget is the number of bytes one scan may still read, shared by every
// layer of the scan.
type budget struct {
	limit int64
	used  atomic.Int64
}

func (b *budget) take(n int) error {
	if b == nil || b.limit <= 0 {
		return nil
	}
	if used := b.used.Add(int64(n)); used > b.limit {
		return fmt.Errorf("%w: read more than %d bytes (compressed plus uncompressed)", ErrTooLarge, b.limit)
	}
	return nil
}

// countingReader charges every byte read to a budget.
type countingReader struct {
	r io.Reader
	b *budget
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if berr := c.b.take(n); berr != nil {
		return n, berr
	}
	return n, err
}

// decompress wraps a stored layer stream in the decompressor its magic
// bytes call for (gzip, zstd, or none: `docker save` stores layers as plain
// tars) and reports whether it was compressed. Decoding errors become
// ErrCorruptLayer.
func decompress(r io.Reader, layer string) (io.ReadCloser, bool, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("%w: layer %s: %v", ErrCorruptLayer, layer, err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, false, fmt.Errorf("%w: layer %s: gzip: %v", ErrCorruptLayer, layer, err)
		}
		return &decodeErrReader{r: zr, close: zr.Close, layer: layer}, true, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxMemory(256<<20), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, false, fmt.Errorf("%w: layer %s: zstd: %v", ErrCorruptLayer, layer, err)
		}
		return &decodeErrReader{r: zr, close: func() error { zr.Close(); return nil }, layer: layer}, true, nil
	}
	return io.NopCloser(br), false, nil
}

// decodeErrReader marks decompression failures as ErrCorruptLayer while
// passing budget and transport errors through unchanged.
type decodeErrReader struct {
	r     io.Reader
	close func() error
	layer string
}

func (d *decodeErrReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && isDecodeError(err) {
		err = fmt.Errorf("%w: layer %s failed to decompress: %v", ErrCorruptLayer, d.layer, err)
	}
	return n, err
}

func (d *decodeErrReader) Close() error { return d.close() }

func isDecodeError(err error) bool {
	var ce flate.CorruptInputError
	if errors.As(err, &ce) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	// zstd reports corrupt frames with plain errors of its own package.
	return strings.Contains(err.Error(), "zstd") || strings.Contains(err.Error(), "flate")
}

// tarGuard passes a layer's tar stream through unchanged while a second
// goroutine parses its headers (and, when asked, hashes it). The stream
// fails at the first entry that would escape the image root (path
// traversal) or is not a tar at all, and at its end when its content does
// not hash to the layer's diff ID. How the read ended is recorded in the
// scan's verdicts.
type tarGuard struct {
	src    io.ReadCloser
	pw     *io.PipeWriter
	done   chan struct{}
	layer  string
	diffID v1.Hash
	v      *verdicts

	srcErr error // sticky: the source failed or ended

	mu  sync.Mutex
	bad error
}

// sourceFailure carries the source's own error (budget, decompression,
// network) through the pipe, so the checker reports it, not its view of it.
type sourceFailure struct{ err error }

func (s sourceFailure) Error() string { return s.err.Error() }

// newTarGuard guards src, the uncompressed stream of layer diffID. With
// hash set it also checks the content against the diff ID; observe, when
// not nil, is told each entry's name.
func newTarGuard(src io.ReadCloser, diffID v1.Hash, v *verdicts, hash bool, observe func(string)) *tarGuard {
	pr, pw := io.Pipe()
	layer := diffID.String()
	g := &tarGuard{src: src, pw: pw, done: make(chan struct{}), layer: layer, diffID: diffID, v: v}
	go func() {
		defer close(g.done)
		h := sha256.New()
		var r io.Reader = pr
		if hash {
			r = io.TeeReader(pr, h)
		}
		err := checkTar(r, layer, observe)
		if err != nil {
			g.fail(err)
		}
		// Keep draining, so the writer side never blocks and the hash
		// covers the whole stream, end-of-archive padding included.
		_, derr := io.Copy(io.Discard, r)
		var sf sourceFailure
		switch {
		case err != nil: // recorded above
		case errors.As(derr, &sf):
			v.set(diffID, sf.err)
		case derr != nil:
			v.set(diffID, fmt.Errorf("%w: layer %s was not read to its end", ErrCorruptLayer, layer))
		case !hash:
			v.set(diffID, nil)
		case diffID.Algorithm != "sha256":
			g.fail(fmt.Errorf("%w: layer %s: diff IDs other than sha256 are not supported", ErrCorruptLayer, layer))
		default:
			if got := hex.EncodeToString(h.Sum(nil)); got != diffID.Hex {
				g.fail(fmt.Errorf("%w: layer %s: its content has diff ID sha256:%s", ErrCorruptLayer, layer, got))
				return
			}
			v.set(diffID, nil)
		}
	}()
	return g
}

// fail records the checker's verdict, before any Read can report it: the
// scan's verdicts must know why a layer failed by the time Trivy, which may
// have ignored the error, asks to cache the layer.
func (g *tarGuard) fail(err error) {
	g.v.set(g.diffID, err)
	g.mu.Lock()
	if g.bad == nil {
		g.bad = err
	}
	g.mu.Unlock()
}

func (g *tarGuard) failed() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bad
}

func (g *tarGuard) Read(p []byte) (int, error) {
	if g.srcErr != nil {
		return 0, g.srcErr
	}
	if err := g.failed(); err != nil {
		return 0, err
	}
	n, err := g.src.Read(p)
	if n > 0 {
		if _, werr := g.pw.Write(p[:n]); werr != nil {
			return 0, werr
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		// The verdict on the last headers is due before the reader sees EOF.
		_ = g.pw.Close()
		<-g.done
		if ferr := g.failed(); ferr != nil {
			g.srcErr = ferr
			return 0, ferr
		}
		g.srcErr = io.EOF
	case err != nil:
		// The source's own error (budget, decompression, network) is the
		// cause; report it rather than the checker's view of it.
		g.srcErr = err
		g.v.set(g.diffID, err)
		g.pw.CloseWithError(sourceFailure{err})
		return n, err
	}
	if ferr := g.failed(); ferr != nil {
		return 0, ferr
	}
	return n, err
}

func (g *tarGuard) Close() error {
	g.pw.CloseWithError(io.ErrClosedPipe)
	return g.src.Close()
}

// checkTar reads tar headers and rejects entries whose names (or hard-link
// targets) leave the root after cleaning. observe, when not nil, is told
// each name.
func checkTar(r io.Reader, layer string, observe func(string)) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var sf sourceFailure
			if errors.Is(err, io.ErrClosedPipe) || errors.As(err, &sf) {
				return nil
			}
			return fmt.Errorf("%w: layer %s is not a valid tar stream: %v", ErrCorruptLayer, layer, err)
		}
		if escapes(hdr.Name) {
			return fmt.Errorf("%w: layer %s has entry %q outside the image root", ErrPathTraversal, layer, hdr.Name)
		}
		if hdr.Typeflag == tar.TypeLink && escapes(hdr.Linkname) {
			return fmt.Errorf("%w: layer %s has hard link %q to %q outside the image root", ErrPathTraversal, layer, hdr.Name, hdr.Linkname)
		}
		if observe != nil {
			observe(hdr.Name)
		}
	}
}

func escapes(name string) bool {
	clean := path.Clean(strings.TrimLeft(strings.ReplaceAll(name, "\\", "/"), "/"))
	return clean == ".." || strings.HasPrefix(clean, "../")
}

// verdicts records, per diff ID, how reading a layer of one scan ended:
// nil when it was read to its end without error and, if hashed, matched
// its diff ID. A failure sticks even if the layer is read again.
type verdicts struct {
	mu sync.Mutex
	m  map[v1.Hash]error
}

func newVerdicts() *verdicts { return &verdicts{m: map[v1.Hash]error{}} }

func (v *verdicts) set(h v1.Hash, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if prev, seen := v.m[h]; !seen || prev == nil {
		v.m[h] = err
	}
}

func (v *verdicts) check(h v1.Hash) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	err, ok := v.m[h]
	if !ok {
		return fmt.Errorf("%w: layer %s was not read to its end", ErrCorruptLayer, h)
	}
	return err
}

// verifiedCache is the layer cache as one scan writes to it: a layer's
// analysis is stored only when the layer was read to its end without error
// and, for local images, its content hashed to the diff ID that keys the
// cache entry. The cache is shared by every scan, registry images and local
// archives alike, so an archive that lies about a diff ID must not plant
// its analysis under the key of a real layer. Trivy reads the last bytes of
// a layer without checking for errors, hence the check here rather than
// only in the stream.
type verifiedCache struct {
	cache.ArtifactCache
	v    *verdicts
	base *baseObserver // a Windows image's base layer: its verdict is kept with its analysis
}

func (c verifiedCache) PutBlob(ctx context.Context, blobID string, info ftypes.BlobInfo) error {
	h, err := v1.NewHash(info.DiffID)
	if err != nil {
		return fmt.Errorf("%w: diff ID %q: %v", ErrCorruptLayer, info.DiffID, err)
	}
	if err := c.v.check(h); err != nil {
		return err
	}
	if c.base != nil && h == c.base.diffID {
		// Read to its end (checked above), so every path was observed.
		info.CustomResources = append(info.CustomResources, c.base.resource())
	}
	return c.ArtifactCache.PutBlob(ctx, blobID, info)
}
