package vulnstore_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store/embedded"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

const digest = "sha256:da2a4fa1c010a8d99e6152f96a9d4edfdd09d4dd1f08333a894de221e5e9b7b6"

func finding(vuln, pkg string) model.Finding {
	return model.Finding{ID: model.FindingID(digest, vuln, pkg, "", "1.0"), Digest: digest, VulnID: vuln, PkgName: pkg,
		InstalledVersion: "1.0", Severity: model.SeverityHigh, SeverityRank: 4, Status: model.FindingOpen}
}

// changes is Changes with the new findings reduced to their ids.
type changes struct {
	New, Resolved, Open int
	NewIDs              []string
}

// summarize checks that every new finding is first seen at the scan's time
// and returns the changes with the new findings' ids.
func summarize(t *testing.T, ch vulnstore.Changes, at time.Time) changes {
	t.Helper()
	out := changes{New: ch.New, Resolved: ch.Resolved, Open: ch.Open}
	for _, f := range ch.NewFindings {
		if !f.FirstSeen.Equal(at) || f.Status != model.FindingOpen {
			t.Errorf("new finding %s: first seen %s, status %s; want %s, open", f.VulnID, f.FirstSeen, f.Status, at)
		}
		out.NewIDs = append(out.NewIDs, f.ID)
	}
	if len(out.NewIDs) != ch.New {
		t.Errorf("%d new findings listed, %d counted", len(out.NewIDs), ch.New)
	}
	return out
}

func TestRecordKeepsHistory(t *testing.T) {
	st, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	t1 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	t2 := t1.Add(24 * time.Hour)
	img := model.Image{Digest: digest, Status: model.ImageActive, Tags: []string{"1"}}
	inv := model.Inventory{OSFamily: "debian", OSName: "12", Groups: []model.PackageGroup{{Type: "debian", Class: "os-pkgs", Packages: []model.Package{{Name: "a", Version: "1.0"}}}}}

	ch, err := vulnstore.Record(ctx, st, vulnstore.Scan{Image: img, Inventory: &inv, Findings: []model.Finding{finding("CVE-1", "a"), finding("CVE-2", "a")}, SeenAt: t1})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(changes{New: 2, Open: 2, NewIDs: []string{finding("CVE-1", "a").ID, finding("CVE-2", "a").ID}}, summarize(t, ch, t1)); d != "" {
		t.Fatalf("first scan changes (-want +got):\n%s", d)
	}
	// A rescan (no inventory) finds CVE-2 fixed and CVE-3 new.
	img.Tags = []string{"2"}
	ch, err = vulnstore.Record(ctx, st, vulnstore.Scan{Image: img, Findings: []model.Finding{finding("CVE-1", "a"), finding("CVE-3", "a")}, SeenAt: t2})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(changes{New: 1, Resolved: 1, Open: 2, NewIDs: []string{finding("CVE-3", "a").ID}}, summarize(t, ch, t2)); d != "" {
		t.Fatalf("rescan changes (-want +got):\n%s", d)
	}
	got, err := vulnstore.Findings(ctx, st, digest)
	if err != nil {
		t.Fatal(err)
	}
	type hist struct {
		Status              string
		FirstSeen, LastSeen time.Time
		ResolvedAt          time.Time
	}
	summary := map[string]hist{}
	for _, f := range got {
		summary[f.VulnID] = hist{f.Status, f.FirstSeen, f.LastSeen, f.ResolvedAt}
	}
	want := map[string]hist{
		"CVE-1": {model.FindingOpen, t1, t1, time.Time{}}, // unchanged: not rewritten
		"CVE-2": {model.FindingResolved, t1, t1, t2},
		"CVE-3": {model.FindingOpen, t2, t2, time.Time{}},
	}
	if d := cmp.Diff(want, summary); d != "" {
		t.Fatalf("finding history (-want +got):\n%s", d)
	}
	stored, err := vulnstore.GetImage(ctx, st, digest)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"1", "2"}, stored.Tags); d != "" {
		t.Fatalf("tags (-want +got):\n%s", d)
	}
	back, err := vulnstore.Inventory(ctx, st, digest)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(inv, back); d != "" {
		t.Fatalf("inventory kept by the rescan (-want +got):\n%s", d)
	}
}

// TestRecordAgainReportsSameChanges: a scan recorded again (after an attempt
// cut short, or redelivered) reports the changes it made the first time.
func TestRecordAgainReportsSameChanges(t *testing.T) {
	st, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t1 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	t2 := t1.Add(24 * time.Hour)
	img := model.Image{Digest: digest, Status: model.ImageActive}
	if _, err := vulnstore.Record(t.Context(), st, vulnstore.Scan{Image: img, Findings: []model.Finding{finding("CVE-1", "a"), finding("CVE-2", "a")}, SeenAt: t1}); err != nil {
		t.Fatal(err)
	}
	rescan := vulnstore.Scan{Image: img, Findings: []model.Finding{finding("CVE-1", "a"), finding("CVE-3", "a")}, SeenAt: t2}
	want := changes{New: 1, Resolved: 1, Open: 2, NewIDs: []string{finding("CVE-3", "a").ID}}
	for i := range 2 {
		ch, err := vulnstore.Record(t.Context(), st, rescan)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, summarize(t, ch, t2)); d != "" {
			t.Fatalf("recording %d (-want +got):\n%s", i+1, d)
		}
	}
}
