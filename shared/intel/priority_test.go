package intel_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/intel/inteltest"
	"github.com/palisade-sec/palisade/shared/model"
)

func TestPrioritise(t *testing.T) {
	kev := &model.KEV{DateAdded: "2024-01-01"}
	epss := func(s float64) *model.EPSS { return &model.EPSS{Score: s} }
	for _, tc := range []struct {
		name    string
		f       model.Finding
		running bool
		want    model.Priority
	}{
		{"kev running", model.Finding{Severity: model.SeverityLow, KEV: kev}, true, model.P1},
		{"very likely high running", model.Finding{Severity: model.SeverityHigh, EPSS: epss(0.5)}, true, model.P1},
		{"very likely medium running", model.Finding{Severity: model.SeverityMedium, EPSS: epss(0.9)}, true, model.P3},
		{"kev not running", model.Finding{Severity: model.SeverityLow, KEV: kev}, false, model.P2},
		{"likely critical running", model.Finding{Severity: model.SeverityCritical, EPSS: epss(0.1)}, true, model.P2},
		{"critical running fixed", model.Finding{Severity: model.SeverityCritical, FixedVersion: "1.2"}, true, model.P2},
		{"critical running no fix", model.Finding{Severity: model.SeverityCritical}, true, model.P3},
		{"very likely high not running", model.Finding{Severity: model.SeverityHigh, EPSS: epss(0.97)}, false, model.P3},
		{"high", model.Finding{Severity: model.SeverityHigh, FixedVersion: "1.2"}, false, model.P3},
		{"likely low", model.Finding{Severity: model.SeverityLow, EPSS: epss(0.2)}, false, model.P3},
		{"just under likely", model.Finding{Severity: model.SeverityMedium, EPSS: epss(0.0999)}, true, model.P4},
		{"medium", model.Finding{Severity: model.SeverityMedium, FixedVersion: "1.2"}, true, model.P4},
		{"unknown", model.Finding{Severity: model.SeverityUnknown}, false, model.P4},
		{"suppressed kev running", model.Finding{Severity: model.SeverityCritical, KEV: kev, Suppressed: &model.Suppression{Status: "not_affected"}}, true, model.P4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := intel.Prioritise(&tc.f, tc.running); got != tc.want {
				t.Errorf("priority %s, want %s", got, tc.want)
			}
		})
	}
}

func sampleFeeds(t *testing.T) *intel.Feeds {
	t.Helper()
	k, err := intel.DecodeKEV(bytes.NewReader(inteltest.Sample(t, "kev.json")), 0)
	if err != nil {
		t.Fatal(err)
	}
	e, err := intel.DecodeEPSS(bytes.NewReader(inteltest.Sample(t, "epss.csv")), 0)
	if err != nil {
		t.Fatal(err)
	}
	return &intel.Feeds{KEV: k, EPSS: e}
}

func TestAnnotate(t *testing.T) {
	fs := sampleFeeds(t)
	f := model.Finding{VulnID: "GHSA-jfh8-c2jp-5v3q", Aliases: []string{"CVE-2021-44228"}, Severity: model.SeverityCritical, KnownExploited: false}
	fs.Annotate(&f, false)
	if f.KEV == nil || f.KEV.DateAdded != "2021-12-10" || !f.KnownExploited || f.EPSS == nil || f.EPSS.Score != 0.94358 ||
		f.Priority != model.P2 || f.PriorityRank != 3 || f.MissingFeeds != nil {
		t.Fatalf("annotated by alias: %+v kev %+v epss %+v", f, f.KEV, f.EPSS)
	}
	fs.Annotate(&f, true)
	if f.Priority != model.P1 {
		t.Errorf("running: %s", f.Priority)
	}

	// Not listed: the KEV data and a stale flag go.
	g := model.Finding{VulnID: "CVE-2023-44487", Severity: model.SeverityHigh, KnownExploited: true, KEV: &model.KEV{DateAdded: "2020-01-01"}}
	fs.Annotate(&g, false)
	if g.KEV != nil || g.KnownExploited || g.EPSS == nil || g.Priority != model.P3 {
		t.Errorf("unlisted CVE: %+v", g)
	}

	// No feeds at all: severity alone, and the finding says so.
	var none *intel.Feeds
	h := model.Finding{VulnID: "CVE-2021-44228", Severity: model.SeverityCritical, FixedVersion: "2.17.1"}
	none.Annotate(&h, true)
	if h.KEV != nil || h.EPSS != nil || h.Priority != model.P2 || !slices.Equal(h.MissingFeeds, []string{"kev", "epss"}) {
		t.Errorf("no feeds: %+v", h)
	}
	// Feeds are keyed by CVE: a finding without one misses none.
	ghsa := model.Finding{VulnID: "GHSA-0000-0000-0000", Severity: model.SeverityLow}
	none.Annotate(&ghsa, false)
	if ghsa.MissingFeeds != nil || ghsa.Priority != model.P4 {
		t.Errorf("no CVE: %+v", ghsa)
	}
	partial := &intel.Feeds{KEV: fs.KEV}
	partial.Annotate(&h, true)
	if h.KEV == nil || h.Priority != model.P1 || !slices.Equal(h.MissingFeeds, []string{"epss"}) {
		t.Errorf("KEV only: %+v", h)
	}
}

// TestAnnotateKeepsImmaterialEPSS: a finding keeps the EPSS value it holds
// while the feed moves within its bucket, and takes the new value when it
// leaves it.
func TestAnnotateKeepsImmaterialEPSS(t *testing.T) {
	day := func(d int, score, pct float64) *intel.Feeds {
		csv := inteltest.EPSS(time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC), inteltest.Score{CVE: "CVE-2024-1000", Score: score, Percentile: pct})
		e, err := intel.DecodeEPSS(bytes.NewReader(csv), 0)
		if err != nil {
			t.Fatal(err)
		}
		return &intel.Feeds{EPSS: e}
	}
	f := model.Finding{VulnID: "CVE-2024-1000", Severity: model.SeverityMedium}
	day(1, 0.0981, 0.951).Annotate(&f, false)
	first := *f.EPSS
	day(2, 0.0984, 0.9512).Annotate(&f, false)
	if *f.EPSS != first {
		t.Errorf("immaterial move rewrote the score: %+v", f.EPSS)
	}
	day(3, 0.0996, 0.952).Annotate(&f, false)
	if f.EPSS.Date != "2026-11-03" || f.EPSS.Score != 0.0996 {
		t.Errorf("a move of 0.0015 kept %+v", f.EPSS)
	}
	day(4, 0.1, 0.952).Annotate(&f, false)
	if f.EPSS.Score != 0.1 || f.Priority != model.P3 {
		t.Errorf("crossing the likely threshold kept %+v (priority %s)", f.EPSS, f.Priority)
	}
	day(5, 0.1, 0.97).Annotate(&f, false)
	if f.EPSS.Percentile != 0.97 {
		t.Errorf("a percentile move of 0.018 kept %+v", f.EPSS)
	}
}
