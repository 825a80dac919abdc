package windowsimage_test

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// FuzzFromConfig feeds hostile os.version and base name values (both come
// from the pushed image) through identification.
func FuzzFromConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, osVersion, baseName string) {
		cf := &v1.ConfigFile{OS: "windows", OSVersion: osVersion}
		id := windowsimage.FromConfig(cf, map[string]string{windowsimage.BaseNameKey: baseName})
		if v, err := windowsimage.ParseVersion(osVersion); err == nil {
			if back, err := windowsimage.ParseVersion(v.String()); err != nil || back != v {
				t.Fatalf("%q parsed as %+v, which does not round-trip (%v)", osVersion, v, err)
			}
		} else if id.Supported() {
			t.Fatalf("malformed os.version %q is supported", osVersion)
		}
		if !id.Supported() {
			if id.Unsupported == "" || id.Edition != "" && !strings.Contains(id.Unsupported, "covered") {
				t.Fatalf("inconsistent identity %+v", id)
			}
			return
		}
		if id.Product.Build != id.Version.Build || id.Product.Name == "" {
			t.Fatalf("product %+v for version %+v", id.Product, id.Version)
		}
		if id.Edition != "" && id.Edition != windowsimage.ServerCore && id.Edition != windowsimage.NanoServer {
			t.Fatalf("edition %q", id.Edition)
		}
	})
}
