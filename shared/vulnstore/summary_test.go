package vulnstore_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/faultstore"
)

// summaries reads every stored vulnerability summary, by digest.
func summaries(t *testing.T, st store.Store) map[string][]model.VulnRef {
	t.Helper()
	out := map[string][]model.VulnRef{}
	err := vulnstore.EachSummary(t.Context(), st, func(v model.ImageVulns) error {
		out[v.Digest] = v.Vulns
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSummaryFollowsFindings: the summary of an image's open
// vulnerabilities follows each scan, is not rewritten by a scan that
// changes nothing, goes with the image's deletion, and can be rebuilt from
// the findings.
func TestSummaryFollowsFindings(t *testing.T) {
	st := faultstore.Open(t)
	ctx := t.Context()
	t1 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	img := model.Image{Digest: digest, Status: model.ImageActive}
	crit := finding("CVE-1", "openssl")
	crit.Severity, crit.SeverityRank, crit.KnownExploited = model.SeverityCritical, 5, true
	libcurl := finding("CVE-1", "libcurl")
	libcurl.FixedVersion = "8.1"
	low := finding("CVE-2", "zlib")
	low.Severity, low.SeverityRank = model.SeverityLow, 2
	img.Tags = []string{"1"}
	if _, err := vulnstore.Record(ctx, st, vulnstore.Scan{Image: img, SeenAt: t1.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	img.Tags = []string{"2"}
	ch, err := vulnstore.Record(ctx, st, vulnstore.Scan{Image: img, Findings: []model.Finding{low, libcurl, crit}, SeenAt: t1})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]model.VulnRef{digest: {
		{ID: "CVE-1", Rank: 5, Fixable: true, KEV: true, Packages: []string{"libcurl", "openssl"}},
		{ID: "CVE-2", Rank: 2, Packages: []string{"zlib"}},
	}}
	if d := cmp.Diff(want, summaries(t, st)); d != "" {
		t.Fatalf("after the scan (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want[digest], ch.Vulns); d != "" || !cmp.Equal(ch.Image.Tags, []string{"1", "2"}) {
		t.Errorf("changes: tags %v, vulnerabilities (-want +got):\n%s", ch.Image.Tags, d)
	}

	// The summary item's time says when it was last written.
	writtenAt := func() time.Time {
		t.Helper()
		var item model.State
		if _, err := st.Get(ctx, store.State, model.KindImageVulns, digest, &item); err != nil {
			t.Fatal(err)
		}
		return item.UpdatedAt
	}
	if _, err := vulnstore.Record(ctx, st, vulnstore.Scan{Image: img, Findings: []model.Finding{crit, low, libcurl}, SeenAt: t1.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if at := writtenAt(); !at.Equal(t1) {
		t.Errorf("a rescan that changed nothing wrote the summary (at %s)", at)
	}
	if _, err := vulnstore.Record(ctx, st, vulnstore.Scan{Image: img, Findings: []model.Finding{low}, SeenAt: t1.Add(48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if at := writtenAt(); !at.Equal(t1.Add(48 * time.Hour)) {
		t.Errorf("a rescan that fixed CVE-1 did not write the summary (written at %s)", at)
	}
	want[digest] = want[digest][1:]
	if d := cmp.Diff(want, summaries(t, st)); d != "" {
		t.Fatalf("after CVE-1 was fixed (-want +got):\n%s", d)
	}

	// Rebuilt from the stored findings: the same summary.
	if err := st.Delete(ctx, store.State, model.KindImageVulns, digest); err != nil {
		t.Fatal(err)
	}
	got, err := vulnstore.RebuildSummary(ctx, st, digest, t1)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want[digest], got.Vulns); d != "" {
		t.Errorf("rebuilt (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want, summaries(t, st)); d != "" {
		t.Errorf("rebuilt and stored (-want +got):\n%s", d)
	}

	if _, err := vulnstore.MarkDeleted(ctx, st, img, t1.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := summaries(t, st); len(got) != 0 {
		t.Errorf("a deleted image keeps its summary: %v", got)
	}
}
