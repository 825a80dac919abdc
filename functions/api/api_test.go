package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/faultstore"
	"github.com/palisade-sec/palisade/tests/testenv"
)

func digestOf(n int) string { return fmt.Sprintf("sha256:%064x", n) }

// seed stores three images and, for the first, findings of each severity.
func seed(t *testing.T) store.Store {
	t.Helper()
	st := testenv.Store(t)
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	images := []struct {
		repo   string
		counts model.Counts
	}{
		{"web", model.Counts{model.SeverityCritical: 1, model.SeverityHigh: 1, model.SeverityLow: 1}},
		{"api", model.Counts{model.SeverityMedium: 2}},
		{"web", model.Counts{}},
	}
	for i, im := range images {
		img := model.Image{ID: digestOf(i + 1), Digest: digestOf(i + 1), Registry: "contoso.azurecr.io", Repository: im.repo, Status: model.ImageActive, PushedAt: now, ScannedAt: now}
		img.SetCounts(im.counts)
		var findings []model.Finding
		if i == 0 {
			for _, sev := range []model.Severity{model.SeverityCritical, model.SeverityHigh, model.SeverityLow} {
				f := model.Finding{Digest: img.Digest, VulnID: "CVE-2024-" + string(sev), PkgName: "openssl", InstalledVersion: "3.0.1", Severity: sev, SeverityRank: sev.Rank()}
				f.ID = model.FindingID(f.Digest, f.VulnID, f.PkgName, "", f.InstalledVersion)
				findings = append(findings, f)
			}
		}
		if _, err := vulnstore.Record(t.Context(), st, vulnstore.Scan{Image: img, Findings: findings, SeenAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func get(t *testing.T, h http.Handler, url string, header map[string]string) (int, map[string]json.RawMessage) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", url, ct)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: body is not a JSON object: %s", url, rec.Body)
	}
	return rec.Code, body
}

func ids(t *testing.T, body map[string]json.RawMessage, field string) []string {
	t.Helper()
	var items []map[string]any
	if err := json.Unmarshal(body["items"], &items); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		out = append(out, fmt.Sprint(it[field]))
	}
	return sorted(out)
}

