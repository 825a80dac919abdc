package msrc_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/windowsimage"
)

func twoMonths(t testing.TB) *msrc.Index {
	t.Helper()
	return msrc.NewIndex([]msrc.Month{extract(t, "2024-Dec"), extract(t, "2024-Nov")})
}

// Findings are exactly right below, at and above each fixed build.
func TestMatchAroundFixedBuilds(t *testing.T) {
	ix := twoMonths(t)
	tests := []struct {
		osVersion string
		want      string // CVEs, most severe first, then by id
	}{
		// Windows Server 2022: November 2849, December 2966. CVE-2024-49019
		// was re-released there with December's update.
		{"10.0.20348.2848", "CVE-2024-43639 CVE-2024-49112 CVE-2024-43451 CVE-2024-49019 CVE-2024-49039 CVE-2024-49090 CVE-2024-49138"},
		{"10.0.20348.2849", "CVE-2024-49112 CVE-2024-49019 CVE-2024-49090 CVE-2024-49138"},
		{"10.0.20348.2850", "CVE-2024-49112 CVE-2024-49019 CVE-2024-49090 CVE-2024-49138"},
		{"10.0.20348.2965", "CVE-2024-49112 CVE-2024-49019 CVE-2024-49090 CVE-2024-49138"},
		{"10.0.20348.2966", ""},
		{"10.0.20348.2967", ""},
		// Windows Server 2019: November 6532, December 6659; CVE-2024-49090's
		// 2019 fix names another release's build and is not used.
		{"10.0.17763.6531", "CVE-2024-43639 CVE-2024-49112 CVE-2024-49118 CVE-2024-43451 CVE-2024-49138 CVE-2024-49019"},
		{"10.0.17763.6532", "CVE-2024-49112 CVE-2024-49118 CVE-2024-49138"},
		{"10.0.17763.6658", "CVE-2024-49112 CVE-2024-49118 CVE-2024-49138"},
		{"10.0.17763.6659", ""},
		// Windows Server 2025: the December hotpatch build (2528) is below
		// the cumulative update's (2605) and fixes nothing for an image.
		{"10.0.26100.2528", "CVE-2024-49112 CVE-2024-49118 CVE-2024-49138"},
		{"10.0.26100.2604", "CVE-2024-49112 CVE-2024-49118 CVE-2024-49138"},
		{"10.0.26100.2605", ""},
	}
	for _, tt := range tests {
		t.Run(tt.osVersion, func(t *testing.T) {
			for _, ed := range []windowsimage.Edition{windowsimage.ServerCore, windowsimage.NanoServer} {
				fs, err := ix.Match(identity(t, tt.osVersion, ed))
				if err != nil {
					t.Fatal(err)
				}
				if got := cves(fs); got != tt.want {
					t.Errorf("%s: got  %s\nwant %s", ed, got, tt.want)
				}
			}
		})
	}
}

