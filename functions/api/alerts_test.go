package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/falcoevent"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/faultstore"
)

// seedAlerts stores the alerts of Falco samples as detectruntime does.
func seedAlerts(t *testing.T, st store.Store, samples ...string) {
	t.Helper()
	d, err := detection.NewDetector(detection.Options{Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b := d.NewBatch()
	for _, n := range samples {
		raw, err := os.ReadFile(filepath.Join("..", "..", "shared", "detection", "testdata", "falco", n+".json"))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := falcoevent.DecodeJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		falcoevent.Stamp(&ev.Envelope, "aks-prod", "")
		b.AddEnvelope(&ev.Envelope)
	}
	now := func() time.Time { return time.Date(2026, 7, 10, 21, 0, 0, 0, time.UTC) }
	if _, err := detection.NewSink(st, d, detection.SinkOptions{Now: now}).Save(t.Context(), b.Folds()); err != nil {
		t.Fatal(err)
	}
}

// alertsPage is the answer of GET /api/alerts.
type alertsPage struct {
	Alerts       []model.Alert `json:"items"`
	Continuation string        `json:"continuation"`
}

func TestAlertsAPI(t *testing.T) {
	st := faultstore.Open(t)
	seedAlerts(t, st, "netcat_rce", "drop_execute", "nmap", "terminal_shell", "miner_pool_port")
	api := New(st, Options{})
	get := func(q string) (int, alertsPage) {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/alerts"+q, nil))
		var p alertsPage
		if rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
		}
		return rec.Code, p
	}
	cases := []struct {
		q     string
		code  int
		count int
	}{
		{"", 200, 5},
		{"?cluster=aks-prod", 200, 5},
		{"?cluster=other", 200, 0},
		{"?severity=high", 200, 2},
		{"?minSeverity=medium", 200, 4},
		{"?type=ReverseShell", 200, 1},
		{"?type=K8S.NODE_BinaryDrift", 200, 1},
		{"?since=2026-07-10T20:00:00Z&until=2026-07-10T21:00:00Z", 200, 5},
		{"?since=2026-07-10T21:00:00Z", 200, 0},
		{"?severity=urgent", 400, 0},
		{"?type=NoSuchType", 400, 0},
		{"?since=yesterday", 400, 0},
		{"?limit=0", 400, 0},
		{"?colour=red", 400, 0},
		{"?status=sleeping", 400, 0},
		{"?continuation=bogus", 400, 0},
	}
	for _, tc := range cases {
		t.Run(tc.q, func(t *testing.T) {
			code, p := get(tc.q)
			if code != tc.code || len(p.Alerts) != tc.count {
				t.Errorf("GET %s: %d with %d alerts, want %d with %d", tc.q, code, len(p.Alerts), tc.code, tc.count)
			}
		})
	}
	// Paging walks every alert once.
	seen := map[string]bool{}
	q := "?limit=2"
	for pages := 0; ; pages++ {
		code, p := get(q)
		if code != 200 || pages > 5 {
			t.Fatalf("paging: %d after %d pages", code, pages)
		}
		for _, a := range p.Alerts {
			seen[a.ID] = true
		}
		if p.Continuation == "" {
			break
		}
		q = "?limit=2&continuation=" + p.Continuation
	}
	if len(seen) != 5 {
		t.Errorf("paging saw %d alerts, want 5", len(seen))
	}
}
