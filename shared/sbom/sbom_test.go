package sbom_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/sbom"
	"github.com/palisade-sec/palisade/tests/schematest"
)

const digest = "sha256:4bcff63911fcb4448bd4fdacec207030997caf25e9bea4045fa6c8c44de311d1"

func image() model.Image {
	return model.Image{Digest: digest, Registry: "contoso.azurecr.io", Repository: "shop/web", Tags: []string{"1.4.2"},
		ScannedAt: time.Date(2026, 11, 29, 8, 0, 0, 123, time.UTC)}
}

// inventory has OS packages (one with an epoch), language packages of two
// files, and the same package found twice in one file.
func inventory() model.Inventory {
	return model.Inventory{OSFamily: "debian", OSName: "12.5", Groups: []model.PackageGroup{
		{Type: "debian", Class: "os-pkgs", Packages: []model.Package{
			{Name: "openssl", Version: "3.0.11", Release: "1~deb12u2", Arch: "amd64", SrcName: "openssl", PURL: "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12.5", Layer: "sha256:aa"},
			{Name: "libc6", Version: "2.36", Release: "9+deb12u3", Epoch: 0, PURL: "pkg:deb/debian/libc6@2.36-9+deb12u3?distro=debian-12.5"},
			{Name: "perl-base", Version: "5.36.0", Release: "7", Epoch: 1},
		}},
		{Type: "npm", Class: "lang-pkgs", Target: "app/package-lock.json", Packages: []model.Package{
			{Name: "lodash", Version: "4.17.20", PURL: "pkg:npm/lodash@4.17.20", Path: "app/package-lock.json"},
			{Name: "lodash", Version: "4.17.20", PURL: "pkg:npm/lodash@4.17.20", Path: "app/package-lock.json"},
		}},
		{Type: "gobinary", Class: "lang-pkgs", Target: "usr/bin/web", Packages: []model.Package{
			{Name: "golang.org/x/net", Version: "v0.17.0", PURL: "pkg:golang/golang.org/x/net@v0.17.0", Path: "usr/bin/web"},
		}},
	}}
}

// want is "name version purl" of every package of the inventory.
var want = []string{
	"golang.org/x/net v0.17.0 pkg:golang/golang.org/x/net@v0.17.0",
	"libc6 2.36-9+deb12u3 pkg:deb/debian/libc6@2.36-9+deb12u3?distro=debian-12.5",
	"lodash 4.17.20 pkg:npm/lodash@4.17.20",
	"lodash 4.17.20 pkg:npm/lodash@4.17.20",
	"openssl 3.0.11-1~deb12u2 pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12.5",
	"perl-base 1:5.36.0-7 ",
}

func write(t *testing.T, format string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := sbom.Write(&b, format, image(), inventory(), sbom.Options{Version: "1.2.3"}); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := sbom.Write(&again, format, image(), inventory(), sbom.Options{Version: "1.2.3"}); err != nil || !bytes.Equal(b.Bytes(), again.Bytes()) {
		t.Errorf("%s: the same image gives different documents (%v)", format, err)
	}
	return b.Bytes()
}

