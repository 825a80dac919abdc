package msrc_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/msrc/msrctest"
	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// setup serves November and December and returns a source over a fresh
// store, with small chunks so that months span several.
func setup(t *testing.T) (*msrctest.Server, *msrc.MemoryStore, *clock, msrc.Options) {
	t.Helper()
	f := msrctest.NewServer(t)
	f.Publish("2024-Nov", msrctest.NovRelease, readDoc(t, "2024-Nov"))
	f.Publish("2024-Dec", msrctest.DecRelease, readDoc(t, "2024-Dec"))
	clk := &clock{t: time.Date(2024, 12, 20, 6, 0, 0, 0, time.UTC)}
	opts := msrc.Options{BaseURL: f.BaseURL(), Months: 2, ChunkBytes: 1024, Now: clk.Now}
	return f, &msrc.MemoryStore{}, clk, opts
}

func matchCVEs(t *testing.T, ix *msrc.Index, osVersion string) string {
	t.Helper()
	fs, err := ix.Match(identity(t, osVersion, windowsimage.ServerCore))
	if err != nil {
		t.Fatal(err)
	}
	return cves(fs)
}

func TestRefreshThenLoadFromTheStoreAlone(t *testing.T) {
	f, store, _, opts := setup(t)
	ix, st, err := msrc.NewSource(store, opts).Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Stale || len(st.Problems) > 0 {
		t.Fatalf("fresh data reported stale: %q", st.Problems)
	}
	if diff := cmp.Diff([]string{"2024-Dec", "2024-Nov"}, st.Downloaded); diff != "" {
		t.Errorf("downloaded: %s", diff)
	}
	if diff := cmp.Diff([]string{"2024-Dec", "2024-Nov"}, f.Requests()); diff != "" {
		t.Errorf("requests: %s", diff)
	}
	want := "CVE-2024-49112 CVE-2024-49019 CVE-2024-49090 CVE-2024-49138"
	if got := matchCVEs(t, ix, "10.0.20348.2849"); got != want {
		t.Fatalf("refreshed index: got %s", got)
	}
	if st.Months[0].ID != "2024-Dec" || st.Months[0].CVEs != 4 || st.Months[1].CVEs != 4 || st.Months[0].Skipped == 0 {
		t.Errorf("month status: %+v", st.Months)
	}

	// Stored in chunks, each far below the item limit.
	ids := store.IDs()
	chunks := 0
	for _, id := range ids {
		b, _, _ := store.Load(t.Context(), id)
		if len(b) > msrc.MaxChunkBytes {
			t.Errorf("%s is %d bytes", id, len(b))
		}
		if strings.HasPrefix(id, "msrc-2024-Nov-") {
			chunks++
		}
	}
	if !slices.Contains(ids, msrc.ManifestID) || chunks < 2 {
		t.Fatalf("stored items %q: want the manifest and November in several chunks", ids)
	}

	// A scan or rescan elsewhere reads the store only: MSRC is unreachable.
	f.Close()
	offline := opts
	offline.BaseURL = "http://127.0.0.1:1/unreachable"
	loaded, lst, err := msrc.NewSource(store, offline).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Version() != ix.Version() {
		t.Fatalf("the stored form did not round-trip: version %s, refreshed %s", loaded.Version(), ix.Version())
	}
	if got := matchCVEs(t, loaded, "10.0.20348.2849"); got != want {
		t.Fatalf("loaded index: got %s", got)
	}
	if lst.Stale || !lst.RefreshedAt.Equal(opts.Now()) {
		t.Errorf("loaded status: %+v", lst)
	}
}

