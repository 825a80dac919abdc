package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// image is one binary of this repository shipped as a container image.
type image struct {
	// Name is the binary's name, its path in the image (/Name, the
	// entrypoint), the image's title and its repository name.
	Name string
	// Package is the binary's main package, relative to the module root.
	Package     string
	Description string
}

// images is what `make images` builds and infra/deploy.sh pushes. Shipping
// another binary as an image is one more line here.
var images = []image{
	{Name: "palisade-sensor", Package: "./sensor", Description: "Palisade runtime sensor: Falco's alerts from every node to Event Hubs."},
	{Name: "palisade-agent", Package: "./agent", Description: "Palisade cluster agent: the cluster's inventory to Event Hubs, remediation inside the cluster."},
}

// platforms of every image, in one image index: AKS has x86-64 and Arm64
// node pools.
var platforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64", Variant: "v8"},
}

const (
	defaultSource = "https://github.com/palisade-sec/palisade"
	// user is the non-root user and group every image runs as (the chart's
	// runAsUser).
	user   = "65532:65532"
	caFile = "etc/ssl/certs/ca-certificates.crt"
	// rootsModule provides the CA certificates: Mozilla's NSS root store
	// as Go embeds it, pinned in go.mod, so builds need no network and do
	// not depend on (or leak) the build machine's trust store.
	rootsModule = "golang.org/x/crypto/x509roots/fallback"
)

// OCI annotation and label keys.
const (
	labelTitle       = "org.opencontainers.image.title"
	labelDescription = "org.opencontainers.image.description"
	labelSource      = "org.opencontainers.image.source"
	labelRevision    = "org.opencontainers.image.revision"
	labelVersion     = "org.opencontainers.image.version"
	labelCreated     = "org.opencontainers.image.created"
	annotationRef    = "org.opencontainers.image.ref.name"
)

// buildOptions are the inputs of an image build. The same options on the
// same source and toolchain give the same digests.
type buildOptions struct {
	Root     string // module root, where `go build` runs
	Out      string // directory receiving NAME.tar
	Go       string // go command
	Version  string
	Revision string
	Source   string
	// Created dates the images, their history and every file in them
	// (SOURCE_DATE_EPOCH), so that a rebuild is identical.
	Created time.Time
	Log     zerolog.Logger
}

// sourceDate reads SOURCE_DATE_EPOCH (seconds since 1970); empty is 1970.
func sourceDate(epoch string) (time.Time, error) {
	if epoch == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	s, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil || s < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds since 1970", epoch)
	}
	return time.Unix(s, 0).UTC(), nil
}

// buildAll builds every image into opts.Out and prints "FILE<TAB>DIGEST"
// for each.
func buildAll(ctx context.Context, opts buildOptions, stdout io.Writer) error {
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	base, err := baseLayer(opts.Created)
	if err != nil {
		return err
	}
	for _, img := range images {
		idx, err := buildImage(ctx, opts, img, base)
		if err != nil {
			return err
		}
		path := filepath.Join(opts.Out, img.Name+".tar")
		if err := writeLayoutFile(path, idx, opts.Version, opts.Created); err != nil {
			return err
		}
		d, err := idx.Digest()
		if err != nil {
			return err
		}
		opts.Log.Info().Str("image", img.Name).Str("digest", d.String()).Str("file", path).Msg("image built")
		if _, err := fmt.Fprintf(stdout, "%s\t%s\n", path, d); err != nil {
			return err
		}
	}
	return nil
}

