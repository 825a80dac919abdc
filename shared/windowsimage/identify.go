// Package windowsimage tells what a Windows container image runs: the
// Windows Server release (from the build in the config's os.version), the
// cumulative update level (its revision) and the base image it is built on,
// Server Core or Nano Server. Together they are what the Windows advisory
// data (package msrc) is matched against; images that cannot be assessed get
// an Identity whose Unsupported field says why, never a clean result.
//
// The base is read, in order, from the image's
// org.opencontainers.image.base.name (manifest annotation or config label,
// as BuildKit and many pipelines set it, e.g.
// mcr.microsoft.com/windows/nanoserver:ltsc2022 or
// mcr.microsoft.com/dotnet/aspnet:8.0-nanoserver-ltsc2022), and otherwise
// from the files of the base (first) layer. Windows layers hold the file
// system under Files/ and registry hives under Hives/; Server Core has
// Windows PowerShell, the 32-bit subsystem (SysWOW64) and the .NET Framework,
// none of which Nano Server ships, so one of those paths marks Server Core and
// a complete Windows base layer without any of them is Nano Server. History
// entries ("Apply image 10.0.20348.1", "Install update 10.0.20348.2340") are
// written for both bases and do not tell them apart.
package windowsimage

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrNotWindows is returned for an image whose config does not say os: windows.
var ErrNotWindows = errors.New("not a Windows image")

// BaseNameKey is the OCI annotation (and label) naming an image's base.
const BaseNameKey = "org.opencontainers.image.base.name"

// MCR is where Microsoft publishes the Windows base images.
const MCR = "mcr.microsoft.com/windows/"

// Identity is what a Windows image runs.
type Identity struct {
	OSVersion string  // the config's os.version, e.g. "10.0.20348.2340"
	Version   Version // OSVersion parsed; zero when malformed
	Product   Product // the covered release; zero when the build is not covered
	Edition   Edition // the base; "" when it could not be told
	Evidence  string  // how the base was told
	// Unsupported says why the image cannot be assessed; "" when it can.
	Unsupported string
}

// Supported reports whether the image can be matched against the advisories.
func (id Identity) Supported() bool { return id.Unsupported == "" }

// PackageName names what the findings are in: "Windows Server 2022 Server Core".
func (id Identity) PackageName() string {
	return strings.TrimSpace(id.Product.Name + " " + id.Edition.Display())
}

// BaseImage is the MCR base image to rebuild from:
// "mcr.microsoft.com/windows/servercore:ltsc2022".
func (id Identity) BaseImage() string {
	if id.Edition == "" || id.Product.Tag == "" {
		return ""
	}
	return MCR + string(id.Edition) + ":" + id.Product.Tag
}

// Options bound the identification.
type Options struct {
	// MaxBaseLayerBytes bounds how much of the base layer is read,
	// uncompressed, looking for files; 0 means DefaultMaxBaseLayerBytes.
	MaxBaseLayerBytes int64
	// SkipLayers decides from the config and manifest only; the base stays
	// untold (and the image unsupported) when they are silent.
	SkipLayers bool
}

// DefaultMaxBaseLayerBytes is above the largest Server Core base layer
// (about 5 GB uncompressed); Nano Server's is about 300 MB.
const DefaultMaxBaseLayerBytes = 8 << 30

func (o *Options) defaults() {
	if o.MaxBaseLayerBytes <= 0 {
		o.MaxBaseLayerBytes = DefaultMaxBaseLayerBytes
	}
}

// Identify reads a Windows image's config (and, when the config and
// manifest do not name the base, its base layer). It returns ErrNotWindows
// for other images and an error when the image cannot be read; an image that
// can be read but not assessed gets an Identity with Unsupported set.
func Identify(ctx context.Context, img v1.Image, opts Options) (Identity, error) {
	opts.defaults()
	cf, err := img.ConfigFile()
	if err != nil {
		return Identity{}, fmt.Errorf("read image config: %w", err)
	}
	if !strings.EqualFold(cf.OS, "windows") {
		return Identity{}, fmt.Errorf("%w: the config says os %q", ErrNotWindows, cf.OS)
	}
	var annotations map[string]string
	if m, err := img.Manifest(); err == nil {
		annotations = m.Annotations
	}
	id := FromConfig(cf, annotations)
	if !id.Supported() || id.Edition != "" || opts.SkipLayers {
		return finish(id), nil
	}
	layers, err := img.Layers()
	if err != nil {
		return Identity{}, fmt.Errorf("list layers: %w", err)
	}
	if len(layers) == 0 {
		id.Unsupported = "the image has no layers, so its Windows base cannot be told"
		return id, nil
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		return Identity{}, fmt.Errorf("open base layer: %w", err)
	}
	defer rc.Close()
	var d BaseDetector
	if err := d.ReadTar(ctx, rc, opts.MaxBaseLayerBytes); err != nil {
		return Identity{}, fmt.Errorf("read base layer: %w", err)
	}
	id.Edition, id.Evidence, id.Unsupported = d.Result()
	return finish(id), nil
}

// finish marks an identity whose base is still untold as unsupported.
func finish(id Identity) Identity {
	if id.Supported() && id.Edition == "" {
		id.Unsupported = "the Windows base (Server Core or Nano Server) could not be told: no " + BaseNameKey +
			" annotation or label names it and the base layer was not read"
	}
	return id
}

