package api

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/intel/inteltest"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/testenv"
)

var intelDay = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// seedIntel stores two images whose findings carry exploitation data:
// image 1 runs, image 2 does not.
func seedIntel(t *testing.T) store.Store {
	t.Helper()
	st := testenv.Store(t)
	k, err := intel.DecodeKEV(bytes.NewReader(inteltest.KEV("2026.11.29", intelDay,
		inteltest.Vuln{CVE: "CVE-2021-44228", DateAdded: "2021-12-10", DueDate: "2021-12-24", Ransomware: true})), 0)
	if err != nil {
		t.Fatal(err)
	}
	e, err := intel.DecodeEPSS(bytes.NewReader(inteltest.EPSS(intelDay,
		inteltest.Score{CVE: "CVE-2021-44228", Score: 0.94, Percentile: 0.99},
		inteltest.Score{CVE: "CVE-2023-4911", Score: 0.4, Percentile: 0.97},
		inteltest.Score{CVE: "CVE-2024-0001", Score: 0.05, Percentile: 0.6})), 0)
	if err != nil {
		t.Fatal(err)
	}
	feeds := &intel.Feeds{KEV: k, EPSS: e}
	finding := func(d, id, pkg string, sev model.Severity) model.Finding {
		return model.Finding{ID: model.FindingID(d, id, pkg, "", "1"), Digest: d, VulnID: id, PkgName: pkg, InstalledVersion: "1", Severity: sev, SeverityRank: sev.Rank()}
	}
	for i, fs := range [][]model.Finding{
		{finding(digestOf(1), "CVE-2021-44228", "log4j-core", model.SeverityCritical), finding(digestOf(1), "CVE-2023-4911", "libc6", model.SeverityHigh),
			finding(digestOf(1), "CVE-2024-0001", "curl", model.SeverityLow), finding(digestOf(1), "CVE-2024-0002", "tar", model.SeverityMedium)},
		{finding(digestOf(2), "CVE-2021-44228", "log4j-core", model.SeverityCritical), finding(digestOf(2), "CVE-2024-0001", "curl", model.SeverityLow)},
	} {
		img := model.Image{ID: digestOf(i + 1), Digest: digestOf(i + 1), Registry: "contoso.azurecr.io", Repository: "web", Status: model.ImageActive}
		if _, err := vulnstore.Record(t.Context(), st, vulnstore.Scan{Image: img, Findings: fs, SeenAt: intelDay, Intel: feeds, Running: i == 0}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// listed is "image vuln priority" of each item, in the order answered.
func listed(t *testing.T, body map[string]json.RawMessage) []string {
	t.Helper()
	var items []model.Finding
	if err := json.Unmarshal(body["items"], &items); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range items {
		out = append(out, f.Digest[len(f.Digest)-1:]+" "+f.VulnID+" "+string(f.Priority))
	}
	return out
}

func TestFindingExploitationFilters(t *testing.T) {
	a := New(seedIntel(t), Options{})
	for _, tc := range []struct {
		url    string
		sorted bool // the answer's order is checked
		want   []string
	}{
		{"/api/findings?kev=true", false, []string{"1 CVE-2021-44228 P1", "2 CVE-2021-44228 P2"}},
		{"/api/findings?kev=false&priority=p2", false, []string{"1 CVE-2023-4911 P2"}},
		{"/api/findings?minEpss=0.4", false, []string{"1 CVE-2021-44228 P1", "1 CVE-2023-4911 P2", "2 CVE-2021-44228 P2"}},
		{"/api/findings?priority=P2&sort=priority", true, []string{"1 CVE-2021-44228 P1", "2 CVE-2021-44228 P2", "1 CVE-2023-4911 P2"}},
		{"/api/images/" + digestOf(1) + "/findings?sort=priority", true, []string{"1 CVE-2021-44228 P1", "1 CVE-2023-4911 P2", "1 CVE-2024-0001 P4", "1 CVE-2024-0002 P4"}},
		{"/api/images/" + digestOf(2) + "/findings?minEpss=0.01&status=open", false, []string{"2 CVE-2021-44228 P2", "2 CVE-2024-0001 P4"}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			code, body := get(t, a, tc.url, nil)
			if code != 200 {
				t.Fatalf("status %d: %s", code, body["error"])
			}
			got := listed(t, body)
			if !tc.sorted {
				slices.Sort(got)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}

	// Sorted pages follow one another.
	var pages []string
	next := "/api/findings?sort=priority&limit=2"
	for range 5 {
		code, body := get(t, a, next, nil)
		if code != 200 {
			t.Fatalf("%s: %d %s", next, code, body["error"])
		}
		pages = append(pages, listed(t, body)...)
		var cont string
		_ = json.Unmarshal(body["continuation"], &cont)
		if cont == "" {
			break
		}
		next = "/api/findings?sort=priority&limit=2&continuation=" + url.QueryEscape(cont)
	}
	if len(pages) != 6 || pages[0] != "1 CVE-2021-44228 P1" || !strings.HasSuffix(pages[5], "P4") {
		t.Errorf("sorted pages: %q", pages)
	}

	for _, tc := range []struct{ url, want string }{
		{"/api/findings?priority=P5", "priority"},
		{"/api/findings?kev=yes", "kev must be true or false"},
		{"/api/findings?minEpss=1.5", "minEpss must be a number from 0 to 1"},
		{"/api/findings?minEpss=NaN", "minEpss must be a number from 0 to 1"},
		{"/api/findings?sort=severity", `unknown sort \"severity\"`},
		{"/api/findings?sort=priority&continuation=abc", "sorted list"},
	} {
		if code, body := get(t, a, tc.url, nil); code != 400 || !strings.Contains(string(body["error"]), tc.want) {
			t.Errorf("%s: %d %s, want 400 naming %q", tc.url, code, body["error"], tc.want)
		}
	}
}

// TestIntelStatus: /api/intel says when there is no feed, and reports the
// feeds held once downloaded.
func TestIntelStatus(t *testing.T) {
	st := testenv.Store(t)
	srv := inteltest.NewServer(t, inteltest.KEV("2026.11.29", intelDay.Add(-time.Hour),
		inteltest.Vuln{CVE: "CVE-2021-44228", DateAdded: "2021-12-10"}, inteltest.Vuln{CVE: "CVE-2014-0160", DateAdded: "2022-05-04"}),
		inteltest.EPSS(intelDay.Add(-time.Hour), inteltest.Score{CVE: "CVE-2021-44228", Score: 0.9, Percentile: 0.9}))
	src := intel.NewSource(st, intel.Options{KEVURL: srv.KEVURL(), EPSSURL: srv.EPSSURL(), MinKEVEntries: 1, MinEPSSRows: 1, Now: func() time.Time { return intelDay }})
	a := New(st, Options{Feeds: src})
	report := func() intelReport {
		code, body := get(t, a, "/api/intel", nil)
		if code != 200 {
			t.Fatalf("status %d: %s", code, body["error"])
		}
		raw, _ := json.Marshal(body)
		var r intelReport
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := report()
	if !r.Stale || len(r.Feeds) != 2 || r.Feeds[0].Feed != "kev" || r.Feeds[0].Held || !slices.Contains(r.Feeds[0].Problems, "never downloaded") {
		t.Fatalf("before any download: %+v", r)
	}
	if _, err := src.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	r = report()
	if r.Stale || !r.Feeds[0].Held || r.Feeds[0].Version != "2026.11.29" || r.Feeds[1].Entries != 1 || !r.Feeds[1].CheckedAt.Equal(intelDay) {
		t.Fatalf("after a download: %+v", r)
	}
	if code, body := get(t, New(st, Options{}), "/api/intel", nil); code != 200 || !strings.Contains(string(body["stale"]), "true") {
		t.Errorf("without a source: %d %v", code, body)
	}
}
