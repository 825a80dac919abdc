package cli_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/palisade-sec/palisade/functions/cli"
	"github.com/palisade-sec/palisade/tests/schematest"
)

// TestScanSBOM: --format cyclonedx and spdx write the image's SBOM, valid
// against the official schemas and listing the packages the scan found
// (as its JSON output lists them).
func TestScanSBOM(t *testing.T) {
	withFixtureDB(t)
	tarPath := debianTar(t)
	code, out, stderr := run(t, "--input", tarPath, "--format", "json")
	if code != cli.ExitOK {
		t.Fatalf("json: exit %d: %s", code, stderr)
	}
	var scanned struct {
		Image    struct{ Digest string }
		Findings []struct{ PkgName string }
	}
	if err := json.Unmarshal([]byte(out), &scanned); err != nil {
		t.Fatal(err)
	}

	var cdxNames, spdxNames []string
	for _, c := range []struct {
		format, schema string
		names          *[]string
	}{{"cyclonedx", schematest.CycloneDX16, &cdxNames}, {"spdx", schematest.SPDX23, &spdxNames}} {
		code, out, stderr := run(t, "--input", tarPath, "--format", c.format)
		if code != cli.ExitOK {
			t.Fatalf("%s: exit %d: %s", c.format, code, stderr)
		}
		schematest.Validate(t, c.schema, []byte(out))
		var doc struct {
			Metadata struct {
				Component struct{ Version string }
			}
			Components []struct{ Type, Name, Purl string }
			Packages   []struct {
				Name, VersionInfo, PrimaryPackagePurpose string
			}
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		for _, p := range doc.Components {
			if p.Type == "library" {
				*c.names = append(*c.names, p.Name)
			}
		}
		for _, p := range doc.Packages {
			if p.PrimaryPackagePurpose == "LIBRARY" {
				*c.names = append(*c.names, p.Name)
			}
			if p.PrimaryPackagePurpose == "CONTAINER" && p.VersionInfo != scanned.Image.Digest {
				t.Errorf("spdx: image package %+v, want digest %s", p, scanned.Image.Digest)
			}
		}
		if c.format == "cyclonedx" && doc.Metadata.Component.Version != scanned.Image.Digest {
			t.Errorf("cyclonedx: image %q, want %s", doc.Metadata.Component.Version, scanned.Image.Digest)
		}
		slices.Sort(*c.names)
	}
	if !slices.Equal(cdxNames, []string{"bash", "libc6", "libssl3", "lodash", "zlib1g"}) || !slices.Equal(cdxNames, spdxNames) {
		t.Errorf("packages: cyclonedx %q, spdx %q", cdxNames, spdxNames)
	}
	for _, f := range scanned.Findings {
		if !slices.Contains(cdxNames, f.PkgName) {
			t.Errorf("the SBOM lacks %s, which has a finding", f.PkgName)
		}
	}
}
