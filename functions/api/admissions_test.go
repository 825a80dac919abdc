package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/gatestore"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// TestAdmissions: /api/admissions lists the stored decisions, filtered by
// cluster, namespace and outcome, and refuses a bad filter.
func TestAdmissions(t *testing.T) {
	st := testenv.Store(t)
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, a := range []model.Admission{
		{Cluster: "aks-a", UID: "1", Time: at, Namespace: "shop", ObjectKind: "Pod", Name: "web", Allowed: false, Message: "denied"},
		{Cluster: "aks-a", UID: "2", Time: at, Namespace: "shop", ObjectKind: "Pod", Name: "api", Allowed: true},
		{Cluster: "aks-b", UID: "3", Time: at, Namespace: "web", ObjectKind: "Deployment", Name: "x", Allowed: false},
	} {
		if err := gatestore.RecordAdmission(t.Context(), st, a); err != nil {
			t.Fatal(err)
		}
	}
	a := New(st, Options{})
	for _, tc := range []struct {
		query string
		code  int
		uids  string
	}{
		{"", 200, "1,2,3"},
		{"?cluster=aks-a", 200, "1,2"},
		{"?cluster=aks-a&allowed=false", 200, "1"},
		{"?namespace=web", 200, "3"},
		{"?allowed=maybe", 400, ""},
		{"?rule=x", 400, ""},
	} {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/admissions"+tc.query, nil))
		if rec.Code != tc.code {
			t.Errorf("%s: %d %s", tc.query, rec.Code, rec.Body)
			continue
		}
		if tc.code != 200 {
			continue
		}
		var out struct{ Items []model.Admission }
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		var uids []string
		for _, it := range out.Items {
			uids = append(uids, it.UID)
		}
		if got := strings.Join(slices.Sorted(slices.Values(uids)), ","); got != tc.uids {
			t.Errorf("%s: %s, want %s", tc.query, got, tc.uids)
		}
	}
}

// TestGateRules: the rules in force are served for the console; without a
// file, the default rule.
func TestGateRules(t *testing.T) {
	rules, err := gate.Parse([]byte("rules: [{name: deny-kev, mode: deny, conditions: {knownExploited: true}}]"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts Options
		want string
	}{{Options{GateRules: rules}, `"name":"deny-kev"`}, {Options{}, `"name":"default-high-critical"`}} {
		rec := httptest.NewRecorder()
		New(testenv.Store(t), tc.opts).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/gate/rules", nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%d %s, want %s", rec.Code, rec.Body, tc.want)
		}
	}
}
