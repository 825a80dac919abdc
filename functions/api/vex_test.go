package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vex"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/testenv"
)

const log4shell = "CVE-2021-44228"

// vexFindings are the findings of image n: log4shell in both, curl's CVE
// in the first.
func vexFindings(n int) []model.Finding {
	f := func(id, pkg string, sev model.Severity) model.Finding {
		d := digestOf(n)
		return model.Finding{ID: model.FindingID(d, id, pkg, "", "1"), Digest: d, Registry: "contoso.azurecr.io", Repository: "web",
			VulnID: id, PkgName: pkg, InstalledVersion: "1", Severity: sev, SeverityRank: sev.Rank()}
	}
	out := []model.Finding{f(log4shell, "log4j-core", model.SeverityCritical)}
	if n == 1 {
		out = append(out, f("CVE-2024-0001", "curl", model.SeverityLow))
	}
	return out
}

// recordVEXImage records image n as a scan does, annotated with what src
// holds.
func recordVEXImage(t *testing.T, st store.Store, src *vex.Source, n int) {
	t.Helper()
	feeds, _, err := src.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	img := model.Image{Digest: digestOf(n), Registry: "contoso.azurecr.io", Repository: "web", Status: model.ImageActive, PushedAt: intelDay, ScannedAt: intelDay}
	counts := model.Counts{}
	for _, f := range vexFindings(n) {
		counts[f.Severity]++
	}
	img.SetCounts(counts)
	if _, err := vulnstore.Record(t.Context(), st, vulnstore.Scan{Image: img, Findings: vexFindings(n), SeenAt: intelDay, Intel: feeds}); err != nil {
		t.Fatal(err)
	}
}

func send(t *testing.T, h http.Handler, method, target string, body []byte) (int, map[string]json.RawMessage) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, bytes.NewReader(body)))
	var out map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %s", method, target, rec.Body)
	}
	return rec.Code, out
}

// suppressedOf is "vuln status" of an image's suppressed open findings.
func suppressedOf(t *testing.T, st store.Store, n int) []string {
	t.Helper()
	m, err := vulnstore.Findings(t.Context(), st, digestOf(n))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range m {
		if f.Suppressed != nil {
			out = append(out, f.VulnID+" "+f.Suppressed.Status)
		}
	}
	return out
}

func criticals(t *testing.T, st store.Store, n int) int {
	t.Helper()
	img, err := vulnstore.GetImage(t.Context(), st, digestOf(n))
	if err != nil {
		t.Fatal(err)
	}
	return img.Counts[model.SeverityCritical]
}

