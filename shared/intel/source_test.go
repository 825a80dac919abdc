package intel_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/intel/inteltest"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/faultstore"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var day0 = time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)

func kevV1() []byte {
	return inteltest.KEV("2026.11.28", day0.Add(-20*time.Hour),
		inteltest.Vuln{CVE: "CVE-2021-44228", DateAdded: "2021-12-10", DueDate: "2021-12-24", Ransomware: true},
		inteltest.Vuln{CVE: "CVE-2023-4911", DateAdded: "2023-11-21", DueDate: "2023-12-12"},
		inteltest.Vuln{CVE: "CVE-2014-0160", DateAdded: "2022-05-04", DueDate: "2022-05-25"})
}

func epssV1() []byte {
	return inteltest.EPSS(day0.Add(-time.Hour),
		inteltest.Score{CVE: "CVE-2014-0160", Score: 0.94469, Percentile: 0.99978},
		inteltest.Score{CVE: "CVE-2021-44228", Score: 0.94358, Percentile: 0.99956},
		inteltest.Score{CVE: "CVE-2023-4911", Score: 0.77136, Percentile: 0.98941},
		inteltest.Score{CVE: "CVE-2023-44487", Score: 0.01, Percentile: 0.5},
		inteltest.Score{CVE: "CVE-2024-12345", Score: 0.00043, Percentile: 0.11204})
}

type fixture struct {
	st  *faultstore.Store
	srv *inteltest.Server
	clk *clock
	src *intel.Source
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{st: faultstore.Open(t), srv: inteltest.NewServer(t, kevV1(), epssV1()), clk: &clock{now: day0}}
	f.src = f.newSource()
	return f
}

func (f *fixture) newSource() *intel.Source {
	return intel.NewSource(f.st, intel.Options{KEVURL: f.srv.KEVURL(), EPSSURL: f.srv.EPSSURL(), MinKEVEntries: 2, MinEPSSRows: 3, Now: f.clk.Now})
}

func (f *fixture) refresh(t *testing.T) intel.Status {
	t.Helper()
	st, err := f.src.Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *fixture) load(t *testing.T) (*intel.Feeds, intel.Status) {
	t.Helper()
	// A new Source reads only the store, as another instance would.
	fs, st, err := f.newSource().Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return fs, st
}

