package scanner_test

import (
	"archive/tar"
	"errors"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
)

func TestHostileImages(t *testing.T) {
	host := scantest.Registry(t)
	debian := scantest.Image(t, scantest.Layer(t, scantest.DebianFiles()))

	// A manifest list with only an arm64 image.
	armOnly := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add:        debian,
		Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}},
	})
	ref, _ := name.NewTag(host + "/hostile/armonly:1")
	if err := remote.WriteIndex(ref, armOnly); err != nil {
		t.Fatal(err)
	}
	armDigest, _ := armOnly.Digest()

	// A layer that claims gzip and is not.
	garbage := append([]byte{0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0xff}, make([]byte, 4096)...)
	for i := range garbage[10:] {
		garbage[10+i] = byte(i*7 + 3)
	}
	corrupt := scantest.Image(t, static.NewLayer(garbage, types.DockerLayer))

	traversal := scantest.Image(t, scantest.Layer(t, []scantest.File{
		{Name: "etc/debian_version", Body: []byte("12.5\n")},
		{Name: "../../../../etc/cron.d/evil", Body: []byte("* * * * * root sh\n")},
	}))
	hardlink := scantest.Image(t, scantest.Layer(t, []scantest.File{
		{Name: "etc/passwd-link", Typeflag: tar.TypeLink, Linkname: "../../etc/shadow"},
	}))

	for _, tc := range []struct {
		name string
		img  v1.Image // pushed when set
		dig  string   // used when img is nil
		opts scanner.Options
		want error
	}{
		{name: "missing image", dig: "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", want: scanner.ErrImageNotFound},
		{name: "no linux/amd64 entry", dig: armDigest.String(), want: scanner.ErrNoPlatform},
		{name: "corrupt layer", img: corrupt, want: scanner.ErrCorruptLayer},
		{name: "path traversal", img: traversal, want: scanner.ErrPathTraversal},
		{name: "hard link traversal", img: hardlink, want: scanner.ErrPathTraversal},
		{name: "too large", img: debian, opts: scanner.Options{MaxBytes: 1024}, want: scanner.ErrTooLarge},
		{name: "timeout", img: debian, opts: scanner.Options{Timeout: time.Nanosecond}, want: scanner.ErrTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScanner(t, tc.opts)
			dig := tc.dig
			repo := "hostile/armonly"
			if tc.img != nil {
				repo = "hostile/img"
				dig = scantest.Push(t, host, repo, "1", tc.img)
			}
			if tc.dig != "" && tc.img == nil && tc.want == scanner.ErrImageNotFound {
				repo = "hostile/none"
			}
			_, err := s.Scan(t.Context(), scanner.Target{Registry: host, Repository: repo, Digest: dig})
			if !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
		})
	}
}

func TestUnsupportedImageIsNotClean(t *testing.T) {
	host := scantest.Registry(t)
	img := scantest.Image(t, scantest.Layer(t, scantest.Files(map[string]string{"app/readme.txt": "hello\n"})))
	dig := scantest.Push(t, host, "team/static", "1", img)
	s := newScanner(t, scanner.Options{})
	res, err := s.Scan(t.Context(), scanner.Target{Registry: host, Repository: "team/static", Digest: dig})
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Status != model.ImageUnsupported || res.Image.Error == "" {
		t.Fatalf("want an unsupported image with a reason, got %+v", res.Image)
	}
}

func TestLayerCacheSharedBaseLayers(t *testing.T) {
	host := scantest.Registry(t)
	base := scantest.Layer(t, scantest.DebianFiles())
	first := scantest.Image(t, base, scantest.Layer(t, scantest.Files(map[string]string{"app/one": "1"})))
	second := scantest.Image(t, base, scantest.Layer(t, scantest.Files(map[string]string{"app/two": "2"})))
	d1 := scantest.Push(t, host, "team/one", "1", first)
	d2 := scantest.Push(t, host, "team/two", "1", second)
	cacheDir := t.TempDir()
	s := newScanner(t, scanner.Options{CacheDir: cacheDir})
	if _, err := s.Scan(t.Context(), scanner.Target{Registry: host, Repository: "team/one", Digest: d1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A budget smaller than the base layer (compressed plus uncompressed)
	// proves the second scan does not read it again.
	compressed, _ := base.Size()
	budget := compressed + int64(len(scantest.Tar(t, scantest.DebianFiles()))) - 1
	tight := newScanner(t, scanner.Options{CacheDir: cacheDir, MaxBytes: budget})
	res, err := tight.Scan(t.Context(), scanner.Target{Registry: host, Repository: "team/two", Digest: d2})
	if err != nil {
		t.Fatalf("second image re-read its cached base layer: %v", err)
	}
	if res.Image.Counts[model.SeverityHigh] != 2 {
		t.Fatalf("cached base layer lost its packages: %+v", res.Image.Counts)
	}
}
