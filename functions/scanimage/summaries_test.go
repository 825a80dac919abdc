package scanimage_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/palisade-sec/palisade/functions/scanimage"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
	"github.com/palisade-sec/palisade/shared/sentinel"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// summaries records the scan summaries sent, failing while fail is set.
type summaries struct {
	mu   sync.Mutex
	got  []sentinel.ImageScan
	fail bool
}

func (s *summaries) PublishImages(_ context.Context, scans []sentinel.ImageScan) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("logs ingestion down")
	}
	s.got = append(s.got, scans...)
	return nil
}

// TestScanSummaries: a scan, and a deletion, send one summary each with
// the image as stored and its open vulnerabilities; a redelivered push
// sends nothing; a failure to send is counted and the scan still stands.
func TestScanSummaries(t *testing.T) {
	sum := &summaries{}
	r := newRigOpts(t, testenv.Store(t), scanimage.Options{Summaries: sum})
	img := scantest.Image(t, scantest.Layer(t, scantest.DebianFiles()))
	digest := scantest.Push(t, r.registry, "team/app", "1.0", img)
	ev := event(t, false, "Microsoft.ContainerRegistry.ImagePushed", r.registry, "team/app", "1.0", digest)
	for range 2 {
		if err := r.deliver(t, ev, false); err != nil {
			t.Fatal(err)
		}
	}
	if len(sum.got) != 1 {
		t.Fatalf("%d summaries after a push and its redelivery, want 1", len(sum.got))
	}
	s := sum.got[0]
	open, err := vulnstore.OpenFindings(t.Context(), r.st, digest, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range s.Vulns {
		ids = append(ids, v.ID)
	}
	if s.Trigger != "push" || s.Image.Digest != digest || s.Image.Status != model.ImageActive || len(s.Image.Tags) != 1 ||
		!s.At.Equal(scanTime) || len(ids) == 0 || len(ids) != len(open.VulnIDs) {
		t.Errorf("summary %+v with %v, want the scan with the open vulnerabilities %v", s.Image, ids, open.VulnIDs)
	}
	if row := sentinel.NewImageRow(s); row.Critical+row.High+row.Medium+row.Low+row.Unknown != open.Total() {
		t.Errorf("row counts %+v, the image has %d open findings", row, open.Total())
	}

	if err := r.deliver(t, event(t, false, "Microsoft.ContainerRegistry.ImageDeleted", r.registry, "team/app", "", digest), false); err != nil {
		t.Fatal(err)
	}
	if last := sum.got[len(sum.got)-1]; len(sum.got) != 2 || last.Trigger != "delete" || last.Image.Status != model.ImageDeleted || len(last.Vulns) != 0 {
		t.Errorf("after the deletion: %d summaries, the last %+v", len(sum.got), last)
	}

	sum.fail = true
	other := scantest.Push(t, r.registry, "team/app", "1.1", scantest.Image(t, scantest.Layer(t, scantest.AlpineFiles())))
	if err := r.deliver(t, event(t, false, "Microsoft.ContainerRegistry.ImagePushed", r.registry, "team/app", "1.1", other), false); err != nil {
		t.Fatalf("a push while Log Analytics is down: %v", err)
	}
	if st := r.fn.Stats(); st.SummariesFailed != 1 || st.Scanned != 2 {
		t.Errorf("stats %+v: want the scan stored and one summary failed", st)
	}
}
