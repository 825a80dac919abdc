package detection

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/faultstore"
)

var fixedNow = func() time.Time { return time.Date(2026, 7, 10, 21, 0, 0, 0, time.UTC) }

func batchOf(t *testing.T, d *Detector, names ...string) *Batch {
	t.Helper()
	b := d.NewBatch()
	for _, n := range names {
		e := loadFalco(t, n)
		b.AddEnvelope(&e)
	}
	return b
}

// TestSaveIdempotent: redelivering a batch leaves the same alerts with the
// same counts; a new event in the window increments the count.
func TestSaveIdempotent(t *testing.T) {
	ctx := t.Context()
	st := faultstore.Open(t)
	d := newTestDetector(t)
	sink := NewSink(st, d, SinkOptions{Now: fixedNow})
	first, err := sink.Save(ctx, batchOf(t, d, "netcat_rce", "redirect_stdin").Folds())
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || first[0].Count != 2 || first[0].Type != "ReverseShell" {
		t.Fatalf("first delivery: %+v", first)
	}
	again, err := sink.Save(ctx, batchOf(t, d, "netcat_rce", "redirect_stdin").Folds())
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Count != 2 || again[0].ID != first[0].ID {
		t.Errorf("redelivery: count %d id %s, want 2 %s", again[0].Count, again[0].ID, first[0].ID)
	}
	if n := st.Len(t, store.Alerts); n != 1 {
		t.Errorf("%d stored alerts, want 1", n)
	}
	e := loadFalco(t, "netcat_rce")
	e.ID, e.Time = "another-event", e.Time.Add(time.Minute)
	b := d.NewBatch()
	b.AddEnvelope(&e)
	third, err := sink.Save(ctx, b.Folds())
	if err != nil {
		t.Fatal(err)
	}
	if third[0].Count != 3 || !third[0].LastSeen.Equal(e.Time) {
		t.Errorf("new event: count %d last seen %s, want 3 %s", third[0].Count, third[0].LastSeen, e.Time)
	}
	// The next window is a new alert.
	e.ID, e.Time = "next-window", e.Time.Add(time.Hour)
	b = d.NewBatch()
	b.AddEnvelope(&e)
	if _, err := sink.Save(ctx, b.Folds()); err != nil {
		t.Fatal(err)
	}
	if n := st.Len(t, store.Alerts); n != 2 {
		t.Errorf("%d stored alerts after a new window, want 2", n)
	}
}