// TestVEX: a posted OpenVEX statement suppresses exactly its (CVE,
// product) pair, at once and idempotently; a rescan keeps it; a new
// version of the document without it, or its deletion, brings the finding
// back; an invalid document is a 400 naming the problem.
func TestVEX(t *testing.T) {
	st := testenv.Store(t)
	docs := vex.NewStore(st, nil)
	src := vex.NewSource(intel.NewSource(st, intel.Options{}), docs)
	h := New(st, Options{Feeds: src, Intel: src, VEX: docs})
	for n := 1; n <= 2; n++ {
		recordVEXImage(t, st, src, n)
	}

	doc := func(version int, statements string) []byte {
		return []byte(`{"@context": "https://openvex.dev/ns/v0.2.3", "@id": "https://contoso.example/vex/web", "author": "Contoso",
"timestamp": "2026-11-29T08:00:00Z", "version": ` + string(rune('0'+version)) + `, "statements": [` + statements + `]}`)
	}
	log4j := `{"vulnerability": {"name": "` + log4shell + `"}, "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
 "products": [{"@id": "pkg:oci/web@` + url.PathEscape(digestOf(1)) + `?repository_url=contoso.azurecr.io/web"}]}`
	unrelated := `{"vulnerability": {"name": "CVE-2020-0001"}, "status": "fixed", "products": [{"@id": "contoso.azurecr.io/web"}]}`

	code, body := send(t, h, http.MethodPost, "/api/vex", doc(1, log4j))
	if code != http.StatusOK || string(body["changed"]) != "true" || string(body["findingsUpdated"]) != "1" {
		t.Fatalf("POST: %d %s", code, body)
	}
	if got := suppressedOf(t, st, 1); len(got) != 1 || got[0] != log4shell+" not_affected" {
		t.Errorf("image 1 suppressed %q", got)
	}
	if got := suppressedOf(t, st, 2); len(got) != 0 {
		t.Errorf("image 2 (not the product) suppressed %q", got)
	}
	if criticals(t, st, 1) != 0 || criticals(t, st, 2) != 1 {
		t.Errorf("critical counts %d, %d: want 0 (suppressed) and 1", criticals(t, st, 1), criticals(t, st, 2))
	}

	// The same document again: nothing to do.
	code, body = send(t, h, http.MethodPost, "/api/vex", doc(1, log4j))
	if code != http.StatusOK || string(body["changed"]) != "false" || string(body["findingsUpdated"]) != "0" {
		t.Fatalf("POST again: %d %s", code, body)
	}
	// A rescan keeps the suppression.
	recordVEXImage(t, st, src, 1)
	if got := suppressedOf(t, st, 1); len(got) != 1 || criticals(t, st, 1) != 0 {
		t.Errorf("after a rescan: suppressed %q, %d critical", got, criticals(t, st, 1))
	}
	code, body = send(t, h, http.MethodGet, "/api/vex", nil)
	if code != http.StatusOK || !strings.Contains(string(body["items"]), `"statements":1`) {
		t.Errorf("GET: %d %s", code, body)
	}

	// Version 2 without the statement withdraws it.
	code, body = send(t, h, http.MethodPost, "/api/vex", doc(2, unrelated))
	if code != http.StatusOK || string(body["findingsUpdated"]) != "1" {
		t.Fatalf("POST version 2: %d %s", code, body)
	}
	if got := suppressedOf(t, st, 1); len(got) != 0 || criticals(t, st, 1) != 1 {
		t.Errorf("after version 2: suppressed %q, %d critical", got, criticals(t, st, 1))
	}
	// Version 3 states it again; deleting the document withdraws it.
	if code, body = send(t, h, http.MethodPost, "/api/vex", doc(3, log4j)); code != http.StatusOK || string(body["findingsUpdated"]) != "1" {
		t.Fatalf("POST version 3: %d %s", code, body)
	}
	del := "/api/vex?id=" + url.QueryEscape("https://contoso.example/vex/web")
	if code, body = send(t, h, http.MethodDelete, del, nil); code != http.StatusOK || string(body["findingsUpdated"]) != "1" {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if got := suppressedOf(t, st, 1); len(got) != 0 {
		t.Errorf("after DELETE: suppressed %q", got)
	}
	if code, _ = send(t, h, http.MethodDelete, del, nil); code != http.StatusNotFound {
		t.Errorf("DELETE again: %d, want 404", code)
	}

	for _, c := range []struct{ body, want string }{
		{`{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "urn:x", "statements": [{"vulnerability": {"name": "CVE-2021-44228"}, "status": "not_affected", "products": [{"@id": "pkg:npm/x"}]}]}`, "justification"},
		{`{"bomFormat": "SPDX"}`, "neither OpenVEX"},
		{`not json`, "not JSON"},
	} {
		code, body := send(t, h, http.MethodPost, "/api/vex", []byte(c.body))
		if code != http.StatusBadRequest || !strings.Contains(string(body["error"]), c.want) {
			t.Errorf("POST %s: %d %s, want 400 naming %q", c.body, code, body, c.want)
		}
	}
	if code, _ := send(t, New(st, Options{}), http.MethodPost, "/api/vex", doc(1, log4j)); code != http.StatusNotImplemented {
		t.Errorf("without a VEX store: %d", code)
	}
}
