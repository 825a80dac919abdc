package rescanimages_test

import (
	"slices"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/functions/rescanimages"
	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/intel/inteltest"
	"github.com/palisade-sec/palisade/shared/model"
)

// TestRescanPrioritises: a rescan annotates each finding with the feeds
// held and whether its image runs; when the feeds change during the run,
// the image recorded with the older ones is annotated again, and the rest
// of the run uses the new ones.
func TestRescanPrioritises(t *testing.T) {
	st := openStore(t)
	base := openScanner(t, buildDB(t, dbBase))
	storeScanned(t, st, base, goldenInventory(t), digestOf(1), pushTime)
	if err := base.Close(); err != nil { // one DB open per process
		t.Fatal(err)
	}
	putRunning(t, st, "aks-prod", digestOf(1))
	kev := func(cves ...string) []byte {
		return inteltest.KEV("2026.05.02", pushTime, inteltest.Listed("2026-04-01", cves...)...)
	}
	feeds := inteltest.NewServer(t, kev("CVE-2023-4911"),
		inteltest.EPSS(pushTime, inteltest.Score{CVE: "CVE-2023-4911", Score: 0.77, Percentile: 0.98}))
	src := intel.NewSource(st, intel.Options{KEVURL: feeds.KEVURL(), EPSSURL: feeds.EPSSURL(), MinKEVEntries: 1, MinEPSSRows: 1, Now: func() time.Time { return rescan1 }})
	if _, err := src.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	loader := inteltest.LoadThen(src, func() {
		feeds.SetKEV(kev("CVE-2023-4911", "CVE-2023-5678"))
		if _, err := src.Refresh(t.Context()); err != nil {
			t.Error(err)
		}
	})
	sc := openScanner(t, buildDB(t, dbNew))
	t.Cleanup(func() { _ = sc.Close() })
	fn := rescanimages.New(st, &swapScanner{sc: sc}, nil, rescanimages.Options{Intel: loader, Now: (&clock{now: rescan1}).Now})
	h := newHarness(t)
	h.srv.Handle(rescanimages.Name, fn.Handle)
	if err := h.host.FireTimer(t.Context(), rescanimages.Name); err != nil {
		t.Fatal(err)
	}
	var got []string
	for id, f := range findingsByVuln(t, st, digestOf(1)) {
		if f.Status == model.FindingOpen {
			got = append(got, id+" "+string(f.Priority))
		}
		if f.MissingFeeds != nil {
			t.Errorf("%s names missing feeds %q", id, f.MissingFeeds)
		}
	}
	slices.Sort(got)
	// Running: the listed CVEs are P1 (openssl's only because the image was
	// annotated again), the new critical one with a fix P2.
	want := []string{"CVE-2021-23337 P3", "CVE-2023-45853 P4", "CVE-2023-4911 P1", "CVE-2023-5678 P1", "CVE-2026-1000 P2"}
	if !slices.Equal(got, want) {
		t.Errorf("priorities %q, want %q", got, want)
	}
	if rs := runs(t, st); len(rs) != 1 || rs[0].MissingFeeds != nil || rs[0].Rescanned != 1 {
		t.Errorf("run records %+v", rs)
	}
}
