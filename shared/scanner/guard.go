package scanner

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
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

// decompress wraps a compressed layer stream in the decompressor its magic
// bytes call for (gzip, zstd, or none). Decoding errors become
// ErrCorruptLayer.
func decompress(r io.Reader, layer string) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: layer %s: %v", ErrCorruptLayer, layer, err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: layer %s: gzip: %v", ErrCorruptLayer, layer, err)
		}
		return &decodeErrReader{r: zr, close: zr.Close, layer: layer}, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxMemory(256<<20), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("%w: layer %s: zstd: %v", ErrCorruptLayer, layer, err)
		}
		return &decodeErrReader{r: zr, close: func() error { zr.Close(); return nil }, layer: layer}, nil
	}
	return io.NopCloser(br), nil
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
// reader parses its headers, and fails the stream at the first entry that
// would escape the image root (path traversal) or is not a tar at all.
type tarGuard struct {
	src   io.ReadCloser
	pw    *io.PipeWriter
	done  chan struct{}
	layer string

	srcErr error // sticky: the source failed or ended

	mu  sync.Mutex
	bad error
}

func newTarGuard(src io.ReadCloser, layer string) *tarGuard {
	pr, pw := io.Pipe()
	g := &tarGuard{src: src, pw: pw, done: make(chan struct{}), layer: layer}
	go func() {
		defer close(g.done)
		err := checkTar(pr, layer)
		if err != nil {
			g.mu.Lock()
			g.bad = err
			g.mu.Unlock()
		}
		// Keep draining so the writer side never blocks.
		_, _ = io.Copy(io.Discard, pr)
	}()
	return g
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
		g.pw.CloseWithError(err)
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
// targets) leave the root after cleaning.
func checkTar(r io.Reader, layer string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.ErrClosedPipe) {
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
	}
}

func escapes(name string) bool {
	clean := path.Clean(strings.TrimLeft(strings.ReplaceAll(name, "\\", "/"), "/"))
	return clean == ".." || strings.HasPrefix(clean, "../")
}
