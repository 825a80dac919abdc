package vex

import (
	"fmt"
	"testing"

	"github.com/palisade-sec/palisade/shared/model"
)

// BenchmarkSuppression: looking up one finding among the statements of a
// large VEX set (10,000 statements, one image product each), as every
// annotated finding does.
func BenchmarkSuppression(b *testing.B) {
	d := &Document{ID: "urn:bench", Format: FormatOpenVEX}
	for i := range 10000 {
		d.Statements = append(d.Statements, Statement{
			Vulnerability: fmt.Sprintf("CVE-2024-%05d", i), Status: NotAffected, Justification: "component_not_present",
			Products: []Product{{Digest: fmt.Sprintf("sha256:%064x", i%50), Packages: []PackageRef{{Name: "openssl"}}}},
		})
	}
	s := NewSet(d)
	f := &model.Finding{Digest: fmt.Sprintf("sha256:%064x", 7), VulnID: "CVE-2024-00007", Aliases: []string{"GHSA-aaaa-bbbb-cccc"}, PkgName: "openssl"}
	b.ReportAllocs()
	for b.Loop() {
		if s.Suppression(f) == nil {
			b.Fatal("not suppressed")
		}
	}
}
