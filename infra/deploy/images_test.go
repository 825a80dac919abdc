package main

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"debug/elf"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/tests/testenv"
)

// helpMentions is a flag each image's binary lists in its -h answer.
var helpMentions = map[string]string{"palisade-sensor": "-cluster-id", "palisade-agent": "-resync"}

// TestImages builds every image twice (the same digests, byte for byte),
// pushes one build to a loopback OCI registry, pulls it back by digest,
// checks what each platform's image holds and runs the x86-64 binary.
func TestImages(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	opts := buildOptions{
		Root: testenv.Root(t), Go: "go", Version: "1.2.3", Revision: "0123456789abcdef",
		Source: defaultSource, Created: created, Log: zerolog.New(zerolog.NewTestWriter(t)),
	}
	build := func() (string, map[string]string) {
		opts.Out = t.TempDir()
		var stdout bytes.Buffer
		if err := buildAll(t.Context(), opts, &stdout); err != nil {
			t.Fatal(err)
		}
		digests := map[string]string{}
		for line := range strings.Lines(stdout.String()) {
			file, digest, _ := strings.Cut(strings.TrimSpace(line), "\t")
			digests[filepath.Base(file)] = digest
		}
		return opts.Out, digests
	}
	dir1, first := build()
	dir2, second := build()
	if len(first) != len(images) {
		t.Fatalf("built %v, want one file per image of %v", first, images)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("a rebuild of the same source changed digests (-first +second):\n%s", diff)
	}
	for f := range first {
		a, _ := os.ReadFile(filepath.Join(dir1, f))
		b, _ := os.ReadFile(filepath.Join(dir2, f))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds", f)
		}
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	var pushed bytes.Buffer
	for _, img := range images {
		file := filepath.Join(dir1, img.Name+".tar")
		err := pushAll(t.Context(), pushOptions{Registry: host, Prefix: defaultPrefix, Insecure: true,
			Files: []string{file}, Keychain: registryKeychain(host), Log: opts.Log}, &pushed)
		if err != nil {
			t.Fatal(err)
		}
	}
	for line := range strings.Lines(pushed.String()) {
		title, ref, _ := strings.Cut(strings.TrimSpace(line), "\t")
		t.Run(title, func(t *testing.T) {
			want := host + "/" + defaultPrefix + "/" + title + "@" + first[title+".tar"]
			if ref != want {
				t.Fatalf("pushed as %s, want %s", ref, want)
			}
			d, err := name.NewDigest(ref, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			checkIndex(t, d, title, opts)
			tag, _ := name.NewTag(host+"/"+defaultPrefix+"/"+title+":1.2.3", name.Insecure)
			if desc, err := remote.Head(tag); err != nil || desc.Digest.String() != d.DigestStr() {
				t.Errorf("tag %s: %v, %v; want digest %s", tag, desc, err, d.DigestStr())
			}
		})
	}
}

func checkIndex(t *testing.T, ref name.Digest, title string, opts buildOptions) {
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
		t.Errorf("media type %s", mt)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range im.Manifests {
		got = append(got, d.Platform.String())
	}
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64/v8"}, got); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}
	wantLabels := map[string]string{
		labelTitle: title, labelSource: defaultSource, labelRevision: opts.Revision,
		labelVersion: opts.Version, labelCreated: "2026-01-02T03:04:05Z",
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.OS != "linux" || cfg.Architecture != d.Platform.Architecture || cfg.Variant != d.Platform.Variant {
			t.Errorf("%s: config is for %s/%s/%s", d.Platform, cfg.OS, cfg.Architecture, cfg.Variant)
		}
		if cfg.Config.User != "65532:65532" || !cmp.Equal(cfg.Config.Entrypoint, []string{"/" + title}) || !cfg.Created.Equal(opts.Created) {
			t.Errorf("%s: user %q, entrypoint %q, created %v", d.Platform, cfg.Config.User, cfg.Config.Entrypoint, cfg.Created)
		}
		for k, v := range wantLabels {
			if cfg.Config.Labels[k] != v || im.Annotations[k] != v {
				t.Errorf("%s: label %s = %q, annotation %q; want %q", d.Platform, k, cfg.Config.Labels[k], im.Annotations[k], v)
			}
		}
		files := imageFiles(t, img)
		checkCerts(t, files["etc/ssl/certs/ca-certificates.crt"])
		if !strings.Contains(string(files["etc/passwd"].data), ":65532:65532:") {
			t.Errorf("%s: /etc/passwd has no user 65532:\n%s", d.Platform, files["etc/passwd"].data)
		}
		bin := files[title]
		if bin.mode&0o111 == 0 || bin.uid != 0 || !bin.modTime.Equal(opts.Created) {
			t.Fatalf("%s: /%s mode %o owner %d time %v", d.Platform, title, bin.mode, bin.uid, bin.modTime)
		}
		checkStaticELF(t, bin.data, d.Platform.Architecture)
		if d.Platform.Architecture == "amd64" {
			runHelp(t, bin.data, title)
		}
	}
}

type file struct {
	data    []byte
	mode    int64
	uid     int
	modTime time.Time
}

// imageFiles reads every regular file of the image's layers.
func imageFiles(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]file{}
	for _, l := range layers {
		if mt, _ := l.MediaType(); mt != types.OCILayer {
			t.Errorf("layer media type %s", mt)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				b, _ := io.ReadAll(tr)
				out[h.Name] = file{data: b, mode: h.Mode, uid: h.Uid, modTime: h.ModTime}
			}
		}
		rc.Close()
	}
	return out
}

func checkCerts(t *testing.T, f file) {
	t.Helper()
	n, rest := 0, f.data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			t.Fatalf("CA bundle certificate %d: %v", n, err)
		}
		n++
	}
	if n < 100 {
		t.Errorf("CA bundle holds %d certificates", n)
	}
}

func checkStaticELF(t *testing.T, b []byte, arch string) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("binary is not ELF: %v", err)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		t.Errorf("%s binary is for %v", arch, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s binary is dynamically linked (%v)", arch, p.Type)
		}
	}
}

// runHelp runs the binary taken from the image with -h.
func runHelp(t *testing.T, b []byte, title string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), title)
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), path, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -h: %v\n%s", title, err, out)
	}
	if want := helpMentions[title]; !strings.Contains(string(out), want) || len(out) == 0 {
		t.Errorf("%s -h does not list %q:\n%s", title, want, out)
	}
}