func TestCycloneDX(t *testing.T) {
	doc := write(t, sbom.CycloneDX)
	schematest.Validate(t, schematest.CycloneDX16, doc)
	var bom struct {
		BOMFormat, SpecVersion, SerialNumber string
		Metadata                             struct {
			Timestamp string
			Component struct{ Type, Name, Version, Purl string }
		}
		Components []struct {
			Type, Name, Version, Purl string
			BOMRef                    string `json:"bom-ref"`
		}
		Dependencies []struct {
			Ref       string
			DependsOn []string
		}
	}
	if err := json.Unmarshal(doc, &bom); err != nil {
		t.Fatal(err)
	}
	m := bom.Metadata
	if bom.SpecVersion != "1.6" || m.Timestamp != "2026-11-29T08:00:00Z" || m.Component.Type != "container" || m.Component.Name != "contoso.azurecr.io/shop/web" ||
		m.Component.Purl != "pkg:oci/web@"+digest+"?repository_url=contoso.azurecr.io%2Fshop%2Fweb" {
		t.Errorf("metadata %+v", m)
	}
	var got []string
	refs := map[string]bool{}
	for _, c := range bom.Components {
		refs[c.BOMRef] = true
		if c.Type == "operating-system" {
			if c.Name != "debian" || c.Version != "12.5" {
				t.Errorf("OS component %+v", c)
			}
			continue
		}
		got = append(got, c.Name+" "+c.Version+" "+c.Purl)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("components\n%q\nwant\n%q", got, want)
	}
	if len(refs) != len(bom.Components) || len(bom.Dependencies) != 1 || len(bom.Dependencies[0].DependsOn) != len(bom.Components) {
		t.Errorf("bom-refs not unique or dependencies incomplete: %d refs, %+v", len(refs), bom.Dependencies)
	}
}

func TestSPDX(t *testing.T) {
	doc := write(t, sbom.SPDX)
	schematest.Validate(t, schematest.SPDX23, doc)
	var d struct {
		SPDXVersion       string
		DocumentNamespace string
		Packages          []struct {
			SPDXID                string
			Name, VersionInfo     string
			PrimaryPackagePurpose string
			ExternalRefs          []struct{ ReferenceType, ReferenceLocator string }
		}
		Relationships []struct{ SpdxElementID, RelatedSpdxElement, RelationshipType string }
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if d.SPDXVersion != "SPDX-2.3" || !strings.HasPrefix(d.DocumentNamespace, sbom.NamespaceBase+digest+"/") {
		t.Errorf("document %s %s", d.SPDXVersion, d.DocumentNamespace)
	}
	var got []string
	ids := map[string]bool{}
	for _, p := range d.Packages {
		ids[p.SPDXID] = true
		purl := ""
		for _, r := range p.ExternalRefs {
			if r.ReferenceType == "purl" {
				purl = r.ReferenceLocator
			}
		}
		if p.PrimaryPackagePurpose == "LIBRARY" {
			got = append(got, p.Name+" "+p.VersionInfo+" "+purl)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("packages\n%q\nwant\n%q", got, want)
	}
	// The document describes the image, which contains every other package.
	contains := 0
	for _, r := range d.Relationships {
		if r.RelationshipType == "CONTAINS" && ids[r.RelatedSpdxElement] {
			contains++
		}
	}
	if len(ids) != len(d.Packages) || contains != len(d.Packages)-1 || d.Relationships[0].RelationshipType != "DESCRIBES" {
		t.Errorf("%d ids for %d packages, %d CONTAINS: %+v", len(ids), len(d.Packages), contains, d.Relationships)
	}
}

// TestSchemasReject: the validation can fail (a document missing what the
// schemas require is refused), so the tests above mean something.
func TestSchemasReject(t *testing.T) {
	for _, c := range []struct{ schema, format, drop string }{
		{schematest.CycloneDX16, sbom.CycloneDX, `"bomFormat": "CycloneDX",`},
		{schematest.SPDX23, sbom.SPDX, `"spdxVersion": "SPDX-2.3",`},
	} {
		doc := write(t, c.format)
		broken := bytes.Replace(doc, []byte(c.drop), nil, 1)
		if bytes.Equal(broken, doc) {
			t.Fatalf("%s: %q not in the document", c.format, c.drop)
		}
		if schematest.Check(c.schema, broken) == nil {
			t.Errorf("%s without %s validates", c.format, c.drop)
		}
	}
	if err := sbom.Write(&bytes.Buffer{}, "swid", image(), inventory(), sbom.Options{}); !errors.Is(err, sbom.ErrFormat) {
		t.Errorf("unknown format: %v", err)
	}
}