func TestRefreshDownloadsOnlyWhatChanged(t *testing.T) {
	f, store, clk, opts := setup(t)
	src := msrc.NewSource(store, opts)
	if _, _, err := src.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.Requests()
	clk.Add(24 * time.Hour)
	_, st, err := src.Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Requests(); len(got) != 0 || len(st.Unchanged) != 2 {
		t.Fatalf("requested %q, unchanged %q", got, st.Unchanged)
	}
	// A revised document (new release date) is downloaded again, and the
	// chunks of its previous content are deleted.
	old := store.IDs()
	revised := strings.Replace(string(readDoc(t, "2024-Nov")), "Windows Kerberos Remote Code Execution Vulnerability", "Windows Kerberos Remote Code Execution Vulnerability (revised)", -1)
	f.Publish("2024-Nov", "2024-12-21T08:00:00Z", []byte(revised))
	_, st, err = src.Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Requests(); !slices.Equal(got, []string{"2024-Nov"}) || !slices.Equal(st.Downloaded, []string{"2024-Nov"}) {
		t.Fatalf("requested %q, downloaded %q", got, st.Downloaded)
	}
	now := store.IDs()
	for _, id := range old {
		if strings.HasPrefix(id, "msrc-2024-Nov-") && slices.Contains(now, id) {
			t.Errorf("chunk %s of the previous November is still stored", id)
		}
		if strings.HasPrefix(id, "msrc-2024-Dec-") && !slices.Contains(now, id) {
			t.Errorf("chunk %s of the unchanged December was deleted", id)
		}
	}
}

// A month's document missing or malformed keeps the last good data for that
// month, and says so until a good document replaces it.
func TestRefreshKeepsLastGoodMonth(t *testing.T) {
	f, store, clk, opts := setup(t)
	src := msrc.NewSource(store, opts)
	good, _, err := src.Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	all := matchCVEs(t, good, "10.0.20348.1")
	dec := readDoc(t, "2024-Dec")

	steps := []struct {
		name    string
		change  func()
		problem string // substring of the one problem; "" = none
	}{
		{"a revised December document is truncated",
			func() { f.Publish("2024-Dec", "2024-12-21T08:00:00Z", dec[:len(dec)/3]) },
			"2024-Dec: GET " + f.BaseURL() + "/cvrf/2024-Dec: malformed MSRC document 2024-Dec: unexpected EOF (keeping the data downloaded 2024-12-20T06:00:00Z)"},
		{"December is served for another month",
			func() { f.Publish("2024-Dec", "2024-12-22T08:00:00Z", readDoc(t, "2024-Nov")) },
			`the document's id is "2024-Nov" (keeping the data downloaded`},
		{"a revised November document is gone",
			func() {
				f.Publish("2024-Dec", msrctest.DecRelease, dec)
				f.Publish("2024-Nov", "2024-12-23T08:00:00Z", nil)
			},
			"2024-Nov: GET " + f.BaseURL() + "/cvrf/2024-Nov: MSRC document not published (HTTP 404) (keeping"},
		{"November has left the updates index",
			func() {
				f.Withdraw("2024-Nov")
			},
			"2024-Nov: not in the MSRC updates index (keeping"},
		{"the updates index fails",
			func() { f.FailUpdates(http.StatusServiceUnavailable) },
			`updates index: GET ` + f.BaseURL() + `/updates: HTTP 503: {"error":"service unavailable"}`},
		{"all is well again",
			func() {
				f.FailUpdates(0)
				f.Publish("2024-Nov", "2024-12-24T08:00:00Z", readDoc(t, "2024-Nov"))
			},
			""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clk.Add(time.Hour)
			s.change()
			ix, st, err := src.Refresh(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := matchCVEs(t, ix, "10.0.20348.1"); got != all {
				t.Fatalf("findings changed: %s", got)
			}
			if s.problem == "" {
				if st.Stale || st.Err() != nil {
					t.Fatalf("still stale: %v", st.Err())
				}
				return
			}
			if !st.Stale || !slices.ContainsFunc(st.Problems, func(p string) bool { return strings.Contains(p, s.problem) }) {
				t.Fatalf("problems %q, want one with %q", st.Problems, s.problem)
			}
			// The failure is stored, so a scan's Load reports it too.
			_, lst, err := msrc.NewSource(store, opts).Load(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if s.name != "the updates index fails" && !slices.Equal(lst.Problems, st.Problems) {
				t.Fatalf("Load reports %q, Refresh %q", lst.Problems, st.Problems)
			}
		})
	}
}

// The rescan: a new month's document adds its CVEs, read from the
// store, for an image whose identity a scan recorded; nothing is pulled.
func TestNewMonthReachesRescans(t *testing.T) {
	f, store, clk, opts := setup(t)
	src := msrc.NewSource(store, opts)
	if _, _, err := src.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	// What the scan stored for a Windows Server 2025 Nano Server image.
	scanned := identity(t, "10.0.26100.2605", windowsimage.NanoServer)
	inv := model.Inventory{OSFamily: windowsimage.OSFamily, OSName: scanned.OSVersion, Groups: []model.PackageGroup{scanned.Group()}}
	rescan := func() (string, string) {
		ix, _, err := msrc.NewSource(store, opts).Load(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		id, ok := windowsimage.FromInventory(inv)
		if !ok {
			t.Fatal("no Windows identity in the inventory")
		}
		fs, err := ix.Match(id)
		if err != nil {
			t.Fatal(err)
		}
		return cves(fs), ix.Version()
	}
	before, v1 := rescan()
	if before != "" {
		t.Fatalf("findings before January: %s", before)
	}

	clk.Set(time.Date(2025, 1, 15, 6, 0, 0, 0, time.UTC))
	f.Publish("2025-Jan", msrctest.JanRelease, readDoc(t, "2025-Jan"))
	_, st, err := src.Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Downloaded, []string{"2025-Jan"}) || !slices.Equal(st.Unchanged, []string{"2024-Dec"}) || !slices.Equal(st.Dropped, []string{"2024-Nov"}) {
		t.Fatalf("downloaded %q, unchanged %q, dropped %q", st.Downloaded, st.Unchanged, st.Dropped)
	}
	after, v2 := rescan()
	if after != "CVE-2025-21298 CVE-2025-21333" || v2 == v1 {
		t.Fatalf("after January: %q (version %s, was %s)", after, v2, v1)
	}
	for _, id := range store.IDs() {
		if strings.HasPrefix(id, "msrc-2024-Nov-") {
			t.Errorf("November left the window but %s is still stored", id)
		}
	}
}

func TestNoDataAtAll(t *testing.T) {
	f, store, _, opts := setup(t)
	f.FailUpdates(http.StatusInternalServerError)
	_, st, err := msrc.NewSource(store, opts).Refresh(t.Context())
	if !errors.Is(err, msrc.ErrNoData) || !st.Stale || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("got %v, %+v", err, st)
	}
	if _, _, err := msrc.NewSource(store, opts).Load(t.Context()); !errors.Is(err, msrc.ErrNoData) {
		t.Fatalf("Load: %v", err)
	}
}

