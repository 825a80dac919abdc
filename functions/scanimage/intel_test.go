package scanimage_test

import (
	"slices"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/functions/scanimage"
	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/intel/inteltest"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/runningimages"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// TestScanOnPushPrioritises: a scan on push annotates each finding with
// the feeds held and whether the image runs; when the feeds change while
// it records the findings with the older ones, it annotates them again.
func TestScanOnPushPrioritises(t *testing.T) {
	st := testenv.Store(t)
	kev := func(cves ...string) []byte {
		return inteltest.KEV("2026.04.30", scanTime.Add(-48*time.Hour), inteltest.Listed("2026-04-01", cves...)...)
	}
	feeds := inteltest.NewServer(t, kev("CVE-2023-4911"),
		inteltest.EPSS(scanTime.Add(-time.Hour), inteltest.Score{CVE: "CVE-2023-4911", Score: 0.77, Percentile: 0.98}))
	src := intel.NewSource(st, intel.Options{KEVURL: feeds.KEVURL(), EPSSURL: feeds.EPSSURL(), MinKEVEntries: 1, MinEPSSRows: 1, Now: func() time.Time { return scanTime }})
	if _, err := src.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Between the scan's load of the feeds and its write, openssl's CVE
	// is listed too.
	loader := inteltest.LoadThen(src, func() {
		feeds.SetKEV(kev("CVE-2023-4911", "CVE-2023-5678"))
		if _, err := src.Refresh(t.Context()); err != nil {
			t.Error(err)
		}
	})
	r := newRigOpts(t, st, scanimage.Options{Intel: loader})
	digest := scantest.Push(t, r.registry, "team/app", "1.0", scantest.Image(t, scantest.Layer(t, scantest.DebianFiles())))
	running := []model.RunningImage{{Digest: digest, Image: r.registry + "/team/app:1.0"}}
	if _, err := runningimages.Write(t.Context(), st, "aks-prod", running, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := r.deliver(t, event(t, false, "Microsoft.ContainerRegistry.ImagePushed", r.registry, "team/app", "1.0", digest), false); err != nil {
		t.Fatal(err)
	}
	if loader.Loads() != 2 {
		t.Errorf("the feeds were loaded %d times, want before and after the write", loader.Loads())
	}
	fs, err := vulnstore.Findings(t.Context(), st, digest)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.VulnID+" "+string(f.Priority))
		if f.MissingFeeds != nil {
			t.Errorf("%s names missing feeds %q", f.VulnID, f.MissingFeeds)
		}
		if f.VulnID == "CVE-2023-4911" && (f.KEV == nil || f.EPSS == nil || f.EPSS.Score != 0.77) {
			t.Errorf("listed finding: %+v", f)
		}
	}
	slices.Sort(got)
	// Both listed CVEs in a running image: P1, the second only because the
	// scan annotated its findings again.
	want := []string{"CVE-2021-23337 P3", "CVE-2023-45853 P4", "CVE-2023-4911 P1", "CVE-2023-5678 P1"}
	if !slices.Equal(got, want) {
		t.Errorf("priorities %q, want %q", got, want)
	}
}