func sorted(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestImages(t *testing.T) {
	a := New(seed(t), Options{})
	tests := []struct {
		url  string
		want []string
	}{
		{"/api/images", []string{digestOf(1), digestOf(2), digestOf(3)}},
		{"/api/images?repository=web", []string{digestOf(1), digestOf(3)}},
		{"/api/images?severity=high", []string{digestOf(1)}},
		{"/api/images?severity=Medium", []string{digestOf(1), digestOf(2)}},
		{"/api/images?registry=other.azurecr.io", nil},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			code, body := get(t, a, tt.url, nil)
			if code != 200 {
				t.Fatalf("status %d: %s", code, body["error"])
			}
			if diff := cmp.Diff(tt.want, ids(t, body, "digest")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestImageAndFindings(t *testing.T) {
	a := New(seed(t), Options{})
	code, body := get(t, a, "/api/images/"+digestOf(2), nil)
	if code != 200 || !strings.Contains(string(body["repository"]), "api") {
		t.Errorf("image: %d %v", code, body)
	}
	code, body = get(t, a, "/api/images/"+digestOf(1)+"/findings?severity=high", nil)
	if code != 200 {
		t.Fatalf("findings: %d %s", code, body["error"])
	}
	if diff := cmp.Diff([]string{"CVE-2024-CRITICAL", "CVE-2024-HIGH"}, ids(t, body, "vulnId")); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestPaging(t *testing.T) {
	a := New(seed(t), Options{})
	var seen []string
	url := "/api/images?limit=2"
	for range 5 {
		code, body := get(t, a, url, nil)
		if code != 200 {
			t.Fatalf("%s: %d", url, code)
		}
		seen = append(seen, ids(t, body, "digest")...)
		var cont string
		_ = json.Unmarshal(body["continuation"], &cont)
		if cont == "" {
			break
		}
		url = "/api/images?limit=2&continuation=" + cont
	}
	if diff := cmp.Diff([]string{digestOf(1), digestOf(2), digestOf(3)}, sorted(seen)); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	a := New(seed(t), Options{Key: "s3cret"})
	key := map[string]string{"x-functions-key": "s3cret"}
	tests := []struct {
		url    string
		header map[string]string
		status int
		want   string
	}{
		{"/api/images", nil, 401, "key"},
		{"/api/images?code=wrong", nil, 401, "key"},
		{"/api/images?code=s3cret", nil, 200, ""},
		{"/api/images/sha256:abc", key, 400, "malformed digest"},
		{"/api/images/" + digestOf(9), key, 404, "no image with digest"},
		{"/api/images/" + digestOf(9) + "/findings", key, 404, "no image with digest"},
		{"/api/images?severity=severe", key, 400, "severity"},
		{"/api/images?limit=0", key, 400, "limit"},
		{"/api/images?limit=5000", key, 400, "limit"},
		{"/api/nothing", key, 404, "no endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			code, body := get(t, a, tt.url, tt.header)
			if code != tt.status || !strings.Contains(string(body["error"]), tt.want) {
				t.Errorf("got %d %s, want %d naming %q", code, body["error"], tt.status, tt.want)
			}
		})
	}
}

// TestStoreFailureHidesInternals: a failing store gives every endpoint a
// 500 with a fixed message; the store's error (here with query text) is
// logged, never sent.
func TestStoreFailureHidesInternals(t *testing.T) {
	st := faultstore.Open(t)
	seedAlerts(t, st, "netcat_rce")
	a := New(st, Options{})
	st.SetFail(func(string, store.Container) error {
		return errors.New(`query failed: SELECT * FROM c WHERE c.status = @p0: 503 ServiceUnavailable`)
	})
	var logs bytes.Buffer
	for _, url := range []string{"/api/images", "/api/images/" + digestOf(1), "/api/images/" + digestOf(1) + "/findings",
		"/api/findings", "/api/findings?sort=priority",
		"/api/alerts", "/api/posture", "/api/posture/score", "/api/posture/score?cluster=aks-prod"} {
		t.Run(url, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, url, nil)
			req = req.WithContext(logging.With(req.Context(), zerolog.New(&logs)))
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, req)
			if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "SELECT") ||
				!strings.Contains(rec.Body.String(), internalMessage) {
				t.Errorf("%d %s; want 500 with only %q", rec.Code, rec.Body, internalMessage)
			}
		})
	}
	if !strings.Contains(logs.String(), "SELECT * FROM c") {
		t.Errorf("the cause was not logged: %s", logs.String())
	}
}

// TestSharedChecks: the key may come as ?code= on every endpoint, unknown
// parameters and methods are refused, each as JSON.
func TestSharedChecks(t *testing.T) {
	a := New(seed(t), Options{Key: "s3cret"})
	for _, tc := range []struct {
		method, url string
		status      int
		want        string
	}{
		{http.MethodGet, "/api/alerts?code=s3cret", 200, ""},
		{http.MethodGet, "/api/posture/score?code=s3cret", 200, ""},
		{http.MethodGet, "/api/images?code=s3cret&colour=red", 400, `unknown parameter \"colour\"`},
		{http.MethodGet, "/api/images?code=s3cret&status=sleeping", 400, "unknown status"},
		{http.MethodGet, "/api/images?code=s3cret&continuation=bogus", 400, "continuation"},
		{http.MethodPost, "/api/images?code=s3cret", 405, "not allowed"},
		{http.MethodDelete, "/api/images/" + digestOf(1) + "?code=s3cret", 405, "not allowed"},
	} {
		t.Run(tc.method+" "+tc.url, func(t *testing.T) {
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.url, nil))
			if rec.Code != tc.status || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") || !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("%d %s %s; want %d naming %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body, tc.status, tc.want)
			}
		})
	}
}