func TestStaleWhenNotRefreshed(t *testing.T) {
	_, store, clk, opts := setup(t)
	if _, _, err := msrc.NewSource(store, opts).Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	clk.Add(msrc.DefaultMaxAge + time.Hour)
	_, st, err := msrc.NewSource(store, opts).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Stale || len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "not refreshed for 49h0m0s") {
		t.Fatalf("got %+v", st)
	}
}

func TestResponsesAreBounded(t *testing.T) {
	_, store, _, opts := setup(t)
	opts.MaxDocumentBytes = 20_000 // the updates index fits, the documents do not
	_, st, err := msrc.NewSource(store, opts).Refresh(t.Context())
	if !errors.Is(err, msrc.ErrNoData) {
		t.Fatalf("got %v", err)
	}
	if len(st.Problems) != 2 || !strings.Contains(st.Problems[0], "MSRC response too large (more than 20000 bytes)") {
		t.Fatalf("problems %q", st.Problems)
	}
}

// Damaged stored chunks are noticed, the month left out and downloaded again.
func TestDamagedChunks(t *testing.T) {
	for _, damage := range []struct {
		name string
		do   func(store *msrc.MemoryStore, id string)
		want string
	}{
		{"a chunk is missing", func(s *msrc.MemoryStore, id string) { _ = s.Delete(context.Background(), id) }, "is missing"},
		{"a chunk was altered", func(s *msrc.MemoryStore, id string) {
			b, _, _ := s.Load(context.Background(), id)
			_ = s.Save(context.Background(), id, []byte(strings.Replace(string(b), "December 2024", "Decembre 2024", 1)))
		}, "add up to content"},
		{"a chunk is not JSON", func(s *msrc.MemoryStore, id string) { _ = s.Save(context.Background(), id, []byte("{")) }, "unexpected end of JSON"},
	} {
		t.Run(damage.name, func(t *testing.T) {
			f, store, _, opts := setup(t)
			if _, _, err := msrc.NewSource(store, opts).Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			f.Requests()
			var first string
			for _, id := range store.IDs() {
				if strings.HasPrefix(id, "msrc-2024-Dec-") && strings.HasSuffix(id, "-0") {
					first = id
				}
			}
			damage.do(store, first)
			ix, st, err := msrc.NewSource(store, opts).Load(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !st.Stale || len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "2024-Dec: stored data unreadable") ||
				!strings.Contains(st.Problems[0], damage.want) {
				t.Fatalf("problems %q", st.Problems)
			}
			if got := matchCVEs(t, ix, "10.0.20348.2849"); got != "CVE-2024-49019" {
				t.Fatalf("without December: %s", got)
			}
			ix, st, err = msrc.NewSource(store, opts).Refresh(t.Context())
			if err != nil || st.Stale {
				t.Fatalf("refresh: %v %q", err, st.Problems)
			}
			if got := f.Requests(); !slices.Equal(got, []string{"2024-Dec"}) {
				t.Fatalf("requested %q", got)
			}
			if got := matchCVEs(t, ix, "10.0.20348.2849"); got != "CVE-2024-49112 CVE-2024-49019 CVE-2024-49090 CVE-2024-49138" {
				t.Fatalf("after the refresh: %s", got)
			}
		})
	}
}