func (f *fixture) pending(t *testing.T) (intel.Changes, string) {
	t.Helper()
	c, etag, err := f.src.Pending(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c, etag
}

func TestRefreshStoresAndLoads(t *testing.T) {
	f := newFixture(t)
	fs, st := f.load(t)
	if fs.KEV != nil || fs.EPSS != nil || !st.KEV.Stale || !st.EPSS.Stale || !slices.Contains(st.KEV.Reasons, "never downloaded") {
		t.Fatalf("before any refresh: %+v %+v", fs, st)
	}

	st = f.refresh(t)
	if st.Stale() || len(st.Problems()) != 0 {
		t.Fatalf("after a good refresh: %+v", st.Problems())
	}
	if st.KEV.Version != "2026.11.28" || st.KEV.Entries != 3 || st.EPSS.Entries != 5 || st.EPSS.Version != "v2025.03.14" ||
		!st.EPSS.Date.Equal(day0.Add(-time.Hour)) || !st.KEV.FetchedAt.Equal(day0) || len(st.KEV.Chunks) != 1 {
		t.Fatalf("status: %+v", st)
	}
	fs, st = f.load(t)
	if e, ok := fs.KEV.Lookup("CVE-2021-44228"); !ok || !e.Ransomware() || e.DueDate != "2021-12-24" {
		t.Errorf("stored catalogue: %+v %v", e, ok)
	}
	if s, ok := fs.EPSS.Lookup("CVE-2023-4911"); !ok || s.Score != 0.77136 || s.Date != "2026-11-29" {
		t.Errorf("stored scores: %+v %v", s, ok)
	}
	if st.Stale() {
		t.Errorf("loaded status stale: %v", st.Problems())
	}
	// The first copies are the baseline: every finding is affected, no
	// CVE counts as newly listed.
	if c, _ := f.pending(t); !c.All || len(c.KEVAdded) != 0 {
		t.Errorf("pending after the first refresh: %+v", c)
	}

	// The same feeds again: nothing written but the manifest.
	_, etag := f.pending(t)
	if ok, err := f.src.ClearPending(t.Context(), etag); err != nil || !ok {
		t.Fatal(ok, err)
	}
	before := f.st.Len(t, store.State)
	f.clk.Add(24 * time.Hour)
	st = f.refresh(t)
	if got := f.st.Len(t, store.State); got != before {
		t.Errorf("an unchanged refresh changed the number of state items: %d then %d", before, got)
	}
	if !st.KEV.CheckedAt.Equal(f.clk.Now()) || !st.KEV.FetchedAt.Equal(day0) {
		t.Errorf("unchanged refresh: checked %s fetched %s", st.KEV.CheckedAt, st.KEV.FetchedAt)
	}
	if c, _ := f.pending(t); !c.Empty() {
		t.Errorf("an unchanged refresh left changes: %+v", c)
	}
}

func TestRefreshRecordsChanges(t *testing.T) {
	f := newFixture(t)
	f.refresh(t)
	_, etag := f.pending(t)
	if _, err := f.src.ClearPending(t.Context(), etag); err != nil {
		t.Fatal(err)
	}
	f.clk.Add(24 * time.Hour)
	f.srv.SetKEV(inteltest.KEV("2026.11.29", day0.Add(4*time.Hour),
		inteltest.Vuln{CVE: "CVE-2021-44228", DateAdded: "2021-12-10", DueDate: "2021-12-24", Ransomware: true},
		inteltest.Vuln{CVE: "CVE-2023-4911", DateAdded: "2023-11-21", DueDate: "2023-12-19"}, // due date moved
		inteltest.Vuln{CVE: "CVE-2014-0160", DateAdded: "2022-05-04", DueDate: "2022-05-25"},
		inteltest.Vuln{CVE: "CVE-2023-44487", DateAdded: "2026-11-29", DueDate: "2026-12-20"})) // newly listed
	f.srv.SetEPSS(inteltest.EPSS(day0.Add(23*time.Hour),
		inteltest.Score{CVE: "CVE-2014-0160", Score: 0.94470, Percentile: 0.99979}, // immaterial
		inteltest.Score{CVE: "CVE-2021-44228", Score: 0.94358, Percentile: 0.99956},
		inteltest.Score{CVE: "CVE-2023-4911", Score: 0.77136, Percentile: 0.98941},
		inteltest.Score{CVE: "CVE-2023-44487", Score: 0.52, Percentile: 0.99}, // material
		inteltest.Score{CVE: "CVE-2024-12345", Score: 0.00043, Percentile: 0.11204},
		inteltest.Score{CVE: "CVE-2025-0001", Score: 0.001, Percentile: 0.2})) // new
	f.refresh(t)
	c, _ := f.pending(t)
	want := intel.Changes{CVEs: []string{"CVE-2023-44487", "CVE-2023-4911", "CVE-2025-0001"}, KEVAdded: []string{"CVE-2023-44487"}}
	if c.All || !slices.Equal(c.CVEs, want.CVEs) || !slices.Equal(c.KEVAdded, want.KEVAdded) {
		t.Fatalf("pending = %+v, want %+v", c, want)
	}

	// Changes not yet applied accumulate.
	f.clk.Add(24 * time.Hour)
	f.srv.SetKEV(inteltest.KEV("2026.11.30", day0.Add(28*time.Hour),
		inteltest.Vuln{CVE: "CVE-2021-44228", DateAdded: "2021-12-10", DueDate: "2021-12-24", Ransomware: true},
		inteltest.Vuln{CVE: "CVE-2023-4911", DateAdded: "2023-11-21", DueDate: "2023-12-19"},
		inteltest.Vuln{CVE: "CVE-2014-0160", DateAdded: "2022-05-04", DueDate: "2022-05-25"},
		inteltest.Vuln{CVE: "CVE-2023-44487", DateAdded: "2026-11-29", DueDate: "2026-12-20"},
		inteltest.Vuln{CVE: "CVE-2024-3094", DateAdded: "2026-11-30", DueDate: "2026-12-21"}))
	f.refresh(t)
	c, etag = f.pending(t)
	if !slices.Equal(c.KEVAdded, []string{"CVE-2023-44487", "CVE-2024-3094"}) || !slices.Contains(c.CVEs, "CVE-2025-0001") {
		t.Fatalf("accumulated pending = %+v", c)
	}

	// A refresh between reading the changes and clearing them keeps them.
	f.clk.Add(24 * time.Hour)
	f.srv.SetEPSS(inteltest.EPSS(day0.Add(71*time.Hour), inteltest.Score{CVE: "CVE-2014-0160", Score: 0.5, Percentile: 0.9},
		inteltest.Score{CVE: "CVE-2021-44228", Score: 0.94358, Percentile: 0.99956},
		inteltest.Score{CVE: "CVE-2023-4911", Score: 0.77136, Percentile: 0.98941},
		inteltest.Score{CVE: "CVE-2023-44487", Score: 0.52, Percentile: 0.99},
		inteltest.Score{CVE: "CVE-2024-12345", Score: 0.00043, Percentile: 0.11204},
		inteltest.Score{CVE: "CVE-2025-0001", Score: 0.001, Percentile: 0.2}))
	f.refresh(t)
	if ok, err := f.src.ClearPending(t.Context(), etag); err != nil || ok {
		t.Fatalf("clearing changes read before a refresh: %v %v", ok, err)
	}
	c, etag = f.pending(t)
	if !slices.Contains(c.CVEs, "CVE-2014-0160") || !slices.Contains(c.CVEs, "CVE-2025-0001") {
		t.Fatalf("pending after a refresh in between = %+v", c)
	}
	if ok, err := f.src.ClearPending(t.Context(), etag); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if c, _ := f.pending(t); !c.Empty() {
		t.Errorf("cleared: %+v", c)
	}
}

// TestRefreshKeepsLastGood: a feed that cannot be downloaded, or is
// malformed, truncated, shrunk, or dated wrong, is refused; the copy held
// stays, its changes are not recorded, and the status says what happened.
func TestRefreshKeepsLastGood(t *testing.T) {
	kev := string(kevV1())
	epssGz := inteltest.Gzip(epssV1())
	for _, tc := range []struct {
		name       string
		kev        []byte
		epss       []byte // served as is
		status     int    // for both
		wantKEV    string // in the KEV problem
		wantEPSS   string
		kevChanged bool
	}{
		{name: "http error", status: http.StatusServiceUnavailable, wantKEV: "HTTP 503", wantEPSS: "HTTP 503"},
		{name: "truncated", kev: []byte(kev[:len(kev)-40]), epss: epssGz[:len(epssGz)-9], wantKEV: "not JSON", wantEPSS: "unexpected EOF"},
		{name: "malformed", kev: []byte(strings.Replace(kev, `"count": 3`, `"count": 30`, 1)),
			epss: inteltest.Gzip([]byte(strings.Replace(string(epssV1()), "0.77136", "7.7136", 1))), wantKEV: "count says 30", wantEPSS: "not a number from 0 to 1"},
		{name: "shrunk", kev: inteltest.KEV("2026.11.29", day0, inteltest.Vuln{CVE: "CVE-2021-44228", DateAdded: "2021-12-10"}, inteltest.Vuln{CVE: "CVE-2014-0160", DateAdded: "2022-05-04"}),
			epss: inteltest.Gzip(inteltest.EPSS(day0, inteltest.Score{CVE: "CVE-2014-0160", Score: 0.9, Percentile: 0.9},
				inteltest.Score{CVE: "CVE-2021-44228", Score: 0.9, Percentile: 0.9}, inteltest.Score{CVE: "CVE-2023-4911", Score: 0.9, Percentile: 0.9},
				inteltest.Score{CVE: "CVE-2023-44487", Score: 0.9, Percentile: 0.9})),
			wantKEV: "far fewer than the 3 of the copy held", wantEPSS: "4 entries, far fewer than the 5"},
		{name: "older", kev: inteltest.KEV("2026.11.20", day0.Add(-9*24*time.Hour), inteltest.Vuln{CVE: "CVE-2021-44228", DateAdded: "2021-12-10"}, inteltest.Vuln{CVE: "CVE-2014-0160", DateAdded: "2022-05-04"}, inteltest.Vuln{CVE: "CVE-2023-4911", DateAdded: "2023-11-21"}),
			epss:    inteltest.Gzip([]byte(strings.Replace(string(epssV1()), "2026-11-29T13", "2026-11-20T13", 1))),
			wantKEV: "older than the copy held", wantEPSS: "older than the copy held"},
		{name: "future", kev: inteltest.KEV("2026.12.29", day0.Add(30*24*time.Hour), inteltest.Vuln{CVE: "CVE-2021-44228", DateAdded: "2021-12-10"}, inteltest.Vuln{CVE: "CVE-2014-0160", DateAdded: "2022-05-04"}, inteltest.Vuln{CVE: "CVE-2023-4911", DateAdded: "2023-11-21"}),
			epss:    inteltest.Gzip([]byte(strings.Replace(string(epssV1()), "2026-11-29T13", "2027-11-29T13", 1))),
			wantKEV: "in the future", wantEPSS: "in the future"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.refresh(t)
			_, etag := f.pending(t)
			if _, err := f.src.ClearPending(t.Context(), etag); err != nil {
				t.Fatal(err)
			}
			held, _ := f.load(t)
			f.clk.Add(time.Hour)
			if tc.status != 0 {
				f.srv.Fail("/kev.json", tc.status)
				f.srv.Fail("/epss.csv.gz", tc.status)
			} else {
				f.srv.SetKEV(tc.kev)
				f.srv.SetEPSSRaw(tc.epss)
			}
			st := f.refresh(t)
			if !strings.Contains(st.KEV.Problem, tc.wantKEV) || !strings.Contains(st.EPSS.Problem, tc.wantEPSS) {
				t.Fatalf("problems: KEV %q, EPSS %q; want %q and %q", st.KEV.Problem, st.EPSS.Problem, tc.wantKEV, tc.wantEPSS)
			}
			if !st.KEV.CheckedAt.Equal(day0) || !st.KEV.LastAttempt.Equal(f.clk.Now()) {
				t.Errorf("checked %s, last attempt %s", st.KEV.CheckedAt, st.KEV.LastAttempt)
			}
			fs, st := f.load(t)
			if fs.KEV == nil || fs.EPSS == nil || len(fs.KEV.Entries) != len(held.KEV.Entries) || fs.EPSS.Len() != held.EPSS.Len() || fs.KEV.CatalogVersion != held.KEV.CatalogVersion {
				t.Fatalf("the last good copies were not kept: %+v", fs)
			}
			if !slices.ContainsFunc(st.Problems(), func(p string) bool { return strings.Contains(p, "kev: last download failed: ") }) {
				t.Errorf("the loaded status does not report the failure: %q", st.Problems())
			}
			if c, _ := f.pending(t); !c.Empty() {
				t.Errorf("a refused feed recorded changes: %+v", c)
			}

			// Two days without a good download: stale, and said so.
			f.clk.Add(48 * time.Hour)
			_, st = f.load(t)
			if !st.KEV.Stale || !st.EPSS.Stale || !strings.Contains(strings.Join(st.KEV.Reasons, "; "), "not confirmed current for more than 48h0m0s") {
				t.Errorf("stale status: %+v", st)
			}
		})
	}
}

