package model

import "testing"

func TestParseCVE(t *testing.T) {
	for _, tc := range []struct {
		in           string
		year, number uint32
		ok           bool
	}{
		{"CVE-2024-1234", 2024, 1234, true},
		{"CVE-2021-44228", 2021, 44228, true},
		{"CVE-2024-1234567", 2024, 1234567, true},
		{"CVE-1999-0001", 1999, 1, true},
		{"CVE-2024-123", 0, 0, false},        // three digits
		{"CVE-24-1234", 0, 0, false},         // two-digit year
		{"cve-2024-1234", 0, 0, false},       // lower case
		{"CVE-2024-12a4", 0, 0, false},       // not a number
		{"CVE-2024-1234567890", 0, 0, false}, // ten digits
		{"GHSA-xxxx-yyyy-zzzz", 0, 0, false},
		{"CVE-1998-0001", 0, 0, false}, // before CVE ids were assigned
		{"", 0, 0, false},
	} {
		y, n, ok := ParseCVE(tc.in)
		if ok != tc.ok || y != tc.year || n != tc.number {
			t.Errorf("ParseCVE(%q) = %d, %d, %v; want %d, %d, %v", tc.in, y, n, ok, tc.year, tc.number, tc.ok)
		}
	}
}

func TestFindingCVE(t *testing.T) {
	for _, tc := range []struct {
		f    Finding
		want string
	}{
		{Finding{VulnID: "CVE-2023-4911"}, "CVE-2023-4911"},
		{Finding{VulnID: "GHSA-jfh8-c2jp-5v3q", Aliases: []string{"GO-2022-0001", "CVE-2021-44228"}}, "CVE-2021-44228"},
		{Finding{VulnID: "GHSA-jfh8-c2jp-5v3q"}, ""},
	} {
		if got := tc.f.CVE(); got != tc.want {
			t.Errorf("%+v: CVE() = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestPriority(t *testing.T) {
	for i, p := range []Priority{P4, P3, P2, P1} {
		if p.Rank() != i+1 {
			t.Errorf("%s rank %d", p, p.Rank())
		}
		got, err := ParsePriority(" " + string(p) + " ")
		if err != nil || got != p {
			t.Errorf("ParsePriority(%s) = %s, %v", p, got, err)
		}
	}
	if _, err := ParsePriority("P5"); err == nil {
		t.Error("P5 parsed")
	}
}
