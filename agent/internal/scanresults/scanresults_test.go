package scanresults

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/api"
	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/testenv"
)

func digest(n int) string { return fmt.Sprintf("sha256:%064x", n) }

func record(t *testing.T, st store.Store, d string, n int, at time.Time) {
	t.Helper()
	sc := vulnstore.Scan{Image: model.Image{Digest: d, Registry: "myacr.azurecr.io", Repository: "shop/web", Status: model.ImageActive, PushedAt: at}, SeenAt: at}
	for i := range n {
		id := fmt.Sprintf("CVE-2099-%04d", i)
		sc.Findings = append(sc.Findings, model.Finding{ID: model.FindingID(d, id, "p", "", "1"), Digest: d, VulnID: id, PkgName: "p",
			InstalledVersion: "1", FixedVersion: "2", Severity: model.SeverityHigh, SeverityRank: 4, KnownExploited: i == 0})
	}
	if _, err := vulnstore.Record(t.Context(), st, sc); err != nil {
		t.Fatal(err)
	}
}

// TestLookupAndRefresh against the real API: a miss is fetched (all pages
// of findings) and kept, an unknown digest is not scanned, a refresh sees
// a rescan, a wrong key or an unreachable API is an error (unknown).
func TestLookupAndRefresh(t *testing.T) {
	st := testenv.Store(t)
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	record(t, st, digest(1), 1200, at)
	var calls atomic.Int64
	a := api.New(st, api.Options{Key: "k"})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1); a.ServeHTTP(w, r) }))
	defer ts.Close()
	c := New(Options{APIURL: ts.URL, Key: "k", MissTimeout: time.Minute}, zerolog.Nop()) // 1,200 findings under -race take a while
	ctx := t.Context()

	r, err := c.Lookup(ctx, digest(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1200 || !r.Findings[0].Fixable || r.Registry != "myacr.azurecr.io" || !r.PushedAt.Equal(at) {
		t.Fatalf("result: %d findings, %+v", len(r.Findings), r.Findings[:1])
	}
	exploited := 0
	for _, f := range r.Findings {
		if f.KnownExploited {
			exploited++
		}
	}
	if exploited != 1 {
		t.Errorf("%d known exploited", exploited)
	}
	before := calls.Load()
	if _, err := c.Lookup(ctx, digest(1)); err != nil || calls.Load() != before {
		t.Fatalf("a hit called the API (%d calls) or failed: %v", calls.Load()-before, err)
	}
	if _, err := c.Lookup(ctx, digest(2)); !errors.Is(err, gate.ErrNotScanned) {
		t.Fatalf("unknown digest: %v", err)
	}

	record(t, st, digest(1), 3, at.Add(time.Hour)) // a rescan: most are fixed
	record(t, st, digest(2), 1, at)                // and the other one is scanned now
	if n, err := c.Refresh(ctx); err != nil || n != 2 {
		t.Fatalf("refresh: %d, %v", n, err)
	}
	if r, _ := c.Lookup(ctx, digest(1)); len(r.Findings) != 3 {
		t.Errorf("after refresh: %d findings", len(r.Findings))
	}
	if _, err := c.Lookup(ctx, digest(2)); err != nil {
		t.Errorf("scanned since: %v", err)
	}

	bad := New(Options{APIURL: ts.URL, Key: "wrong"}, zerolog.Nop())
	if _, err := bad.Lookup(ctx, digest(1)); err == nil || errors.Is(err, gate.ErrNotScanned) {
		t.Errorf("wrong key: %v", err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer slow.Close()
	start := time.Now()
	if _, err := New(Options{APIURL: slow.URL, MissTimeout: 200 * time.Millisecond}, zerolog.Nop()).Lookup(ctx, digest(1)); err == nil {
		t.Error("a hanging API answered")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a miss took %s", d)
	}
}
