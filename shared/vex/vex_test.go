package vex

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/shared/model"
)

const (
	digestWeb = "sha256:00000000000000000000000000000000000000000000000000000000000000aa"
	digestAPI = "sha256:00000000000000000000000000000000000000000000000000000000000000bb"
)

func finding(digest, repo, vuln, pkg, version string, aliases ...string) *model.Finding {
	return &model.Finding{Digest: digest, Registry: "contoso.azurecr.io", Repository: repo, VulnID: vuln, Aliases: aliases, PkgName: pkg, InstalledVersion: version}
}

func parseFile(t *testing.T, name string) *Document {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(data, SourceAPI)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return d
}

// status is what a set says of a finding: the suppression's status, or
// "counts".
func status(s *Set, f *model.Finding) string {
	if sup := s.Suppression(f); sup != nil {
		return sup.Status + "/" + sup.Justification
	}
	return "counts"
}

func TestOpenVEX(t *testing.T) {
	d := parseFile(t, "openvex.json")
	if d.ID != "https://contoso.example/vex/web-2026-11" || d.Format != FormatOpenVEX || len(d.Statements) != 3 || len(d.Hash) != 64 {
		t.Fatalf("document %+v", d)
	}
	if len(d.Ignored) != 1 || !strings.Contains(d.Ignored[0], "by tag") {
		t.Errorf("ignored %q: want the tag reference refused", d.Ignored)
	}
	if got := d.Vulnerabilities(); !slices.Equal(got, []string{"CVE-2023-0464", "CVE-2024-9999", "GHSA-aaaa-bbbb-cccc"}) {
		t.Errorf("vulnerabilities %q", got)
	}
	s := NewSet(d)
	for _, c := range []struct {
		name string
		f    *model.Finding
		want string
	}{
		{"the image", finding(digestWeb, "shop/web", "CVE-2023-0464", "openssl", "3.0.11-1"), "not_affected/vulnerable_code_not_in_execute_path"},
		{"by alias", finding(digestWeb, "shop/web", "GHSA-aaaa-bbbb-cccc", "openssl", "3.0.11-1"), "not_affected/vulnerable_code_not_in_execute_path"},
		{"another image", finding(digestAPI, "shop/web", "CVE-2023-0464", "openssl", "3.0.11-1"), "counts"},
		{"another CVE", finding(digestWeb, "shop/web", "CVE-2023-0465", "openssl", "3.0.11-1"), "counts"},
		{"a later affected statement for libssl3", finding(digestWeb, "shop/web", "CVE-2023-0464", "libssl3", "3.0.11-1"), "counts"},
		{"every digest of the repository", finding(digestAPI, "shop/web", "CVE-2024-9999", "zlib", "1"), "fixed/"},
		{"another repository", finding(digestAPI, "shop/api", "CVE-2024-9999", "zlib", "1"), "counts"},
	} {
		if got := status(s, c.f); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestCycloneDXVEX(t *testing.T) {
	d := parseFile(t, "cyclonedx-vex.json")
	if d.ID != "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79" || d.Format != FormatCycloneDX || len(d.Statements) != 4 {
		t.Fatalf("document %+v", d)
	}
	if len(d.Ignored) != 1 || !strings.Contains(d.Ignored[0], "urn:cdx") {
		t.Errorf("ignored %q: want the BOM-link refused", d.Ignored)
	}
	s := NewSet(d)
	for _, c := range []struct {
		name string
		f    *model.Finding
		want string
	}{
		{"the BOM's image", finding(digestWeb, "shop/web", "CVE-2023-0464", "openssl", "3.0.11-1"), "not_affected/code_not_reachable"},
		{"a component: that package in every image", finding(digestAPI, "shop/api", "CVE-2023-0465", "openssl", "3.0.11-1"), "fixed/"},
		{"another version of it", finding(digestAPI, "shop/api", "CVE-2023-0465", "openssl", "3.0.2-1"), "counts"},
		{"exploitable", finding(digestWeb, "shop/web", "CVE-2023-0466", "openssl", "3.0.11-1"), "counts"},
		{"false positive, by reference", finding(digestAPI, "shop/api", "CVE-2023-0467", "zlib", "1"), "not_affected/false_positive"},
		{"false positive, not that image", finding(digestWeb, "shop/web", "CVE-2023-0467", "zlib", "1"), "counts"},
	} {
		if got := status(s, c.f); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// TestLatestStatementWins: across documents the latest statement counts,
// whatever the order they are given in.
func TestLatestStatementWins(t *testing.T) {
	doc := func(id, ts, status, extra string) *Document {
		d, err := Parse([]byte(`{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "`+id+`", "author": "a", "timestamp": "`+ts+`", "version": 1,
"statements": [{"vulnerability": {"name": "CVE-2023-0464"}, "products": [{"@id": "`+digestWeb+`"}], "status": "`+status+`"`+extra+`}]}`), SourceAPI)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	old := doc("urn:a", "2026-11-01T00:00:00Z", "not_affected", `, "justification": "component_not_present"`)
	newer := doc("urn:b", "2026-11-20T00:00:00Z", "under_investigation", "")
	f := finding(digestWeb, "shop/web", "CVE-2023-0464", "openssl", "1")
	for _, s := range []*Set{NewSet(old, newer), NewSet(newer, old)} {
		if got := status(s, f); got != "counts" {
			t.Errorf("the later under_investigation statement: %s", got)
		}
	}
	if got := status(NewSet(old), f); got != "not_affected/component_not_present" {
		t.Errorf("alone: %s", got)
	}
	var none *Set
	if none.Suppression(f) != nil || none.Documents() != 0 {
		t.Error("a nil set suppresses")
	}
}

func TestInvalid(t *testing.T) {
	stmt := func(s string) string {
		return `{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "urn:x", "author": "a", "timestamp": "2026-11-01T00:00:00Z", "version": 1, "statements": [` + s + `]}`
	}
	for _, c := range []struct{ name, doc, want string }{
		{"not JSON", `{"@context": `, "not JSON"},
		{"unknown format", `{"spdxVersion": "SPDX-2.3"}`, "neither OpenVEX"},
		{"no vulnerability", stmt(`{"products": [{"@id": "` + digestWeb + `"}], "status": "fixed"}`), "no vulnerability name"},
		{"unknown status", stmt(`{"vulnerability": {"name": "CVE-2023-1"}, "products": [{"@id": "` + digestWeb + `"}], "status": "fine"}`), "statement 1 (CVE-2023-1)"},
		{"not_affected without justification", stmt(`{"vulnerability": {"name": "CVE-2023-1"}, "products": [{"@id": "` + digestWeb + `"}], "status": "not_affected"}`), "justification"},
		{"no product", stmt(`{"vulnerability": {"name": "CVE-2023-1"}, "status": "fixed"}`), "no product"},
		{"only products it cannot apply", stmt(`{"vulnerability": {"name": "CVE-2023-1"}, "products": [{"@id": "web:latest"}], "status": "fixed"}`), "no statement Palisade can apply"},
		{"bad OCI purl", stmt(`{"vulnerability": {"name": "CVE-2023-1"}, "products": [{"@id": "pkg:oci/web@1.0"}], "status": "fixed"}`), "sha256 digest"},
		{"CycloneDX without vulnerabilities", `{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}`, "no vulnerabilities"},
		{"CycloneDX without analysis", `{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "vulnerabilities": [{"id": "CVE-2023-1", "affects": [{"ref": "` + digestWeb + `"}]}]}`, "no analysis state"},
		{"CycloneDX unknown state", `{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "vulnerabilities": [{"id": "CVE-2023-1", "analysis": {"state": "maybe"}, "affects": [{"ref": "` + digestWeb + `"}]}]}`, "unknown analysis state"},
		{"CycloneDX affects nothing", `{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "vulnerabilities": [{"id": "CVE-2023-1", "analysis": {"state": "resolved"}}]}`, "affects nothing"},
	} {
		_, err := Parse([]byte(c.doc), SourceAPI)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalid naming %q", c.name, err, c.want)
		}
	}
	big := make([]byte, MaxDocumentBytes+1)
	if _, err := Parse(big, SourceAPI); !errors.Is(err, ErrInvalid) {
		t.Errorf("oversized: %v", err)
	}
}
