package scanner

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpenArchive: any file either opens as a `docker save` archive or
// fails with ErrNotImage; every layer of an archive that opens can be read,
// and no read goes past the file.
func FuzzOpenArchive(f *testing.F) {
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "image.tar")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := openArchive(path)
		if err != nil {
			if !errors.Is(err, ErrNotImage) {
				t.Fatalf("want %v, got %v", ErrNotImage, err)
			}
			return
		}
		defer a.Close()
		img, err := a.image()
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatalf("config of an archive that opened: %v", err)
		}
		for _, h := range cf.RootFS.DiffIDs {
			rc, err := a.blob(h)
			if err != nil {
				t.Fatalf("layer %s of an archive that opened: %v", h, err)
			}
			n, err := io.Copy(io.Discard, rc)
			if err != nil || n > int64(len(data)) {
				t.Fatalf("layer %s: read %d of a %d-byte file: %v", h, n, len(data), err)
			}
		}
	})
}