// buildImage builds img for every platform and returns the image index.
func buildImage(ctx context.Context, opts buildOptions, img image, base v1.Layer) (v1.ImageIndex, error) {
	tmp, err := os.MkdirTemp("", "palisade-image-")
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	defer os.RemoveAll(tmp)
	labels := map[string]string{
		labelTitle:       img.Name,
		labelDescription: img.Description,
		labelSource:      opts.Source,
		labelRevision:    opts.Revision,
		labelVersion:     opts.Version,
		labelCreated:     opts.Created.Format(time.RFC3339),
	}
	for k, v := range labels {
		if v == "" {
			delete(labels, k)
		}
	}
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		bin := filepath.Join(tmp, p.Architecture, img.Name)
		if err := goBuild(ctx, opts, img.Package, p, bin); err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		layer, err := binaryLayer(bin, img.Name, opts.Created)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		pi, err := platformImage(p, img, labels, opts.Created, base, layer)
		if err != nil {
			return nil, fmt.Errorf("image %s for %s: %w", img.Name, p, err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: pi, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	return mutate.Annotations(idx, labels).(v1.ImageIndex), nil
}

// goExperiment is the Makefile's GOEXPERIMENT: the binary in the image is
// built as `make build` and the tests build it.
const goExperiment = "jsonv2"

// goBuild builds a static binary for p. -trimpath and no VCS stamp or build
// id keep the binary the same wherever and whenever the source is built;
// every build setting the environment could change is pinned, so the same
// source and Go version give the same bytes.
func goBuild(ctx context.Context, opts buildOptions, pkg string, p v1.Platform, out string) error {
	cmd := exec.CommandContext(ctx, opts.Go, "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Dir = opts.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture,
		"GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT="+goExperiment, "GOFLAGS=-mod=readonly")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	opts.Log.Info().Str("package", pkg).Str("platform", p.String()).Msg("go build")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s: %w\n%s", pkg, p, err, stderr.String())
	}
	return nil
}

// platformImage is one platform's image: the base layer, the binary, and a
// config that runs it as the non-root user.
func platformImage(p v1.Platform, img image, labels map[string]string, created time.Time, base, bin v1.Layer) (v1.Image, error) {
	cfg := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      v1.Time{Time: created},
		Config: v1.Config{
			User:       user,
			Entrypoint: []string{"/" + img.Name},
			Env:        []string{"SSL_CERT_FILE=/" + caFile},
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	im := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	im, err := mutate.ConfigFile(im, cfg)
	if err != nil {
		return nil, err
	}
	return mutate.Append(im,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: created},
			CreatedBy: "palisade-deploy images: CA certificates (" + rootsModule + "), user " + user}},
		mutate.Addendum{Layer: bin, History: v1.History{Created: v1.Time{Time: created},
			CreatedBy: "go build -trimpath -buildvcs=false -ldflags='-s -w -buildid=' " + img.Package + " (CGO_ENABLED=0, " + p.String() + ")"}},
	)
}

// baseLayer holds what every image shares, whatever its platform: the CA
// certificates and the non-root user's passwd and group entries.
func baseLayer(created time.Time) (v1.Layer, error) {
	certs, err := caBundle()
	if err != nil {
		return nil, err
	}
	return tarLayer([]tarEntry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n")},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: caFile, mode: 0o644, data: certs},
	}, created)
}

// caBundle is the PEM bundle of Mozilla's root store from rootsModule.
// Roots that carry a constraint (a distrust-after date) are left out: a PEM
// file cannot express it.
func caBundle() ([]byte, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Mozilla NSS root certificates from %s %s\n", rootsModule, moduleVersion(rootsModule))
	n := 0
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return nil, fmt.Errorf("CA bundle: %w", err)
		}
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("CA bundle: %s holds no certificate", rootsModule)
	}
	return buf.Bytes(), nil
}

// moduleVersion is the version of a module linked into this program.
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "(unknown version)"
}

// binaryLayer holds the binary at /NAME.
func binaryLayer(bin, name string, created time.Time) (v1.Layer, error) {
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	return tarLayer([]tarEntry{{name: name, mode: 0o755, data: b}}, created)
}

// tarEntry is a file (or, with a trailing slash, a directory) of a layer.
type tarEntry struct {
	name string
	mode int64
	data []byte
}

// tarLayer makes a gzip-compressed OCI layer of entries, sorted by name,
// owned by root and dated created, so that equal content gives an equal
// digest.
func tarLayer(entries []tarEntry, created time.Time) (v1.Layer, error) {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b tarEntry) int { return strings.Compare(a.name, b.name) })
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: created, Format: tar.FormatUSTAR, Typeflag: tar.TypeReg, Size: int64(len(e.data))}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	// The gzip header carries no name and no time: the same tar always
	// compresses to the same bytes with one Go version.
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}