func TestNoLocation(t *testing.T) {
	st := faultstore.Open(t)
	src := intel.NewSource(st, intel.Options{})
	status, err := src.Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !status.KEV.Stale || !strings.Contains(status.KEV.Reasons[0], "PALISADE_KEV_URL is empty") {
		t.Errorf("status: %+v", status)
	}
}

// TestLargeFeedInChunks: an EPSS feed of 120,000 rows is stored in chunks, each
// far below the store's item limit, and read back whole.
func TestLargeFeedInChunks(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a full-size feed")
	}
	f := newFixture(t)
	csv := inteltest.GenerateEPSS(day0, 120000, 7)
	f.srv.SetEPSS(csv)
	st := f.refresh(t)
	if st.EPSS.Problem != "" || st.EPSS.Entries != 120000 || len(st.EPSS.Chunks) < 2 {
		t.Fatalf("status: %+v (%d chunks)", st.EPSS, len(st.EPSS.Chunks))
	}
	fs, _ := f.load(t)
	if fs.EPSS.Len() != 120000 {
		t.Fatalf("loaded %d scores", fs.EPSS.Len())
	}
	err := store.Each(t.Context(), f.st, store.State, store.Query{PartitionKey: model.KindIntel}, func(s model.State) error {
		if len(s.Data) > store.MaxItemBytes/2+(1<<16) {
			t.Errorf("item %s is %d bytes", s.ID, len(s.Data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRefreshStoreFailure: a store that fails makes the refresh fail,
// and the copy held stays readable.
func TestRefreshStoreFailure(t *testing.T) {
	f := newFixture(t)
	f.refresh(t)
	f.srv.SetKEV(inteltest.KEV("2026.11.29", day0,
		inteltest.Vuln{CVE: "CVE-2021-44228", DateAdded: "2021-12-10"}, inteltest.Vuln{CVE: "CVE-2014-0160", DateAdded: "2022-05-04"},
		inteltest.Vuln{CVE: "CVE-2023-4911", DateAdded: "2023-11-21"}, inteltest.Vuln{CVE: "CVE-2024-3094", DateAdded: "2026-11-29"}))
	boom := errors.New("disk on fire")
	f.st.SetFail(func(op string, c store.Container) error {
		if op == "put" {
			return boom
		}
		return nil
	})
	st, err := f.src.Refresh(context.Background())
	if !errors.Is(err, boom) && !strings.Contains(st.KEV.Problem, boom.Error()) {
		t.Fatalf("refresh with a failing store: %v, %+v", err, st.KEV)
	}
	f.st.SetFail(nil)
	fs, _ := f.load(t)
	if fs.KEV == nil || len(fs.KEV.Entries) != 3 {
		t.Fatalf("the copy held is gone: %+v", fs.KEV)
	}
}

// TestStatusWithoutLoading: Status reads the manifest only, and agrees
// with Load.
func TestStatusWithoutLoading(t *testing.T) {
	f := newFixture(t)
	st, err := f.src.Status(t.Context())
	if err != nil || !st.KEV.Stale || st.KEV.Held() {
		t.Fatalf("before a refresh: %+v, %v", st, err)
	}
	f.refresh(t)
	st, err = f.newSource().Status(t.Context())
	if err != nil || st.Stale() || st.KEV.Entries != 3 || st.EPSS.Entries != 5 {
		t.Fatalf("after a refresh: %+v, %v", st, err)
	}
	_, loaded := f.load(t)
	if loaded.KEV.Hash != st.KEV.Hash || loaded.EPSS.Date != st.EPSS.Date {
		t.Errorf("Status %+v and Load %+v disagree", st, loaded)
	}
}

// TestFetch: the CLI's one-off download, from a URL and a file: feeds as
// published, a failure named in the status, old scores stale.
func TestFetch(t *testing.T) {
	srv := inteltest.NewServer(t, kevV1(), epssV1())
	file := t.TempDir() + "/epss.csv.gz"
	if err := os.WriteFile(file, inteltest.Gzip(epssV1()), 0o600); err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return day0 }
	fs, st := intel.Fetch(t.Context(), intel.Options{KEVURL: srv.KEVURL(), EPSSURL: file, Now: now})
	if fs.KEV == nil || fs.EPSS == nil || st.Stale() || st.KEV.Version != "2026.11.28" || st.EPSS.Entries != 5 || !st.KEV.Held() || !st.EPSS.Held() {
		t.Fatalf("fetched %+v, status %+v", fs, st)
	}
	if e, ok := fs.KEV.Lookup("CVE-2021-44228"); !ok || !e.Ransomware() {
		t.Errorf("KEV entry %+v", e)
	}

	srv.Fail("/kev.json", http.StatusNotFound)
	fs, st = intel.Fetch(t.Context(), intel.Options{KEVURL: srv.KEVURL(), EPSSURL: file, MaxAge: time.Minute, Now: now})
	if fs.KEV != nil || !st.KEV.Stale || !strings.Contains(st.KEV.Reasons[0], "could not be had: GET "+srv.KEVURL()+": HTTP 404") {
		t.Errorf("failed KEV: %+v", st.KEV)
	}
	if fs.EPSS == nil || !st.EPSS.Stale || !strings.Contains(st.EPSS.Reasons[0], "older than 1m0s") {
		t.Errorf("old scores: %+v", st.EPSS)
	}
	fs, st = intel.Fetch(t.Context(), intel.Options{Now: now})
	if fs.KEV != nil || fs.EPSS != nil || st.KEV.Reasons[0] != "no location given" || !slices.Equal(fs.Missing(), []string{"kev", "epss"}) {
		t.Errorf("no locations: %+v", st)
	}
}
