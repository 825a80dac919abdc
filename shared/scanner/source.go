package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// defaultPlatform is the platform picked from a multi-platform image.
var defaultPlatform = v1.Platform{OS: "linux", Architecture: "amd64"}

// source is an image ready for analysis, with what the summary needs.
type source struct {
	img       v1.Image
	digest    string // the digest the image is known by (index digest for a list)
	mediaType string
	platform  string
	name      string
	repoTags  []string
	local     bool
	archive   *archive // a `docker save` tar, read in place
}

// Close releases the archive's file, if any.
func (s *source) Close() error {
	if s.archive == nil {
		return nil
	}
	return s.archive.Close()
}

// pullRemote resolves registry/repository@digest and picks the platform
// assessed from a manifest list (pickPlatform).
func (s *Scanner) pullRemote(ctx context.Context, t Target) (*source, error) {
	var opts []name.Option
	if s.opts.Insecure != nil && s.opts.Insecure(t.Registry) {
		opts = append(opts, name.Insecure)
	}
	refStr := t.Registry + "/" + t.Repository + "@" + t.Digest
	ref, err := name.NewDigest(refStr, append(opts, name.StrictValidation)...)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not an image reference: %v", ErrBadTarget, refStr, err)
	}
	auth := authn.Anonymous
	if s.opts.Auth != nil {
		if a := s.opts.Auth(t.Registry); a != nil {
			auth = a
		}
	}
	tr := s.opts.Transport
	if tr == nil {
		tr = remote.DefaultTransport
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(tr),
		remote.WithUserAgent("palisade-scanner")}
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return nil, classifyRemote(refStr, err)
	}
	src := &source{digest: desc.Digest.String(), mediaType: string(desc.MediaType), name: refStr}
	if t.Tag != "" {
		src.repoTags = []string{t.Registry + "/" + t.Repository + ":" + t.Tag}
	}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("read manifest list %s: %w", refStr, err)
		}
		child, err := pickPlatform(idx, refStr)
		if err != nil {
			return nil, err
		}
		img, err := idx.Image(child.Digest)
		if err != nil {
			return nil, classifyRemote(refStr, err)
		}
		src.img = img
		src.platform = platformString(child.Platform)
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf("read manifest %s: %w", refStr, err)
		}
		src.img = img
	default:
		return nil, fmt.Errorf("%w: %s has media type %s, not an image or a manifest list", ErrNotImage, refStr, desc.MediaType)
	}
	if src.platform == "" {
		src.platform = configPlatform(src.img)
	}
	return src, nil
}

// pickPlatform picks linux/amd64 from a manifest list, or else the
// windows/amd64 image of the newest Windows build (a list of Windows images
// holds one per release; the newest is the one assessed).
func pickPlatform(idx v1.ImageIndex, ref string) (v1.Descriptor, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read manifest list %s: %w", ref, err)
	}
	var seen []string
	var win *v1.Descriptor
	var winVersion windowsimage.Version
	for i, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		if d.Platform.Architecture == defaultPlatform.Architecture && d.MediaType.IsImage() {
			switch d.Platform.OS {
			case defaultPlatform.OS:
				return d, nil
			case windowsimage.OSFamily:
				v, _ := windowsimage.ParseVersion(d.Platform.OSVersion)
				if win == nil || v.Build > winVersion.Build || v.Build == winVersion.Build && v.Revision > winVersion.Revision {
					win, winVersion = &im.Manifests[i], v
				}
			}
		}
		seen = append(seen, platformString(d.Platform))
	}
	if win != nil {
		return *win, nil
	}
	return v1.Descriptor{}, fmt.Errorf("%w: %s offers %s", ErrNoPlatform, ref, strings.Join(append(seen, "no platforms")[:max(len(seen), 1)], ", "))
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func configPlatform(img v1.Image) string {
	cf, err := img.ConfigFile()
	if err != nil || cf == nil {
		return ""
	}
	return platformString(&v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant})
}

