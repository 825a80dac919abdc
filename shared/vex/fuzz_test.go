package vex

import (
	"errors"
	"os"
	"testing"

	"github.com/palisade-sec/palisade/shared/model"
)

// FuzzParse: any input is a document with statements or an ErrInvalid,
// never a panic, and a parsed document's statements apply without one.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"openvex.json", "cyclonedx-vex.json"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data, SourceAPI)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if len(d.Statements) == 0 || d.ID == "" {
			t.Fatalf("accepted document without statements or id: %+v", d)
		}
		f := &model.Finding{Digest: digestWeb, VulnID: d.Statements[0].Vulnerability, PkgName: "openssl", InstalledVersion: "1"}
		_ = NewSet(d).Suppression(f)
	})
}
