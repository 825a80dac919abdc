package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/faultstore"
)

// recordingPublisher keeps what it was sent, failing while fail is set.
type recordingPublisher struct {
	sent []model.Alert
	fail bool
}

func (p *recordingPublisher) Publish(_ context.Context, alerts []model.Alert) error {
	if p.fail {
		return errors.New("sentinel down")
	}
	p.sent = append(p.sent, alerts...)
	return nil
}

func TestTriageAPI(t *testing.T) {
	st := faultstore.Open(t)
	seedAlerts(t, st, "netcat_rce", "nmap")
	all, err := detection.ListAlerts(t.Context(), st, detection.AlertFilter{}, store.Cursor{})
	if err != nil || len(all.Items) != 2 {
		t.Fatalf("seeded alerts: %v %v", all.Items, err)
	}
	id, cluster := all.Items[0].ID, all.Items[0].Cluster
	pub := &recordingPublisher{}
	at := time.Date(2026, 7, 11, 9, 0, 0, 0, time.UTC)
	api := New(st, Options{Publisher: pub, Now: func() time.Time { return at }})
	do := func(method, url, body string, header map[string]string) (int, map[string]json.RawMessage) {
		t.Helper()
		req := httptest.NewRequest(method, url, strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		var out map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, url, rec.Body)
		}
		return rec.Code, out
	}
	jsonCT := map[string]string{"Content-Type": "application/json"}

	code, body := do(http.MethodGet, "/api/alerts/"+id, "", nil)
	if code != 200 || string(body["status"]) != `"new"` {
		t.Fatalf("GET by id: %d %s", code, body["status"])
	}
	code, body = do(http.MethodPatch, "/api/alerts/"+id+"?cluster="+cluster, `{"status":"dismissed","comment":"a <b>pen test</b>","by":"ana"}`, jsonCT)
	if code != 200 || string(body["status"]) != `"dismissed"` || !strings.Contains(string(body["triage"]), `"by":"ana"`) {
		t.Fatalf("PATCH: %d %v", code, body)
	}
	if len(pub.sent) != 1 || pub.sent[0].Status != model.AlertDismissed {
		t.Errorf("published %+v, want the dismissed alert", pub.sent)
	}
	// Easy Auth's principal names who made the change.
	code, body = do(http.MethodPatch, "/api/alerts/"+id, `{"status":"active","by":"spoofed"}`, map[string]string{PrincipalHeader: "bo@contoso.com"})
	if code != 200 || !strings.Contains(string(body["triage"]), `"by":"bo@contoso.com"`) || strings.Contains(string(body["triage"]), "spoofed") {
		t.Errorf("PATCH with a principal: %d %s", code, body["triage"])
	}
	// Sentinel down: the change is kept, the answer says to send it again,
	// and sending it again publishes it.
	pub.fail = true
	code, _ = do(http.MethodPatch, "/api/alerts/"+id, `{"status":"resolved","by":"ana"}`, jsonCT)
	if code != http.StatusBadGateway {
		t.Errorf("PATCH with Sentinel down: %d", code)
	}
	pub.fail = false
	code, body = do(http.MethodPatch, "/api/alerts/"+id, `{"status":"resolved","by":"ana"}`, jsonCT)
	if code != 200 || string(body["status"]) != `"resolved"` || pub.sent[len(pub.sent)-1].Status != model.AlertResolved {
		t.Errorf("PATCH again: %d %s", code, body["status"])
	}
	stored, err := detection.GetAlert(t.Context(), st, cluster, id)
	if err != nil || len(stored.Triage) != 3 {
		t.Errorf("stored triage %+v (%v), want 3 changes", stored.Triage, err)
	}

	for _, tc := range []struct {
		name, method, url, body string
		header                  map[string]string
		code                    int
		want                    string
	}{
		{"unknown id", http.MethodGet, "/api/alerts/0123456789abcdef0123456789abcdef", "", nil, 404, "no alert"},
		{"wrong cluster", http.MethodGet, "/api/alerts/" + id + "?cluster=other", "", nil, 404, "no alert"},
		{"unknown parameter", http.MethodPatch, "/api/alerts/" + id + "?force=1", `{}`, jsonCT, 400, "unknown parameter"},
		{"not JSON", http.MethodPatch, "/api/alerts/" + id, `status=active`, jsonCT, 400, "body must be"},
		{"unknown field", http.MethodPatch, "/api/alerts/" + id, `{"status":"active","by":"a","severity":"LOW"}`, jsonCT, 400, "unknown field"},
		{"form", http.MethodPatch, "/api/alerts/" + id, `status=active`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"},
		{"no one", http.MethodPatch, "/api/alerts/" + id, `{"status":"active"}`, jsonCT, 400, "who"},
		{"to new", http.MethodPatch, "/api/alerts/" + id, `{"status":"new","by":"a"}`, jsonCT, 400, "status"},
		{"not allowed", http.MethodPatch, "/api/alerts/" + id, `{"status":"dismissed","by":"a"}`, jsonCT, 409, "cannot become dismissed"},
		{"unknown alert", http.MethodPatch, "/api/alerts/0123456789abcdef0123456789abcdef", `{"status":"active","by":"a"}`, jsonCT, 404, "no such alert"},
		{"other method", http.MethodPost, "/api/alerts/" + id, `{}`, jsonCT, 405, "not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(tc.method, tc.url, tc.body, tc.header)
			if code != tc.code || !strings.Contains(string(body["error"]), tc.want) {
				t.Errorf("%d %s, want %d with %q", code, body["error"], tc.code, tc.want)
			}
		})
	}

	// The list filter knows the new status.
	code, body = do(http.MethodGet, "/api/alerts?status=new", "", nil)
	var items []model.Alert
	_ = json.Unmarshal(body["items"], &items)
	if code != 200 || len(items) != 1 || items[0].ID == id {
		t.Errorf("status=new: %d %d items", code, len(items))
	}
}
