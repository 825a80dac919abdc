package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/falcoevent"
	"github.com/palisade-sec/palisade/shared/funchost"
	"github.com/palisade-sec/palisade/tests/testenv"
)

func fixture(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{testenv.Root(t)}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type alertList struct {
	Items []struct {
		ID, Type, RefType, Cluster, Severity string
		Count                                int
	}
}

func alerts(t *testing.T, url string) alertList {
	t.Helper()
	code, body := getJSON(t, url)
	if code != 200 {
		t.Fatalf("%s: %d %s", url, code, body)
	}
	var l alertList
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRuntimeDetectionThroughHost delivers a sensor batch with one corrupt
// event as the Event Hubs trigger does, twice (redelivery), and reads the
// alert back through the query API.
func TestRuntimeDetectionThroughHost(t *testing.T) {
	h, front := launch(t)
	ev, err := falcoevent.DecodeJSON(fixture(t, "shared", "detection", "testdata", "falco", "drop_execute.json"))
	if err != nil {
		t.Fatal(err)
	}
	falcoevent.Stamp(&ev.Envelope, "aks-prod", "")
	body, _ := json.Marshal(ev.Envelope)
	events := []funchost.EventHubEvent{
		{Body: body, SequenceNumber: 1, EnqueuedTime: time.Now()},
		{Body: []byte(`{"v":1,"rule":`), SequenceNumber: 2, EnqueuedTime: time.Now()},
	}
	pc := funchost.PartitionContext{EventHubName: "runtime", ConsumerGroup: "$Default", PartitionID: "0"}
	for range 2 {
		attempts, err := h.DeliverEventHubs(t.Context(), "detectruntime", pc, events)
		if err != nil || attempts != 1 {
			t.Fatalf("delivery: attempts=%d err=%v", attempts, err)
		}
	}
	l := alerts(t, front.URL+"/api/alerts?cluster=aks-prod")
	if len(l.Items) != 1 {
		t.Fatalf("alerts = %+v, want one binary-drift alert", l.Items)
	}
	a := l.Items[0]
	if a.RefType != "K8S.NODE_BinaryDrift" || a.Count != 1 || a.Cluster != "aks-prod" {
		t.Errorf("alert = %+v, want K8S.NODE_BinaryDrift counted once across the redelivery", a)
	}
}

// TestAuditAnalysisThroughHost sends an AKS diagnostic-settings body as the
// audit hub delivers it and expects the cluster-admin binding alert.
func TestAuditAnalysisThroughHost(t *testing.T) {
	h, front := launch(t)
	event := strings.TrimSpace(string(fixture(t, "shared", "audit", "testdata", "events", "cluster_admin_binding.json")))
	record, _ := json.Marshal(map[string]any{"records": []any{map[string]any{
		"time":          "2024-05-01T12:00:00.0000000Z",
		"resourceId":    "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-AKS/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-PROD",
		"category":      "kube-audit-admin",
		"operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
		"properties":    map[string]string{"log": event + "\n", "stream": "stdout"},
	}}})
	pc := funchost.PartitionContext{EventHubName: "audit", ConsumerGroup: "$Default", PartitionID: "0"}
	if _, err := h.DeliverEventHubs(t.Context(), "analyzeaudit", pc, []funchost.EventHubEvent{{Body: record, EnqueuedTime: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range alerts(t, front.URL+"/api/alerts?type=K8S_ClusterAdminBinding").Items {
		found = found || a.RefType == "K8S_ClusterAdminBinding"
	}
	if !found {
		t.Errorf("no K8S_ClusterAdminBinding alert")
	}
}