// failingStore fails saves of ids with a prefix.
type failingStore struct {
	msrc.MemoryStore
	prefix string
}

func (s *failingStore) Save(ctx context.Context, id string, data []byte) error {
	if strings.HasPrefix(id, s.prefix) {
		return fmt.Errorf("injected failure saving %s", id)
	}
	return s.MemoryStore.Save(ctx, id, data)
}

func TestStoreFailureIsReported(t *testing.T) {
	_, _, _, opts := setup(t)
	store := &failingStore{prefix: "msrc-2024-Dec-"}
	ix, st, err := msrc.NewSource(store, opts).Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// This run has December; the store does not, and says so.
	if got := matchCVEs(t, ix, "10.0.20348.2849"); got != "CVE-2024-49112 CVE-2024-49019 CVE-2024-49090 CVE-2024-49138" {
		t.Fatalf("refreshed: %s", got)
	}
	if len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "2024-Dec: store: save msrc-2024-Dec-") {
		t.Fatalf("problems %q", st.Problems)
	}
	loaded, lst, err := msrc.NewSource(store, opts).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := matchCVEs(t, loaded, "10.0.20348.2849"); got != "CVE-2024-49019" || !lst.Stale {
		t.Fatalf("loaded: %s, %q", got, lst.Problems)
	}
}

func TestOptionsDefaults(t *testing.T) {
	f := msrctest.NewServer(t)
	f.Publish("2024-Dec", msrctest.DecRelease, readDoc(t, "2024-Dec"))
	// A trailing slash on PALISADE_MSRC_URL is harmless.
	opts := msrc.Options{BaseURL: f.BaseURL() + "/", Now: func() time.Time { return time.Date(2024, 12, 20, 0, 0, 0, 0, time.UTC) }}
	_, st, err := msrc.NewSource(&msrc.MemoryStore{}, opts).Refresh(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Twelve months by default: eleven of them are not published here.
	if len(st.Months) != msrc.DefaultMonths || len(st.Problems) != msrc.DefaultMonths-1 {
		t.Fatalf("%d months, problems %q", len(st.Months), st.Problems)
	}
}
