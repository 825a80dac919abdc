package msrc_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/msrc"
)

func TestExtractNovember(t *testing.T) {
	m := extract(t, "2024-Nov")
	if m.ID != "2024-Nov" || m.Title != "November 2024 Security Updates" ||
		!m.Released.Equal(time.Date(2024, 12, 10, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("month header: %+v", m)
	}
	if diff := cmp.Diff([]int{17763, 20348, 26100}, m.Builds); diff != "" {
		t.Errorf("builds (-want +got):\n%s", diff)
	}
	want := []msrc.Vuln{
		{CVE: "CVE-2024-43451", Title: "NTLM Hash Disclosure Spoofing Vulnerability", Exploited: true, Fixes: []msrc.Fix{
			fix(17763, 6532, "KB5046615", "KB5044277", "Important", "Spoofing", 6.5, "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N/E:F/RL:O/RC:C"),
			fix(20348, 2849, "KB5046616", "KB5044281", "Important", "Spoofing", 6.5, "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N/E:F/RL:O/RC:C"),
			fix(26100, 2314, "KB5046617", "KB5044284", "Important", "Spoofing", 6.5, "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:N/A:N/E:F/RL:O/RC:C"),
		}},
		{CVE: "CVE-2024-49039", Title: "Windows Task Scheduler Elevation of Privilege Vulnerability", Exploited: true, Fixes: []msrc.Fix{
			fix(20348, 2849, "KB5046616", "KB5044281", "Important", "Elevation of Privilege", 8.8, "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H/E:F/RL:O/RC:C"),
			fix(26100, 2314, "KB5046617", "KB5044284", "Important", "Elevation of Privilege", 8.8, "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H/E:F/RL:O/RC:C"),
		}},
		{CVE: "CVE-2024-43639", Title: "Windows Kerberos Remote Code Execution Vulnerability", Fixes: []msrc.Fix{
			fix(17763, 6532, "KB5046615", "KB5044277", "Critical", "Remote Code Execution", 9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C"),
			fix(20348, 2849, "KB5046616", "KB5044281", "Critical", "Remote Code Execution", 9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C"),
			fix(26100, 2314, "KB5046617", "KB5044284", "Critical", "Remote Code Execution", 9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C"),
		}},
		// CVE-2024-43646 affects the Desktop Experience installations only.
		{CVE: "CVE-2024-49019", Title: "Active Directory Certificate Services Elevation of Privilege Vulnerability", Fixes: []msrc.Fix{
			// Rated per product: Moderate, with its own CVSS, in 2019.
			fix(17763, 6532, "KB5046615", "KB5044277", "Moderate", "Elevation of Privilege", 6.1, "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:H/A:N"),
			fix(20348, 2849, "KB5046616", "KB5044281", "Important", "Elevation of Privilege", 7.8, "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C"),
			fix(20348, 2966, "KB5048654", "KB5046616", "Important", "Elevation of Privilege", 7.8, "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C"),
			fix(26100, 2314, "KB5046617", "KB5044284", "Important", "Elevation of Privilege", 7.8, "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C"),
		}},
	}
	if diff := cmp.Diff(want, m.Vulns); diff != "" {
		t.Errorf("vulns (-want +got):\n%s", diff)
	}
	if m.Skipped != 0 {
		t.Errorf("skipped %d: %q", m.Skipped, m.SkippedSample)
	}
}

func fix(build, rev int, kb, supersedes, sev, impact string, score float64, vector string) msrc.Fix {
	return msrc.Fix{Build: build, Revision: rev, KB: kb, Supersedes: []string{supersedes},
		URL:      "https://catalog.update.microsoft.com/v7/site/Search.aspx?q=" + kb,
		Severity: sev, Impact: impact, Score: score, Vector: vector}
}

func TestExtractDecemberSkipsWhatCannotBeUsed(t *testing.T) {
	m := extract(t, "2024-Dec")
	got := map[string][]string{}
	for _, v := range m.Vulns {
		for _, f := range v.Fixes {
			got[v.CVE] = append(got[v.CVE], f.KB)
		}
	}
	want := map[string][]string{
		// The 2025 hotpatch (KB5048794) is not a fix for images.
		"CVE-2024-49112": {"KB5048661", "KB5048654", "KB5048667"},
		"CVE-2024-49138": {"KB5048661", "KB5048654", "KB5048667"},
		// 2019's fixed build names release 20348: skipped.
		"CVE-2024-49090": {"KB5048654"},
		// 2022 has no fixed build: skipped.
		"CVE-2024-49118": {"KB5048661", "KB5048667"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fixes (-want +got):\n%s", diff)
	}
	samples := strings.Join(m.SkippedSample, "\n")
	for _, s := range []string{
		"CVE-2024-49090 in Windows Server 2019 (Server Core installation): fixed build 10.0.20348.2966 is not a build of 17763",
		"CVE-2024-49118 in Windows Server 2022 (Server Core installation): affected, with no usable vendor fix",
	} {
		if !strings.Contains(samples, s) {
			t.Errorf("skipped samples lack %q:\n%s", s, samples)
		}
	}
	if m.Skipped != len(m.SkippedSample) || m.Skipped < 3 {
		t.Errorf("skipped %d, samples %d", m.Skipped, len(m.SkippedSample))
	}
}

func TestDecodeRejects(t *testing.T) {
	nov := readDoc(t, "2024-Nov")
	tests := []struct {
		name  string
		body  []byte
		month string
		want  string
	}{
		{"another month's document", nov, "2024-Dec", `the document's id is "2024-Nov"`},
		{"truncated", nov[:len(nov)/2], "2024-Nov", "unexpected EOF"},
		{"not JSON", []byte("<cvrfdoc xmlns=\"http://www.icasi.org/CVRF/schema/cvrf/1.1\"/>"), "2024-Nov", "invalid character"},
		{"two documents", append(append([]byte{}, nov...), nov...), "2024-Nov", "data after the document"},
		{"no vulnerabilities", []byte(`{"DocumentTracking":{"Identification":{"ID":{"Value":"2024-Nov"}}},"ProductTree":{"FullProductName":[{"ProductID":"1","Value":"x"}]},"Vulnerability":[]}`), "2024-Nov", "no vulnerabilities"},
		{"no products", []byte(`{"DocumentTracking":{"Identification":{"ID":{"Value":"2024-Nov"}}},"ProductTree":{},"Vulnerability":[{"CVE":"CVE-2024-1"}]}`), "2024-Nov", "no products"},
		{"a field of the wrong type", bytes.Replace(nov, []byte(`"BaseScore": 6.5`), []byte(`"BaseScore": "6.5"`), 1), "2024-Nov", "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := msrc.Decode(bytes.NewReader(tt.body), tt.month)
			if !errors.Is(err, msrc.ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrMalformed with %q", err, tt.want)
			}
		})
	}
}

func TestDecodeAcceptsByteOrderMark(t *testing.T) {
	body := append([]byte{0xEF, 0xBB, 0xBF}, readDoc(t, "2025-Jan")...)
	m, err := msrc.Decode(bytes.NewReader(body), "2025-Jan")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Vulns) != 2 {
		t.Fatalf("%d vulnerabilities", len(m.Vulns))
	}
}

func TestParseMonth(t *testing.T) {
	got, err := msrc.ParseMonth("2024-Mar")
	if err != nil || !got.Equal(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)) || msrc.MonthID(got) != "2024-Mar" {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"2024-mar", "2017-May-B", "24-Mar", "2024-03", ""} {
		if _, err := msrc.ParseMonth(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
