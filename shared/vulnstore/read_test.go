package vulnstore_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/faultstore"
)

func digestN(n int) string { return fmt.Sprintf("sha256:%064x", n) }

// seedImages records three images of contoso.azurecr.io: web:1 (pushed day
// 1, a critical known-exploited and a low finding), web:1 again as a newer
// digest (day 3, one medium), and api:2 deleted.
func seedImages(t *testing.T, st store.Store) {
	t.Helper()
	day := func(n int) time.Time { return time.Date(2026, 5, n, 0, 0, 0, 0, time.UTC) }
	rec := func(n int, repo, tag string, pushed time.Time, sevs ...model.Severity) {
		img := model.Image{Digest: digestN(n), Registry: "contoso.azurecr.io", Repository: repo, Tags: []string{tag},
			Status: model.ImageActive, PushedAt: pushed, PushedUnix: pushed.Unix()}
		counts := model.Counts{}
		var fs []model.Finding
		for i, sev := range sevs {
			f := model.Finding{Digest: img.Digest, VulnID: fmt.Sprintf("CVE-2026-%04d", 9-i), PkgName: "openssl", InstalledVersion: "3.0",
				Severity: sev, SeverityRank: sev.Rank(), KnownExploited: sev == model.SeverityCritical}
			f.ID = model.FindingID(f.Digest, f.VulnID, f.PkgName, "", f.InstalledVersion)
			fs = append(fs, f)
			counts[sev]++
		}
		img.SetCounts(counts)
		if _, err := vulnstore.Record(t.Context(), st, vulnstore.Scan{Image: img, Findings: fs, SeenAt: pushed}); err != nil {
			t.Fatal(err)
		}
	}
	rec(1, "web", "1", day(1), model.SeverityCritical, model.SeverityLow)
	rec(2, "web", "1", day(3), model.SeverityMedium)
	rec(3, "api", "2", day(2), model.SeverityHigh)
	if _, err := vulnstore.MarkDeleted(t.Context(), st, model.Image{Digest: digestN(3)}, day(4)); err != nil {
		t.Fatal(err)
	}
}

func digests(imgs []model.Image) []string {
	var out []string
	for _, i := range imgs {
		out = append(out, i.Digest)
	}
	sort.Strings(out)
	return out
}