// FromConfig identifies what the config and manifest annotations say: the
// release and revision from os.version, the base from BaseNameKey. Edition
// stays "" (and Unsupported "") when they do not name the base.
func FromConfig(cf *v1.ConfigFile, annotations map[string]string) Identity {
	id := fromVersion(cf.OSVersion)
	if !id.Supported() {
		return id
	}
	for _, src := range []struct {
		what string
		m    map[string]string
	}{{"manifest annotation", annotations}, {"config label", cf.Config.Labels}} {
		ref := strings.TrimSpace(src.m[BaseNameKey])
		if ref == "" {
			continue
		}
		ed, why := editionFromRef(ref)
		if why != "" {
			id.Unsupported = why
			return id
		}
		if ed != "" {
			id.Edition, id.Evidence = ed, fmt.Sprintf("%s %s=%s", src.what, BaseNameKey, ref)
			return id
		}
	}
	return id
}

// fromVersion identifies the release and revision of an os.version.
func fromVersion(osVersion string) Identity {
	id := Identity{OSVersion: osVersion}
	if osVersion == "" {
		id.Unsupported = "the Windows image config has no os.version, so its build and update revision are unknown"
		return id
	}
	v, err := ParseVersion(osVersion)
	if err != nil {
		id.Unsupported = err.Error()
		return id
	}
	id.Version = v
	if v.Major != 10 || v.Minor != 0 {
		id.Unsupported = fmt.Sprintf("os.version %s is not a Windows 10.0 build", osVersion)
		return id
	}
	p, ok := ProductForBuild(v.Build)
	if !ok {
		id.Unsupported = uncoveredReason(v.Build)
		return id
	}
	id.Product = p
	return id
}

// editionFromRef reads the base from an image reference: the MCR base
// repositories themselves, or a tag naming the base the way Microsoft's
// derived images do ("8.0-nanoserver-ltsc2022", "lts-windowsservercore-ltsc2022").
// why is set for a Windows base that is not covered.
func editionFromRef(ref string) (ed Edition, why string) {
	r := strings.ToLower(ref)
	if i := strings.Index(r, "@"); i >= 0 {
		r = r[:i]
	}
	repo, tag := r, ""
	if i := strings.LastIndex(r, ":"); i > strings.LastIndex(r, "/") {
		repo, tag = r[:i], r[i+1:]
	}
	switch {
	case strings.HasSuffix(repo, "windows/servercore"):
		return ServerCore, ""
	case strings.HasSuffix(repo, "windows/nanoserver"):
		return NanoServer, ""
	case strings.HasSuffix(repo, "windows/server"), repo == "mcr.microsoft.com/windows":
		return "", fmt.Sprintf("the base image %s is not covered: only Server Core and Nano Server bases are assessed", ref)
	case strings.Contains(tag, "nanoserver"):
		return NanoServer, ""
	case strings.Contains(tag, "servercore"):
		return ServerCore, ""
	}
	return "", ""
}

// serverCoreMarks are paths (lower case, under a Windows layer's Files/)
// that Server Core has and Nano Server does not: Windows PowerShell, the
// WOW64 subsystem and the .NET Framework.
var serverCoreMarks = []string{
	"files/windows/system32/windowspowershell/",
	"files/windows/syswow64/",
	"files/windows/microsoft.net/framework64/",
}

// windowsMark is a path every Windows base layer has.
const windowsMark = "files/windows/system32/"

// BaseDetector tells Server Core from Nano Server by the paths of a base
// layer. Feed it with Observe (from any walk over the layer) or ReadTar,
// then call Result. The zero value is ready.
type BaseDetector struct {
	windows bool   // a Windows system directory was seen
	core    string // the first Server Core path seen
	entries int
}

// Observe notes one path of the layer. It reports true once the answer is
// known (a Server Core path was seen), so a walk can stop early.
func (d *BaseDetector) Observe(name string) bool {
	d.entries++
	if d.core != "" {
		return true
	}
	p := strings.ToLower(strings.TrimPrefix(strings.ReplaceAll(name, `\`, "/"), "/"))
	if strings.HasPrefix(p, windowsMark) {
		d.windows = true
	}
	for _, m := range serverCoreMarks {
		if strings.HasPrefix(p, m) || p+"/" == m {
			d.core = name
			d.windows = true
			return true
		}
	}
	return false
}

// ReadTar observes the entries of an uncompressed layer tar, stopping early
// when the answer is known, and fails past maxBytes of input.
func (d *BaseDetector) ReadTar(ctx context.Context, r io.Reader, maxBytes int64) error {
	// One byte past the bound is let through, so that a layer cut short by
	// the bound tells itself apart from one that ends there.
	lr := &io.LimitedReader{R: r, N: maxBytes + 1}
	tr := tar.NewReader(lr)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		switch {
		case lr.N <= 0:
			return fmt.Errorf("base layer is larger than %d bytes", maxBytes)
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return fmt.Errorf("base layer is not a readable tar: %w", err)
		}
		if d.Observe(hdr.Name) {
			return nil
		}
	}
}

// Result is the base the observed paths show: ServerCore when a Server Core
// path was seen, NanoServer when a Windows system directory was seen
// without one (the whole layer must have been observed), and otherwise no
// edition and the reason.
func (d *BaseDetector) Result() (ed Edition, evidence, unsupported string) {
	switch {
	case d.core != "":
		return ServerCore, fmt.Sprintf("base layer has %s, which Nano Server lacks", d.core), ""
	case d.windows:
		return NanoServer, fmt.Sprintf("base layer (%d entries) has Windows system files but no Windows PowerShell, SysWOW64 or .NET Framework", d.entries), ""
	}
	return "", "", fmt.Sprintf("the base layer (%d entries) holds no Windows system files (Files/Windows/System32)", d.entries)
}