// classifyRemote turns registry answers into the package's errors.
func classifyRemote(ref string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%w: %s: %v", ErrImageNotFound, ref, err)
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: %s: %v", ErrUnauthorized, ref, err)
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return fmt.Errorf("%w: %s: %v", ErrImageNotFound, ref, err)
			}
		}
	}
	return fmt.Errorf("pull %s: %w", ref, err)
}

// openLocal reads a `docker save` tar or an OCI image layout directory.
func openLocal(input string) (*source, error) {
	fi, err := os.Stat(input)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrImageNotFound, err)
	}
	src := &source{name: input, local: true}
	if fi.IsDir() {
		idx, err := layout.ImageIndexFromPath(input)
		if err != nil {
			return nil, fmt.Errorf("%w: %s is not an OCI image layout: %v", ErrNotImage, input, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: read index.json: %v", ErrNotImage, input, err)
		}
		var d v1.Descriptor
		switch {
		case len(im.Manifests) == 1 && im.Manifests[0].MediaType.IsImage():
			d = im.Manifests[0]
		case len(im.Manifests) == 1 && im.Manifests[0].MediaType.IsIndex():
			inner, err := idx.ImageIndex(im.Manifests[0].Digest)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrNotImage, input, err)
			}
			if d, err = pickPlatform(inner, input); err != nil {
				return nil, err
			}
			idx = inner
		default:
			if d, err = pickPlatform(idx, input); err != nil {
				return nil, err
			}
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNotImage, input, err)
		}
		src.img, src.digest, src.mediaType = img, d.Digest.String(), string(d.MediaType)
	} else {
		a, err := openArchive(input)
		if err != nil {
			return nil, err
		}
		img, err := a.image()
		if err != nil {
			_ = a.Close()
			return nil, fmt.Errorf("%w: %s: %v", ErrNotImage, input, err)
		}
		// A docker save archive holds no registry manifest, so the image is
		// known by its ID, the digest of its config, as `docker images`
		// shows it.
		id, err := img.ConfigName()
		if err != nil {
			_ = a.Close()
			return nil, fmt.Errorf("%w: %s: %v", ErrNotImage, input, err)
		}
		src.img, src.archive, src.digest, src.mediaType = img, a, id.String(), string(types.DockerManifestSchema2)
	}
	src.platform = configPlatform(src.img)
	return src, nil
}

// guardedImage is the v1.Image handed to Trivy: its layers charge a byte
// budget, classify decompression errors, reject path traversal and (for
// local images) check their diff IDs. It also supplies the names Trivy's
// image interface asks for.
type guardedImage struct {
	v1.Image
	src      *source
	budget   *budget
	verdicts *verdicts
	base     *baseObserver // a Windows image's base layer, watched as it is read; nil for others
}