func TestListImagesAndFindings(t *testing.T) {
	st := faultstore.Open(t)
	seedImages(t, st)
	for _, tc := range []struct {
		name string
		f    vulnstore.ImageFilter
		want []string
	}{
		{"all", vulnstore.ImageFilter{}, []string{digestN(1), digestN(2), digestN(3)}},
		{"repository", vulnstore.ImageFilter{Repository: "web"}, []string{digestN(1), digestN(2)}},
		{"status", vulnstore.ImageFilter{Status: model.ImageDeleted}, []string{digestN(3)}},
		{"medium or worse", vulnstore.ImageFilter{MinSeverity: model.SeverityMedium}, []string{digestN(1), digestN(2)}},
		{"other registry", vulnstore.ImageFilter{Registry: "other.azurecr.io"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := vulnstore.ListImages(t.Context(), st, tc.f, store.Cursor{})
			if err != nil {
				t.Fatal(err)
			}
			if l.Items == nil {
				t.Error("Items is nil, want an empty list")
			}
			if d := cmp.Diff(tc.want, digests(l.Items)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	if _, err := vulnstore.ListImages(t.Context(), st, vulnstore.ImageFilter{}, store.Cursor{Continuation: "bogus!"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("bogus continuation: %v, want ErrInvalid", err)
	}
	l, err := vulnstore.ListFindings(t.Context(), st, digestN(1), vulnstore.FindingFilter{MinSeverity: model.SeverityHigh}, store.Cursor{})
	if err != nil || len(l.Items) != 1 || l.Items[0].Severity != model.SeverityCritical {
		t.Errorf("high or worse findings of web:1: %+v, %v", l.Items, err)
	}
	l, err = vulnstore.ListFindings(t.Context(), st, digestN(3), vulnstore.FindingFilter{Status: model.FindingResolved}, store.Cursor{})
	if err != nil || len(l.Items) != 1 {
		t.Errorf("resolved findings of the deleted image: %+v, %v", l.Items, err)
	}
}

func TestActiveImagesPages(t *testing.T) {
	st := faultstore.Open(t)
	seedImages(t, st)
	var seen []model.Image
	cur := store.Cursor{Limit: 1}
	for pages := 0; ; pages++ {
		l, err := vulnstore.ActiveImages(t.Context(), st, time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC), cur)
		if err != nil || pages > 5 {
			t.Fatalf("page %d: %v", pages, err)
		}
		seen = append(seen, l.Items...)
		if l.Continuation == "" {
			break
		}
		cur.Continuation = l.Continuation
	}
	// Pushed on day 3; day 1 is before the window and day 2's is deleted.
	if d := cmp.Diff([]string{digestN(2)}, digests(seen)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestResolveTag(t *testing.T) {
	st := faultstore.Open(t)
	seedImages(t, st)
	for _, tc := range []struct{ registry, repo, tag, want string }{
		{"contoso.azurecr.io", "web", "1", digestN(2)}, // the newer push of the tag
		{"Contoso.AzureCR.io", "web", "1", digestN(2)},
		{"contoso.azurecr.io", "api", "2", ""}, // deleted
		{"contoso.azurecr.io", "web", "9", ""},
	} {
		got, err := vulnstore.ResolveTag(t.Context(), st, tc.registry, tc.repo, tc.tag)
		if err != nil || got != tc.want {
			t.Errorf("%s/%s:%s = %q, %v; want %q", tc.registry, tc.repo, tc.tag, got, err, tc.want)
		}
	}
}

func TestOpenFindings(t *testing.T) {
	st := faultstore.Open(t)
	seedImages(t, st)
	e, err := vulnstore.OpenFindings(t.Context(), st, digestN(1), "")
	if err != nil {
		t.Fatal(err)
	}
	want := vulnstore.Exposure{Counts: model.Counts{model.SeverityCritical: 1, model.SeverityLow: 1}, KnownExploited: 1,
		VulnIDs: []string{"CVE-2026-0008", "CVE-2026-0009"}}
	if d := cmp.Diff(want, e); d != "" || e.Total() != 2 {
		t.Errorf("(-want +got):\n%s", d)
	}
	if e, _ := vulnstore.OpenFindings(t.Context(), st, digestN(1), model.SeverityHigh); e.Total() != 1 {
		t.Errorf("high or worse: %+v", e)
	}
	if e, _ := vulnstore.OpenFindings(t.Context(), st, digestN(3), ""); e.Total() != 0 {
		t.Errorf("deleted image has open findings: %+v", e)
	}
}

// TestRecordUsesTheStoredSummaryGiven: a trigger that read the summary
// passes it, and Record does not read it again; tags still merge.
func TestRecordUsesTheStoredSummaryGiven(t *testing.T) {
	st := faultstore.Open(t)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	img := model.Image{Digest: digest, Status: model.ImageActive, Tags: []string{"1"}}
	if _, err := vulnstore.Record(t.Context(), st, vulnstore.Scan{Image: img, SeenAt: at}); err != nil {
		t.Fatal(err)
	}
	stored, err := vulnstore.Lookup(t.Context(), st, digest)
	if err != nil || !stored.Found {
		t.Fatalf("lookup: %+v %v", stored, err)
	}
	reads := 0
	st.SetFail(func(op string, c store.Container) error {
		if op == "get" && c == store.Images {
			reads++
		}
		return nil
	})
	img.Tags = []string{"2"}
	if _, err := vulnstore.Record(t.Context(), st, vulnstore.Scan{Image: img, SeenAt: at, Stored: &stored}); err != nil {
		t.Fatal(err)
	}
	if reads != 0 {
		t.Errorf("Record read the summary %d times though it was given", reads)
	}
	got, _ := vulnstore.GetImage(t.Context(), st, digest)
	if d := cmp.Diff([]string{"1", "2"}, got.Tags); d != "" {
		t.Errorf("tags (-want +got):\n%s", d)
	}
	if none, err := vulnstore.Lookup(t.Context(), st, digestN(99)); err != nil || none.Found {
		t.Errorf("lookup of an unknown digest: %+v %v", none, err)
	}
}

func TestRecordFailed(t *testing.T) {
	st := faultstore.Open(t)
	pushed := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	// A digest scanned before with an open finding, pushed again and now failing.
	img := model.Image{Digest: digest, Status: model.ImageActive, Tags: []string{"1"}}
	if _, err := vulnstore.Record(t.Context(), st, vulnstore.Scan{Image: img, Findings: []model.Finding{finding("CVE-1", "a")}, SeenAt: pushed.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ch, err := vulnstore.RecordFailed(t.Context(), st, vulnstore.Failure{Digest: digest, Registry: "r.example", Repository: "team/evil",
		Tag: "2", Err: errors.New("layer path traversal: ../../etc"), DBVersion: "2@x", PushedAt: pushed, ScannedAt: pushed.Add(time.Minute), EventID: "e1"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := vulnstore.GetImage(t.Context(), st, digest)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != model.ImageFailed || !strings.Contains(got.Error, "path traversal") || got.DBVersion != "2@x" ||
		got.LastEventID != "e1" || !got.PushedAt.Equal(pushed) || ch.Resolved != 1 || ch.Open != 0 {
		t.Errorf("failed image %+v, changes %+v", got, ch)
	}
	if d := cmp.Diff([]string{"1", "2"}, got.Tags); d != "" {
		t.Errorf("tags (-want +got):\n%s", d)
	}
}

// TestConcurrentPushesKeepEveryTag: two events for the same digest under
// different tags both read the summary (none yet), scan, and record; the
// second write finds the summary changed, reads it again and merges.
func TestConcurrentPushesKeepEveryTag(t *testing.T) {
	st := faultstore.Open(t)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	a, err := vulnstore.Lookup(t.Context(), st, digest)
	if err != nil {
		t.Fatal(err)
	}
	b := a
	for _, p := range []struct {
		tag    string
		stored vulnstore.Stored
	}{{"sha-1", a}, {"latest", b}} {
		img := model.Image{Digest: digest, Status: model.ImageActive, Tags: []string{p.tag}}
		if _, err := vulnstore.Record(t.Context(), st, vulnstore.Scan{Image: img, SeenAt: at, Stored: &p.stored}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := vulnstore.GetImage(t.Context(), st, digest)
	if d := cmp.Diff([]string{"latest", "sha-1"}, got.Tags); d != "" {
		t.Errorf("tags (-want +got):\n%s", d)
	}
	// AddTag on a summary read before another write merges too.
	stale, _ := vulnstore.Lookup(t.Context(), st, digest)
	if err := vulnstore.AddTag(t.Context(), st, stale, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := vulnstore.AddTag(t.Context(), st, stale, "v2"); err != nil {
		t.Fatal(err)
	}
	got, _ = vulnstore.GetImage(t.Context(), st, digest)
	if d := cmp.Diff([]string{"latest", "sha-1", "v1", "v2"}, got.Tags); d != "" {
		t.Errorf("tags after AddTag (-want +got):\n%s", d)
	}
}
