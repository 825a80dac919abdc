package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/schematest"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// TestSBOM: the SBOM of a stored inventory, in both formats, valid against
// the official schemas and listing exactly the inventory's packages.
func TestSBOM(t *testing.T) {
	st := testenv.Store(t)
	inv := model.Inventory{OSFamily: "alpine", OSName: "3.19.1", Groups: []model.PackageGroup{
		{Type: "alpine", Class: "os-pkgs", Packages: []model.Package{
			{Name: "musl", Version: "1.2.4-r2", PURL: "pkg:apk/alpine/musl@1.2.4-r2?distro=3.19.1"},
			{Name: "busybox", Version: "1.36.1-r15", PURL: "pkg:apk/alpine/busybox@1.36.1-r15?distro=3.19.1"},
		}},
		{Type: "jar", Class: "lang-pkgs", Target: "app/app.jar", Packages: []model.Package{
			{Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1", PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", Path: "app/app.jar"},
		}},
	}}
	img := model.Image{Digest: digestOf(7), Registry: "contoso.azurecr.io", Repository: "shop/api", Status: model.ImageActive, ScannedAt: intelDay, PushedAt: intelDay}
	if _, err := vulnstore.Record(t.Context(), st, vulnstore.Scan{Image: img, Inventory: &inv, SeenAt: intelDay}); err != nil {
		t.Fatal(err)
	}
	noInv := model.Image{Digest: digestOf(8), Registry: "contoso.azurecr.io", Repository: "shop/api", Status: model.ImageFailed, Error: "pull failed"}
	if _, err := vulnstore.Record(t.Context(), st, vulnstore.Scan{Image: noInv, SeenAt: intelDay}); err != nil {
		t.Fatal(err)
	}
	h := New(st, Options{})
	wantNames := []string{"busybox", "musl", "org.apache.logging.log4j:log4j-core"}

	for _, c := range []struct{ query, schema, contentType string }{
		{"", schematest.CycloneDX16, "application/vnd.cyclonedx+json"},
		{"?format=cyclonedx", schematest.CycloneDX16, "application/vnd.cyclonedx+json"},
		{"?format=spdx", schematest.SPDX23, "application/spdx+json"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/images/"+digestOf(7)+"/sbom"+c.query, nil))
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != c.contentType {
			t.Fatalf("%s: %d %s: %s", c.query, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
		schematest.Validate(t, c.schema, rec.Body.Bytes())
		var doc struct {
			Components []struct{ Type, Name string }
			Packages   []struct{ Name, PrimaryPackagePurpose string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range doc.Components {
			if p.Type == "library" {
				names = append(names, p.Name)
			}
		}
		for _, p := range doc.Packages {
			if p.PrimaryPackagePurpose == "LIBRARY" {
				names = append(names, p.Name)
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, wantNames) {
			t.Errorf("%s: packages %q, want %q", c.query, names, wantNames)
		}
	}
	for _, c := range []struct {
		url  string
		code int
	}{
		{"/api/images/" + digestOf(7) + "/sbom?format=swid", http.StatusBadRequest},
		{"/api/images/" + digestOf(9) + "/sbom", http.StatusNotFound},
		{"/api/images/" + digestOf(8) + "/sbom", http.StatusNotFound},
		{"/api/images/nope/sbom", http.StatusBadRequest},
	} {
		if code, body := get(t, h, c.url, nil); code != c.code {
			t.Errorf("%s: %d %s, want %d", c.url, code, body, c.code)
		}
	}
}
