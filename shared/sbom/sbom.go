// Package sbom writes an image's software bill of materials, CycloneDX 1.6
// or SPDX 2.3 (JSON), from Palisade's own package inventory: the one a
// scan stores (GET /api/images/{digest}/sbom reads it, no pull) or the one
// `palisade scan` just made. It does not link the scanner.
//
// Both list the image (a container component, or package with purpose
// CONTAINER, named by its pkg:oci purl), its operating system when known,
// and every package of the inventory with its version, package URL and
// where it was found (the file, for language packages; the layer). The
// documents are deterministic: the same image and inventory give the same
// bytes (the creation time is the scan's).
package sbom

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/palisade-sec/palisade/shared/model"
)

// Formats.
const (
	CycloneDX = "cyclonedx"
	SPDX      = "spdx"
)

// Formats lists the formats Write accepts.
func Formats() []string { return []string{CycloneDX, SPDX} }

// ContentType is the media type of a format's documents.
func ContentType(format string) string {
	if format == SPDX {
		return "application/spdx+json"
	}
	return "application/vnd.cyclonedx+json"
}

// Options describe the document's producer.
type Options struct {
	// Tool and Version name the producer; "" means "palisade" and the
	// binary's module version ("dev" when it has none).
	Tool, Version string
}

func (o *Options) defaults() {
	if o.Tool == "" {
		o.Tool = "palisade"
	}
	if o.Version == "" {
		o.Version = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			o.Version = bi.Main.Version
		}
	}
}

// ErrFormat is an unknown format.
var ErrFormat = errors.New("unknown SBOM format")

// Write writes the SBOM of img and its inventory in format.
func Write(w io.Writer, format string, img model.Image, inv model.Inventory, opts Options) error {
	opts.defaults()
	if err := model.CheckDigest(img.Digest); err != nil {
		return fmt.Errorf("SBOM: %w", err)
	}
	s := subjectOf(img, inv)
	switch format {
	case CycloneDX:
		return writeCycloneDX(w, s, opts)
	case SPDX:
		return writeSPDX(w, s, opts)
	}
	return fmt.Errorf("%w %q (want %s)", ErrFormat, format, strings.Join(Formats(), " or "))
}

// subject is what both formats describe.
type subject struct {
	img     model.Image
	name    string // REGISTRY/REPOSITORY, or the digest
	purl    string
	created time.Time
	os      *osInfo
	pkgs    []pkg
}

type osInfo struct{ family, name string }

// pkg is one package of the inventory, with a stable id.
type pkg struct {
	model.Package
	Type, Class, Target string
	id                  string // unique in the document
}

func subjectOf(img model.Image, inv model.Inventory) subject {
	s := subject{img: img, name: img.Digest, created: img.ScannedAt.UTC().Truncate(time.Second)}
	if s.created.IsZero() {
		s.created = time.Unix(0, 0).UTC()
	}
	if img.Repository != "" {
		s.name = img.Registry + "/" + img.Repository
	}
	s.purl = ociPURL(img)
	if inv.OSFamily != "" {
		s.os = &osInfo{family: inv.OSFamily, name: inv.OSName}
	}
	seen := map[string]int{}
	for _, g := range inv.Groups {
		for _, p := range g.Packages {
			key := strings.Join([]string{g.Type, g.Target, p.Name, version(p), p.Arch, p.Path}, "\x00")
			id := model.HashID("sbom", key)
			if n := seen[id]; n > 0 {
				id += "-" + strconv.Itoa(n)
			}
			seen[model.HashID("sbom", key)]++
			s.pkgs = append(s.pkgs, pkg{Package: p, Type: g.Type, Class: g.Class, Target: g.Target, id: id})
		}
	}
	slices.SortStableFunc(s.pkgs, func(a, b pkg) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(version(a.Package), version(b.Package)), strings.Compare(a.id, b.id))
	})
	return s
}

// version is a package's full version: epoch, version and release as the
// package manager writes it.
func version(p model.Package) string {
	v := p.Version
	if p.Release != "" {
		v += "-" + p.Release
	}
	if p.Epoch > 0 {
		v = strconv.Itoa(p.Epoch) + ":" + v
	}
	return v
}

// ociPURL is the image's package URL: pkg:oci/NAME@DIGEST with its
// repository_url.
func ociPURL(img model.Image) string {
	name := img.Repository
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	if name == "" {
		name = "image"
	}
	var q packageurl.Qualifiers
	if img.Repository != "" {
		q = packageurl.QualifiersFromMap(map[string]string{"repository_url": img.Registry + "/" + img.Repository})
	}
	return packageurl.NewPackageURL("oci", "", strings.ToLower(name), img.Digest, q, "").ToString()
}
