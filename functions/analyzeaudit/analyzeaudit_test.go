package analyzeaudit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/audit"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/faultstore"
)

const resourceID = "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-AKS/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-PROD"

func auditLog(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "shared", "audit", "testdata", "events", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func body(t *testing.T, logs ...string) string {
	t.Helper()
	var recs []map[string]any
	for _, l := range logs {
		recs = append(recs, map[string]any{"time": "2024-05-01T12:00:00.0000000Z", "resourceId": resourceID, "category": "kube-audit-admin",
			"operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read", "properties": map[string]any{"log": l}})
	}
	b, err := json.Marshal(map[string]any{"records": recs})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// otherCategories is a body of records that an AKS diagnostic setting
// sends to the audit hub beside kube-audit when more categories are on.
func otherCategories(t *testing.T) string {
	t.Helper()
	rec := func(cat, log string) map[string]any {
		return map[string]any{"time": "2024-05-01T12:00:00.0000000Z", "resourceId": resourceID, "category": cat,
			"operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
			"properties":    map[string]any{"log": log, "stream": "stderr", "pod": cat + "-7d9c8b6f5-x2x7q"}}
	}
	b, err := json.Marshal(map[string]any{"records": []any{
		rec("kube-apiserver", "I0501 12:00:00.123456       1 controller.go:624] quota admission added evaluator for: leases.coordination.k8s.io"),
		rec("guard", `{"level":"info","ts":"2024-05-01T12:00:00Z","msg":"authentication succeeded"}`),
		rec("kube-apiserver", "W0501 12:00:01.000001       1 dispatcher.go:205] Failed calling webhook, failing open"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hostRequest encodes three levels deep, as the host does for cardinality
// many / dataType string: Data.events is a string holding an array of
// strings, each a diagnostic body whose records hold audit events as strings.
func hostRequest(t *testing.T, events ...string) *customhandler.Request {
	t.Helper()
	arr, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"Data": map[string]any{"events": string(arr)}, "Metadata": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := customhandler.DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestHandle(t *testing.T) {
	st := faultstore.Open(t)
	f, err := New(st, nil, Options{Retries: 4, RetryDelay: time.Second, Now: func() time.Time { return time.Date(2024, 5, 1, 12, 5, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	req := hostRequest(t,
		body(t, auditLog(t, "cluster_admin_binding"), "{not json", auditLog(t, "exec")),
		`{"records":`,
		body(t, auditLog(t, "plain_get")),
		otherCategories(t),
	)
	for range 2 { // the second run is a redelivery
		resp, err := f.Handle(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if want := "4 hub events, 3 audit events, 2 parked, 2 alerts"; !strings.HasPrefix(resp.Logs[0], want) {
			t.Errorf("log %q, want prefix %q", resp.Logs[0], want)
		}
		if want := "3 records of other categories skipped map[guard:1 kube-apiserver:2]"; !strings.HasSuffix(resp.Logs[0], want) {
			t.Errorf("log %q, want suffix %q", resp.Logs[0], want)
		}
	}
	got := map[string]int{}
	if err := store.Each(t.Context(), st, store.Alerts, store.Query{PartitionKey: "aks-prod"}, func(a model.Alert) error {
		got[a.RefType+a.Type] = a.Count
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["K8S_ClusterAdminBindingClusterAdminBinding"] != 1 || got["ExecIntoPod"] != 1 {
		t.Errorf("alerts %v", got)
	}
	if n := st.Len(t, store.State); n != 2 {
		t.Errorf("%d parked, want 2 (the bad record and the bad body)", n)
	}
}

// TestRules: the configured rules are the ones applied. A request from a
// Tor exit raises ProxySourceAddress only with a threat list that names it.
func TestRules(t *testing.T) {
	ti, err := audit.ParseThreatList(strings.NewReader("185.220.101.0/24 tor\n"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := audit.New(audit.Options{ThreatIntel: ti})
	if err != nil {
		t.Fatal(err)
	}
	at := func() time.Time { return time.Date(2024, 5, 1, 12, 5, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name  string
		rules audit.Analyzer
		want  int
	}{{"built-in rules, no list", audit.Analyzer{}, 0}, {"with the list", rules, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			st := faultstore.Open(t)
			f, err := New(st, nil, Options{Rules: tc.rules, Now: at})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Handle(t.Context(), hostRequest(t, body(t, auditLog(t, "ti_tor")))); err != nil {
				t.Fatal(err)
			}
			n := 0
			if err := store.Each(t.Context(), st, store.Alerts, store.Query{}, func(a model.Alert) error {
				if a.Type == "ProxySourceAddress" {
					n++
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Errorf("%d ProxySourceAddress alerts, want %d", n, tc.want)
			}
		})
	}
}