// Layers are the image's layers, guarded as LayerByDiffID's are (Trivy
// asks for layers by diff ID; windowsimage reads the base layer this way).
func (g *guardedImage) Layers() ([]v1.Layer, error) {
	cf, err := g.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	out := make([]v1.Layer, 0, len(cf.RootFS.DiffIDs))
	for _, h := range cf.RootFS.DiffIDs {
		l, err := g.LayerByDiffID(h)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// Manifest is the image's manifest. A docker save archive has none, and
// making one would mean compressing every layer.
func (g *guardedImage) Manifest() (*v1.Manifest, error) {
	if g.src.archive != nil {
		return nil, fmt.Errorf("%s: a docker save archive holds no registry manifest", g.src.name)
	}
	return g.Image.Manifest()
}

func (g *guardedImage) Name() string { return g.src.name }

func (g *guardedImage) ID() (string, error) {
	h, err := g.Image.ConfigName()
	if err != nil {
		return "", fmt.Errorf("image config digest: %w", err)
	}
	return h.String(), nil
}

func (g *guardedImage) RepoTags() []string { return g.src.repoTags }

func (g *guardedImage) RepoDigests() []string {
	if g.src.local {
		return nil
	}
	repo, _, _ := strings.Cut(g.src.name, "@")
	return []string{repo + "@" + g.src.digest}
}

func (g *guardedImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	l, err := g.Image.LayerByDiffID(h)
	if err != nil {
		return nil, err
	}
	gl := &guardedLayer{Layer: l, diffID: h, budget: g.budget, verdicts: g.verdicts, stored: l.Compressed, verify: g.src.local}
	if g.base != nil && h == g.base.diffID {
		gl.observe = g.base.observe
	}
	if a := g.src.archive; a != nil {
		gl.stored = func() (io.ReadCloser, error) { return a.blob(h) }
	}
	if g.src.local {
		// Trivy computes the compressed digest of layers it believes are
		// compressed; for a layer of an archive that means gzipping it.
		// The marker field tells Trivy not to.
		return &localLayer{guardedLayer: gl}, nil
	}
	return gl, nil
}

// localLayer is a layer of a local archive. Trivy recognises layers that
// are stored uncompressed by a field of this name.
type localLayer struct {
	*guardedLayer
	UncompressedLayer struct{}
}

type guardedLayer struct {
	v1.Layer
	diffID   v1.Hash
	budget   *budget
	verdicts *verdicts
	stored   func() (io.ReadCloser, error) // the layer's bytes as stored: compressed, or a plain tar
	// verify hashes the content against the diff ID, for local images.
	// A registry layer's stored bytes are checked against the manifest's
	// digest by go-containerregistry; its diff ID is taken from the config
	// as Trivy takes it.
	verify bool
	// observe, when set, is told the name of every entry as the stream is
	// checked.
	observe func(name string)
}

// Uncompressed reads the layer as stored and decompresses it here rather
// than through go-containerregistry, so that every byte, stored and
// decompressed, is charged to the budget.
func (l *guardedLayer) Uncompressed() (io.ReadCloser, error) {
	id := l.diffID.String()
	rc, err := l.stored()
	if err != nil {
		return nil, fmt.Errorf("fetch layer %s: %w", id, err)
	}
	dec, compressed, err := decompress(&countingReader{r: rc, b: l.budget}, id)
	if err != nil {
		rc.Close()
		return nil, err
	}
	var r io.Reader = dec
	if compressed {
		r = &countingReader{r: dec, b: l.budget}
	}
	return newTarGuard(readCloser{r, closeBoth{dec, rc}}, l.diffID, l.verdicts, l.verify, l.observe), nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

type closeBoth [2]io.Closer

func (c closeBoth) Close() error { return errors.Join(c[0].Close(), c[1].Close()) }

// mediaTypeOf is the image's manifest media type, for the summary.
func mediaTypeOf(img v1.Image) string {
	mt, err := img.MediaType()
	if err != nil {
		return string(types.DockerManifestSchema2)
	}
	return string(mt)
}

// Resolve turns an image reference (registry/repo:tag or @digest) into a
// Target, asking the registry for the digest of a tag.
func (s *Scanner) Resolve(ctx context.Context, image string) (Target, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return Target{}, fmt.Errorf("%w: %q: %v", ErrBadTarget, image, err)
	}
	t := Target{Registry: ref.Context().RegistryStr(), Repository: ref.Context().RepositoryStr()}
	if d, ok := ref.(name.Digest); ok {
		t.Digest = d.DigestStr()
		return t, nil
	}
	t.Tag = ref.Identifier()
	auth := authn.Anonymous
	if s.opts.Auth != nil {
		if a := s.opts.Auth(t.Registry); a != nil {
			auth = a
		}
	}
	tr := s.opts.Transport
	if tr == nil {
		tr = remote.DefaultTransport
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(tr))
	if err != nil {
		return Target{}, classifyRemote(image, err)
	}
	t.Digest = desc.Digest.String()
	return t, nil
}