// TestEnrichment: an alert on an image with critical or known-exploited
// open findings says so and rises one severity step; resolved findings do
// not count.
func TestEnrichment(t *testing.T) {
	ctx := t.Context()
	digest := "sha256:" + "ab12000000000000000000000000000000000000000000000000000000000000"[:64]
	st := faultstore.Open(t)
	finding := func(vuln string, sev model.Severity, kev bool) model.Finding {
		return model.Finding{ID: model.FindingID(digest, vuln, "openssl", "", "3.0.1"), Digest: digest, VulnID: vuln, PkgName: "openssl",
			InstalledVersion: "3.0.1", Severity: sev, KnownExploited: kev}
	}
	open := []model.Finding{finding("CVE-2024-0001", model.SeverityCritical, false), finding("CVE-2024-0002", model.SeverityHigh, true)}
	img := model.Image{Digest: digest, Status: model.ImageActive}
	// Scanned with three findings, then rescanned with the third fixed.
	for i, fs := range [][]model.Finding{append(open, finding("CVE-2024-0003", model.SeverityCritical, false)), open} {
		if _, err := vulnstore.Record(ctx, st, vulnstore.Scan{Image: img, Findings: fs, SeenAt: fixedNow().Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	d := newTestDetector(t)
	e := loadFalco(t, "netcat_rce")
	e.Container.ImageDigest = digest
	b := d.NewBatch()
	b.AddEnvelope(&e)
	got, err := NewSink(st, d, SinkOptions{Now: fixedNow}).Save(ctx, b.Folds())
	if err != nil {
		t.Fatal(err)
	}
	a := got[0]
	if a.Severity != model.SeverityHigh || !a.KnownExploited || a.Vulnerabilities == nil ||
		(*a.Vulnerabilities)[model.SeverityCritical] != 1 || (*a.Vulnerabilities)[model.SeverityHigh] != 1 {
		t.Errorf("enriched alert: severity %s kev %v vulns %v; want HIGH, true, 1 critical 1 high", a.Severity, a.KnownExploited, a.Vulnerabilities)
	}
	if a.Evidence["imageRisk"] != "1 critical, 1 known exploited" {
		t.Errorf("evidence imageRisk = %q", a.Evidence["imageRisk"])
	}

	// A clean image: counts recorded, severity unchanged.
	clean := "sha256:" + "cd34000000000000000000000000000000000000000000000000000000000000"[:64]
	e2 := loadFalco(t, "nmap")
	e2.Container.ImageDigest = clean
	b = d.NewBatch()
	b.AddEnvelope(&e2)
	got, err = NewSink(st, d, SinkOptions{Now: fixedNow}).Save(ctx, b.Folds())
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Severity != model.SeverityMedium || got[0].KnownExploited {
		t.Errorf("clean image alert: severity %s kev %v; want MEDIUM false", got[0].Severity, got[0].KnownExploited)
	}
}

// conflictStore fails the first conditional write as if another instance
// had written first, to exercise the re-read.
type conflictStore struct {
	*faultstore.Store
	conflicts int
}

func (c *conflictStore) Put(ctx context.Context, ct store.Container, pk, id string, v any, cond store.Cond) (string, error) {
	if c.conflicts > 0 && (cond.IfMatch != "" || cond.IfNoneMatch) {
		c.conflicts--
		// Another instance saves the same alert with one event of its own.
		other := v.(model.Alert)
		other.Count, other.EventIDs = 1, []string{"other-instance"}
		if _, err := c.Store.Put(ctx, ct, pk, id, other, store.Cond{}); err != nil {
			return "", err
		}
		return "", store.ErrPrecondition
	}
	return c.Store.Put(ctx, ct, pk, id, v, cond)
}

// TestEnrichmentByImageReference: when the runtime reports no digest, the
// alert's image reference (registry/repository:tag) is matched to the most
// recently pushed scanned image carrying that tag.
func TestEnrichmentByImageReference(t *testing.T) {
	ctx := t.Context()
	st := faultstore.Open(t)
	putImage := func(digest string, tags []string, pushed int64, findings ...model.Finding) {
		img := model.Image{ID: digest, Digest: digest, Registry: "shopacr.azurecr.io", Repository: "shop/web", Tags: tags, Status: model.ImageActive, PushedUnix: pushed}
		if _, err := vulnstore.Record(ctx, st, vulnstore.Scan{Image: img, Findings: findings, SeenAt: time.Unix(pushed, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	old := "sha256:" + strings.Repeat("1", 64)
	current := "sha256:" + strings.Repeat("2", 64)
	other := "sha256:" + strings.Repeat("3", 64)
	f := model.Finding{ID: model.FindingID(current, "CVE-2024-0001", "openssl", "", "3.0.1"), Digest: current, VulnID: "CVE-2024-0001",
		PkgName: "openssl", InstalledVersion: "3.0.1", Severity: model.SeverityCritical}
	putImage(old, []string{"1.4.2"}, 100)
	putImage(current, []string{"1.4.2", "stable"}, 200, f)
	putImage(other, []string{"1.5.0"}, 300)
	d := newTestDetector(t)
	e := loadFalco(t, "netcat_rce") // shopacr.azurecr.io/shop/web:1.4.2, no digest
	if e.Container.ImageDigest != "" {
		t.Fatal("fixture already carries a digest")
	}
	b := d.NewBatch()
	b.AddEnvelope(&e)
	got, err := NewSink(st, d, SinkOptions{Now: fixedNow}).Save(ctx, b.Folds())
	if err != nil {
		t.Fatal(err)
	}
	if a := got[0]; a.ImageDigest != current || a.Vulnerabilities == nil || (*a.Vulnerabilities)[model.SeverityCritical] != 1 {
		t.Errorf("alert image %s vulns %v; want %s with its critical finding", a.ImageDigest, a.Vulnerabilities, current)
	}
}

func TestSaveConcurrentWriter(t *testing.T) {
	st := &conflictStore{Store: faultstore.Open(t), conflicts: 1}
	d := newTestDetector(t)
	sink := NewSink(st, d, SinkOptions{Now: fixedNow})
	got, err := sink.Save(t.Context(), batchOf(t, d, "netcat_rce").Folds())
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Count != 2 {
		t.Errorf("count %d after a concurrent write, want 2 (theirs and ours)", got[0].Count)
	}
}

func TestPipelineRetries(t *testing.T) {
	st := faultstore.Open(t)
	fails := 2
	st.SetFail(func(op string, c store.Container) error {
		if op == "put" && c == store.Alerts && fails > 0 {
			fails--
			return errors.New("503 service unavailable")
		}
		return nil
	})
	d := newTestDetector(t)
	var slept []time.Duration
	p := NewPipeline(st, nil, d, PipelineOptions{Function: "detectruntime", Retries: 2, RetryDelay: time.Second, Now: fixedNow,
		Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }})
	saved, _, err := p.Commit(t.Context(), batchOf(t, d, "nmap").Folds())
	if err != nil || len(saved) != 1 {
		t.Fatalf("Commit: %v, %d alerts", err, len(saved))
	}
	if len(slept) != 2 || slept[0] != time.Second || slept[1] != 2*time.Second {
		t.Errorf("backoff %v, want [1s 2s]", slept)
	}
	fails = 5
	if _, _, err := p.Commit(t.Context(), batchOf(t, d, "kmod").Folds()); err == nil {
		t.Error("Commit succeeded although the store kept failing")
	}
}

// TestRedeliveryByPosition: an alert keeps a bounded sample of event ids,
// yet a redelivered batch of more events than that adds nothing, because
// the alert knows how far into each partition it has counted; an event the
// sensor sent twice is caught by the recent ids; a partition numbered
// afresh (its event hub recreated) counts again.
func TestRedeliveryByPosition(t *testing.T) {
	ctx := t.Context()
	st := faultstore.Open(t)
	d := newTestDetector(t)
	sink := NewSink(st, d, SinkOptions{Now: fixedNow})
	template := loadFalco(t, "netcat_rce")
	batch := func(first, n int, enqueued int64, ids ...string) []*Fold {
		b := d.NewBatch()
		for i := range n {
			e := template
			e.ID = fmt.Sprintf("evt-%d", first+i)
			if i < len(ids) {
				e.ID = ids[i]
			}
			b.SetPosition(Position{Partition: "runtime/3", Seq: int64(first + i), EnqueuedMs: enqueued})
			b.AddEnvelope(&e)
		}
		return b.Folds()
	}
	save := func(folds []*Fold) model.Alert {
		t.Helper()
		got, err := sink.Save(ctx, folds)
		if err != nil || len(got) != 1 {
			t.Fatalf("Save: %v, %d alerts", err, len(got))
		}
		return got[0]
	}
	const at = 1_783_700_000_000
	if a := save(batch(100, 40, at)); a.Count != 40 || len(a.EventIDs) != MaxEventIDs {
		t.Fatalf("first delivery: count %d, %d ids kept; want 40 and %d", a.Count, len(a.EventIDs), MaxEventIDs)
	}
	if a := save(batch(100, 40, at)); a.Count != 40 {
		t.Errorf("redelivery of 40 events: count %d, want 40", a.Count)
	}
	sink = NewSink(st, d, SinkOptions{Now: fixedNow}) // another instance: reads the stored alert
	if a := save(batch(120, 30, at)); a.Count != 50 {
		t.Errorf("a batch overlapping the counted ones: count %d, want 50", a.Count)
	}
	// The sensor resent evt-149 (a lost acknowledgement): a new sequence
	// number, the same id.
	if a := save(batch(150, 2, at, "evt-149")); a.Count != 51 {
		t.Errorf("resent event: count %d, want 51", a.Count)
	}
	// The event hub was recreated: sequence numbers start again, later.
	a := save(batch(0, 3, at+60_000, "new-0", "new-1", "new-2"))
	if a.Count != 54 {
		t.Errorf("events of a recreated hub: count %d, want 54", a.Count)
	}
	if wm := a.Watermarks["runtime/3"]; wm.Seq != 151 || wm.EnqueuedMs != at+60_000 {
		t.Errorf("watermark %+v, want the highest sequence number and enqueued time", wm)
	}
}

func TestPositions(t *testing.T) {
	tests := []struct {
		partition string
		seqs, enq []int64
		n         int
		want      []Position
	}{
		{"runtime/0", []int64{5, 6}, []int64{10, 11}, 2, []Position{{"runtime/0", 5, 10}, {"runtime/0", 6, 11}}},
		{"runtime/0", []int64{5, 6}, []int64{10}, 2, []Position{{"runtime/0", 5, 0}, {"runtime/0", 6, 0}}},
		{"runtime/0", []int64{41, 42}, nil, 4, nil}, // not one an event
		{"runtime/0", []int64{6, 5}, nil, 2, nil},   // not increasing
		{"runtime/0", []int64{-1}, nil, 1, nil},
		{"", []int64{1}, nil, 1, nil},
	}
	for _, tc := range tests {
		if got := Positions(tc.partition, tc.seqs, tc.enq, tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("Positions(%q, %v, %v, %d) = %v, want %v", tc.partition, tc.seqs, tc.enq, tc.n, got, tc.want)
		}
	}
}