// The findings of one image in full: what the re-released fix, the
// per-product rating and the remediation sentence come to.
func TestMatchFindingFields(t *testing.T) {
	ix := twoMonths(t)
	fs, err := ix.Match(identity(t, "10.0.20348.2849", windowsimage.ServerCore))
	if err != nil {
		t.Fatal(err)
	}
	var got msrc.Finding
	for _, f := range fs {
		if f.CVE == "CVE-2024-49019" {
			got = f
		}
	}
	want := msrc.Finding{
		CVE: "CVE-2024-49019", Title: "Active Directory Certificate Services Elevation of Privilege Vulnerability",
		Product: "Windows Server 2022 Server Core", Installed: "10.0.20348.2849",
		FixedBuild: "10.0.20348.2966", KB: "KB5048654", URL: "https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB5048654",
		Severity: model.SeverityHigh, MSRCSeverity: "Important", Impact: "Elevation of Privilege",
		CVSSScore: 7.8, CVSSVector: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C",
		Month:       "2024-Nov",
		Remediation: "Rebuild the image from mcr.microsoft.com/windows/servercore:ltsc2022 at revision ≥ 2966 (10.0.20348.2966, KB5048654 or a later cumulative update).",
		References: []string{
			"https://msrc.microsoft.com/update-guide/vulnerability/CVE-2024-49019",
			"https://support.microsoft.com/help/5048654",
			"https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB5048654",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// Rated Moderate with its own score in 2019; exploited is carried.
	fs, err = ix.Match(identity(t, "10.0.17763.6000", windowsimage.NanoServer))
	if err != nil {
		t.Fatal(err)
	}
	byCVE := map[string]msrc.Finding{}
	for _, f := range fs {
		byCVE[f.CVE] = f
	}
	if f := byCVE["CVE-2024-49019"]; f.Severity != model.SeverityMedium || f.CVSSScore != 6.1 || f.KB != "KB5046615" {
		t.Errorf("2019 rating: %+v", f)
	}
	if f := byCVE["CVE-2024-49138"]; !f.Exploited || f.Severity != model.SeverityHigh {
		t.Errorf("exploited: %+v", f)
	}
	if f := byCVE["CVE-2024-49112"]; f.Product != "Windows Server 2019 Nano Server" ||
		!strings.HasPrefix(f.Remediation, "Rebuild the image from mcr.microsoft.com/windows/nanoserver:ltsc2019 at revision ≥ 6659 ") {
		t.Errorf("nano server naming: %+v", f)
	}
}

func TestFindingModel(t *testing.T) {
	ix := twoMonths(t)
	fs, err := ix.Match(identity(t, "10.0.20348.2900", windowsimage.ServerCore))
	if err != nil {
		t.Fatal(err)
	}
	img := model.Image{Digest: "sha256:" + strings.Repeat("ab", 32), Registry: "contoso.azurecr.io", Repository: "shop/api"}
	var got model.Finding
	for _, f := range fs {
		if f.CVE == "CVE-2024-49138" {
			got = f.Model(img)
		}
	}
	want := model.Finding{
		ID:     model.FindingID(img.Digest, "CVE-2024-49138", "Windows Server 2022 Server Core", "", "10.0.20348.2900"),
		Digest: img.Digest, Registry: "contoso.azurecr.io", Repository: "shop/api",
		VulnID: "CVE-2024-49138", PkgName: "Windows Server 2022 Server Core", PkgType: "windows",
		InstalledVersion: "10.0.20348.2900", FixedVersion: "10.0.20348.2966", FixStatus: "fixed",
		Severity: model.SeverityHigh, SeveritySource: "msrc", SeverityRank: model.SeverityHigh.Rank(),
		CVSSScore: 7.8, CVSSVector: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C",
		Title:      "Windows Common Log File System Driver Elevation of Privilege Vulnerability",
		PrimaryURL: "https://msrc.microsoft.com/update-guide/vulnerability/CVE-2024-49138",
		References: []string{
			"https://msrc.microsoft.com/update-guide/vulnerability/CVE-2024-49138",
			"https://support.microsoft.com/help/5048654",
			"https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB5048654",
		},
		KnownExploited: true,
		Remediation:    "Rebuild the image from mcr.microsoft.com/windows/servercore:ltsc2022 at revision ≥ 2966 (10.0.20348.2966, KB5048654 or a later cumulative update).",
		Status:         model.FindingOpen,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestMatchRefusesWhatItCannotAssess(t *testing.T) {
	ix := twoMonths(t)
	_, err := ix.Match(windowsimage.Identity{OSVersion: "10.0.14393.1", Unsupported: "Windows build 14393 is not covered"})
	if !errors.Is(err, msrc.ErrUnsupported) || !strings.Contains(err.Error(), "14393") {
		t.Fatalf("got %v", err)
	}
	// A month that does not list the release cannot vouch for it.
	nov := extract(t, "2024-Nov")
	nov.Builds = []int{17763, 20348}
	_, err = msrc.NewIndex([]msrc.Month{nov}).Match(identity(t, "10.0.26100.1", windowsimage.ServerCore))
	if !errors.Is(err, msrc.ErrNotCovered) || !strings.Contains(err.Error(), "Windows Server 2025 (Server Core installation)") {
		t.Fatalf("got %v", err)
	}
	if _, err := msrc.NewIndex(nil).Match(identity(t, "10.0.20348.1", windowsimage.ServerCore)); !errors.Is(err, msrc.ErrNotCovered) {
		t.Fatalf("empty index: got %v", err)
	}
}

// How one CVE's fix is chosen when the documents list several for a release.
func TestResolveSupersededFixes(t *testing.T) {
	f := func(rev int, kb string, supersedes ...string) msrc.Fix {
		return msrc.Fix{Build: 20348, Revision: rev, KB: kb, Supersedes: supersedes, Severity: "Important"}
	}
	month := func(id string, fixes ...msrc.Fix) msrc.Month {
		return msrc.Month{ID: id, Builds: []int{20348}, Vulns: []msrc.Vuln{{CVE: "CVE-2024-1000", Fixes: fixes}}}
	}
	tests := []struct {
		name   string
		months []msrc.Month
		want   string // fixed build, KB
	}{
		{"one fix", []msrc.Month{month("2024-Nov", f(2849, "KB5046616", "KB5044281"))}, "10.0.20348.2849 KB5046616"},
		{"a re-release supersedes the first fix",
			[]msrc.Month{month("2024-Nov", f(2849, "KB5046616", "KB5044281"), f(2966, "KB5048654", "KB5046616"))}, "10.0.20348.2966 KB5048654"},
		{"listed in reverse order",
			[]msrc.Month{month("2024-Nov", f(2966, "KB5048654", "KB5046616"), f(2849, "KB5046616", "KB5044281"))}, "10.0.20348.2966 KB5048654"},
		{"a superseding update in a later month's document",
			[]msrc.Month{month("2024-Nov", f(2849, "KB5046616")), month("2024-Dec", f(2966, "KB5048654", "KB5046616"))}, "10.0.20348.2966 KB5048654"},
		{"two unrelated fixes: the lowest build carries it",
			[]msrc.Month{month("2024-Nov", f(2900, "KB5046700"), f(2849, "KB5046616"))}, "10.0.20348.2849 KB5046616"},
		{"the same KB corrected in a later month",
			[]msrc.Month{month("2024-Dec", f(2970, "KB5048654")), month("2024-Nov", f(2966, "KB5048654"))}, "10.0.20348.2970 KB5048654"},
		{"a supersedence cycle trusts none of it",
			[]msrc.Month{month("2024-Nov", f(2849, "KB5046616", "KB5048654"), f(2966, "KB5048654", "KB5046616"))}, "10.0.20348.2849 KB5046616"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := msrc.NewIndex(tt.months).Match(identity(t, "10.0.20348.1", windowsimage.ServerCore))
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != 1 {
				t.Fatalf("%d findings", len(fs))
			}
			if got := fs[0].FixedBuild + " " + fs[0].KB; got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// A later cumulative update supersedes an earlier one, yet each CVE keeps
// the build of its own remediation.
func TestEachCVEKeepsItsOwnFix(t *testing.T) {
	fs, err := twoMonths(t).Match(identity(t, "10.0.20348.1", windowsimage.ServerCore))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range fs {
		got[f.CVE] = f.FixedBuild + " " + f.KB
	}
	want := map[string]string{
		"CVE-2024-43451": "10.0.20348.2849 KB5046616",
		"CVE-2024-49039": "10.0.20348.2849 KB5046616",
		"CVE-2024-43639": "10.0.20348.2849 KB5046616",
		"CVE-2024-49019": "10.0.20348.2966 KB5048654",
		"CVE-2024-49112": "10.0.20348.2966 KB5048654",
		"CVE-2024-49138": "10.0.20348.2966 KB5048654",
		"CVE-2024-49090": "10.0.20348.2966 KB5048654",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestIndexVersion(t *testing.T) {
	a, b := twoMonths(t), twoMonths(t)
	if a.Version() != b.Version() || !strings.HasPrefix(a.Version(), "msrc:2024-Dec:") {
		t.Fatalf("versions %q, %q", a.Version(), b.Version())
	}
	if diff := cmp.Diff([]string{"2024-Nov", "2024-Dec"}, a.Months()); diff != "" {
		t.Error(diff)
	}
	dec := extract(t, "2024-Dec")
	dec.Vulns[0].Fixes[0].Severity = "Low"
	if c := msrc.NewIndex([]msrc.Month{extract(t, "2024-Nov"), dec}); c.Version() == a.Version() {
		t.Fatal("a revised month left the version unchanged")
	}
}
