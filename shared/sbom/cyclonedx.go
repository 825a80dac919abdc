package sbom

import (
	"fmt"
	"io"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

func writeCycloneDX(w io.Writer, s subject, opts Options) error {
	imageRef := "image:" + s.img.Digest
	root := cdx.Component{
		BOMRef: imageRef, Type: cdx.ComponentTypeContainer, Name: s.name, Version: s.img.Digest, PackageURL: s.purl,
		Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: s.img.Digest[len("sha256:"):]}},
	}
	if len(s.img.Tags) > 0 {
		root.Properties = &[]cdx.Property{}
		for _, t := range s.img.Tags {
			*root.Properties = append(*root.Properties, cdx.Property{Name: "palisade:image:tag", Value: t})
		}
	}
	var comps []cdx.Component
	var deps []string
	if s.os != nil {
		comps = append(comps, cdx.Component{BOMRef: "os:" + s.os.family, Type: cdx.ComponentTypeOS, Name: s.os.family, Version: s.os.name})
		deps = append(deps, "os:"+s.os.family)
	}
	for _, p := range s.pkgs {
		c := cdx.Component{BOMRef: "pkg:" + p.id, Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: version(p.Package), PackageURL: p.PURL}
		props := []cdx.Property{{Name: "palisade:package:type", Value: p.Type}, {Name: "palisade:package:class", Value: p.Class}}
		for _, kv := range [][2]string{{"palisade:package:path", p.Path}, {"palisade:package:target", p.Target}, {"palisade:package:layer", p.Layer},
			{"palisade:package:arch", p.Arch}, {"palisade:package:source", p.SrcName}} {
			if kv[1] != "" {
				props = append(props, cdx.Property{Name: kv[0], Value: kv[1]})
			}
		}
		c.Properties = &props
		comps = append(comps, c)
		deps = append(deps, c.BOMRef)
	}
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + uuidOf(s.img.Digest, s.created)
	bom.Metadata = &cdx.Metadata{
		Timestamp: s.created.Format(time.RFC3339),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: opts.Tool, Version: opts.Version}}},
		Component: &root,
	}
	bom.Components = &comps
	bom.Dependencies = &[]cdx.Dependency{{Ref: imageRef, Dependencies: &deps}}
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return fmt.Errorf("write CycloneDX SBOM of %s: %w", s.img.Digest, err)
	}
	return nil
}
