package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// NamespaceBase prefixes SPDX document namespaces (unique per image and
// scan time, as the specification asks; nothing is served there).
const NamespaceBase = "https://palisade-sec.github.io/spdx/"

const noAssertion = "NOASSERTION"

func writeSPDX(w io.Writer, s subject, opts Options) error {
	imageID := common.ElementID("Image-" + s.img.Digest[len("sha256:"):len("sha256:")+16])
	image := &spdx.Package{
		PackageName: s.name, PackageSPDXIdentifier: imageID, PackageVersion: s.img.Digest,
		PackageDownloadLocation: noAssertion, PrimaryPackagePurpose: "CONTAINER",
		PackageChecksums:          []common.Checksum{{Algorithm: common.SHA256, Value: s.img.Digest[len("sha256:"):]}},
		PackageExternalReferences: []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: s.purl}},
		PackageLicenseConcluded:   noAssertion, PackageLicenseDeclared: noAssertion, PackageCopyrightText: noAssertion,
	}
	doc := &spdx.Document{
		SPDXVersion: spdx.Version, DataLicense: spdx.DataLicense, SPDXIdentifier: "DOCUMENT",
		DocumentName:      s.name + "@" + s.img.Digest,
		DocumentNamespace: NamespaceBase + s.img.Digest + "/" + uuidOf(s.img.Digest, s.created),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: opts.Tool + "-" + opts.Version}},
			Created:  s.created.Format(time.RFC3339),
		},
		Packages: []*spdx.Package{image},
		Relationships: []*spdx.Relationship{{
			RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", string(imageID)), Relationship: common.TypeRelationshipDescribe,
		}},
	}
	contains := func(id common.ElementID) {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", string(imageID)), RefB: common.MakeDocElementID("", string(id)), Relationship: common.TypeRelationshipContains,
		})
	}
	if s.os != nil {
		id := common.ElementID("OperatingSystem-" + s.os.family)
		doc.Packages = append(doc.Packages, &spdx.Package{
			PackageName: s.os.family, PackageSPDXIdentifier: id, PackageVersion: s.os.name, PackageDownloadLocation: noAssertion,
			PrimaryPackagePurpose: "OPERATING_SYSTEM", PackageLicenseConcluded: noAssertion, PackageLicenseDeclared: noAssertion, PackageCopyrightText: noAssertion,
		})
		contains(id)
	}
	for _, p := range s.pkgs {
		id := common.ElementID("Package-" + p.id)
		sp := &spdx.Package{
			PackageName: p.Name, PackageSPDXIdentifier: id, PackageVersion: version(p.Package), PackageDownloadLocation: noAssertion,
			PrimaryPackagePurpose: "LIBRARY", PackageLicenseConcluded: noAssertion, PackageLicenseDeclared: noAssertion, PackageCopyrightText: noAssertion,
			PackageSourceInfo: sourceInfo(p),
		}
		if p.PURL != "" {
			sp.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: p.PURL}}
		}
		doc.Packages = append(doc.Packages, sp)
		contains(id)
	}
	if err := spdxjson.Write(doc, w, spdxjson.Indent("  ")); err != nil {
		return fmt.Errorf("write SPDX SBOM of %s: %w", s.img.Digest, err)
	}
	return nil
}

// sourceInfo says where a package was found.
func sourceInfo(p pkg) string {
	where := p.Type + " package"
	if p.Path != "" {
		where += " in " + p.Path
	} else if p.Target != "" {
		where += " in " + p.Target
	}
	if p.Layer != "" {
		where += ", layer " + p.Layer
	}
	return where
}

// uuidOf is a UUID (version 5 layout) derived from the image and the scan
// time, so the same scan gives the same document.
func uuidOf(digest string, at time.Time) string {
	h := sha256.Sum256([]byte(digest + "\x00" + at.UTC().Format(time.RFC3339Nano)))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
