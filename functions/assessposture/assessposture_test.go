package assessposture

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/snapshots"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// source is a hand-written Source: recorded ARM JSON and a fake clientset.
type source struct {
	cluster  *posture.Cluster
	registry *posture.Registry
	kube     kubernetes.Interface
	kubeErr  error
}

func (s *source) Clusters(context.Context, string) ([]*posture.Cluster, error) {
	return []*posture.Cluster{s.cluster, {ID: "/subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerService/managedClusters/broken", Name: "broken"}}, nil
}

func (s *source) Kube(_ context.Context, cl *posture.Cluster) (kubernetes.Interface, error) {
	if cl.Name == "broken" {
		return nil, s.kubeErr
	}
	return s.kube, nil
}

func (s *source) Diagnostics(context.Context, string) ([]posture.DiagnosticSetting, error) {
	return []posture.DiagnosticSetting{}, nil
}

func (s *source) Registries(context.Context, string) ([]posture.Registry, error) {
	return []posture.Registry{*s.registry}, nil
}

// results records the posture results sent to Log Analytics, by cluster.
type results struct{ byCluster map[string]int }

func (r *results) PublishPosture(_ context.Context, rs []model.PostureResult) error {
	for _, x := range rs {
		r.byCluster[x.Cluster]++
	}
	return nil
}

func TestHandle(t *testing.T) {
	data, err := os.ReadFile("../../shared/posture/testdata/bad/legacy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var objs []runtime.Object
	for _, doc := range strings.Split(string(data), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, obj)
	}
	cl, err := posture.DecodeCluster(must(os.ReadFile("../../shared/posture/testdata/arm/cluster-weak.json")))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := posture.DecodeRegistry(must(os.ReadFile("../../shared/posture/testdata/arm/registry-open.json")))
	if err != nil {
		t.Fatal(err)
	}
	src := &source{cluster: cl, registry: reg, kube: fake.NewClientset(objs...), kubeErr: errors.New("credentials of cluster broken: 403 Forbidden")}
	st := testenv.Store(t)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	sent := &results{byCluster: map[string]int{}}
	fn := New(st, src, snapshots.New(st, snapshots.Options{}), Options{
		Engine: posture.Options{TrustedRegistries: []string{"myacr.azurecr.io"}, AllowedServicePorts: []int{80, 443},
			AllowedAppArmorProfiles: []string{"runtime/default"}, MinKubernetesVersion: "1.30", VulnSeverity: model.SeverityHigh,
			ExcludedNamespaces: []string{"kube-system", "gatekeeper-system", "azure-arc", "azure-extensions-usage-system"}},
		Subscriptions: []string{"0b1f6471-1bf0-4dda-aec3-cb9272f09590"},
		Results:       sent,
		Now:           func() time.Time { return now },
	})
	req, err := customhandler.DecodeRequest([]byte(`{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":true}},"Metadata":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = fn.Handle(t.Context(), req)
	if err == nil || !strings.Contains(err.Error(), "403 Forbidden") {
		t.Fatalf("error %v, want the broken cluster's", err)
	}
	// The broken cluster did not stop the others: the weak cluster and the
	// registry were assessed and stored.
	for _, target := range []string{cl.ID, reg.ID} {
		var st2 model.State
		if _, err := st.Get(t.Context(), store.State, model.KindPostureRun, posture.RunID(target), &st2); err != nil {
			t.Fatalf("no run of %s: %v", target, err)
		}
		var run model.PostureRun
		if err := json.Unmarshal(st2.Data, &run); err != nil || run.Score.Failed == 0 {
			t.Errorf("run of %s: %+v %v", target, run, err)
		}
	}
	// Every stored result was sent to Log Analytics too.
	for _, target := range []string{cl.ID, reg.ID} {
		n := 0
		if err := store.Each(t.Context(), st, store.Posture, store.Query{PartitionKey: target}, func(model.PostureResult) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n == 0 || sent.byCluster[target] != n {
			t.Errorf("%s: %d results stored, %d sent", target, n, sent.byCluster[target])
		}
	}
	page, err := st.Query(t.Context(), store.Posture, store.Query{PartitionKey: cl.ID, Filters: []store.Filter{{Field: "checkId", Op: store.Eq, Value: "rbac-enabled"}}})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("rbac-enabled result: %d items, %v", len(page.Items), err)
	}

	// Undecodable timer input is a bad request.
	bad, _ := customhandler.DecodeRequest([]byte(`{"Data":{},"Metadata":{}}`))
	if _, err := fn.Handle(t.Context(), bad); !errors.Is(err, customhandler.ErrBadRequest) {
		t.Errorf("error %v, want a bad request", err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// agentSnapshot stores a complete snapshot of objs from cluster's agent,
// taken at at.
func agentSnapshot(t *testing.T, snaps *snapshots.Store, cluster string, at time.Time, objs []runtime.Object) {
	t.Helper()
	b, err := inventory.NewBuilder(inventory.Envelope{Kind: inventory.KindSnapshot, Cluster: cluster, Agent: "agent-0", Time: at, Generation: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range objs {
		kind := obj.GetObjectKind().GroupVersionKind().Kind
		if err := b.Add(kind, obj); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		e, err := inventory.Decode(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := snaps.Take(t.Context(), e, m.Body); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClustersWithAgents: a cluster ARM knows and whose agent reports is
// assessed from the agent's snapshot (no call to its API server) with
// ARM's settings; a cluster only an agent knows is assessed too, and a
// silent agent fails agent-reporting instead of being left out.
func TestClustersWithAgents(t *testing.T) {
	objs := legacyObjects(t)
	cl, err := posture.DecodeCluster(must(os.ReadFile("../../shared/posture/testdata/arm/cluster-weak.json")))
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := posture.DecodeRegistry(must(os.ReadFile("../../shared/posture/testdata/arm/registry-open.json")))
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	st := testenv.Store(t)
	snaps := snapshots.New(st, snapshots.Options{Now: func() time.Time { return now }})
	// The agent names the cluster in another case than ARM does.
	agentSnapshot(t, snaps, strings.ToUpper(cl.ID), now.Add(-5*time.Minute), objs)
	const silent = "arc-cluster-eu"
	agentSnapshot(t, snaps, silent, now.Add(-3*time.Hour), objs)
	// The direct path must not be taken: this source has no API server.
	src := &source{cluster: cl, registry: reg, kubeErr: errors.New("no inbound connection to this cluster")}
	fn := New(st, &onlyCluster{src}, snaps, Options{
		Engine:        posture.Options{TrustedRegistries: []string{"myacr.azurecr.io"}, VulnSeverity: model.SeverityHigh},
		Subscriptions: []string{"sub"}, AgentStaleAfter: 15 * time.Minute, Now: func() time.Time { return now },
	})
	req, _ := customhandler.DecodeRequest([]byte(`{"Data":{"timer":{"IsPastDue":false}},"Metadata":{}}`))
	resp, err := fn.Handle(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	sum := resp.ReturnValue.(Summary)
	if sum.Clusters != 2 || sum.Agents != 2 || sum.StaleAgents != 1 {
		t.Errorf("summary %+v", sum)
	}
	agentResult := func(cluster string) model.PostureResult {
		t.Helper()
		page, err := st.Query(t.Context(), store.Posture, store.Query{PartitionKey: cluster, Filters: []store.Filter{{Field: "checkId", Op: store.Eq, Value: posture.AgentCheck}}})
		if err != nil || len(page.Items) != 1 {
			t.Fatalf("agent-reporting of %s: %d results, %v", cluster, len(page.Items), err)
		}
		var r model.PostureResult
		if err := json.Unmarshal(page.Items[0], &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := agentResult(cl.ID); r.Status != model.PosturePass {
		t.Errorf("reporting agent: %+v", r)
	}
	if r := agentResult(silent); r.Status != model.PostureFail || !strings.Contains(r.Message, "no message from the agent since 2025-06-01T09:00:00Z") {
		t.Errorf("silent agent: %+v", r)
	}
	// Both were assessed from the snapshot: the privileged DaemonSet fails,
	// and ARM's settings were assessed for the one ARM knows.
	for _, c := range []struct{ cluster, check string }{{cl.ID, "privileged-containers"}, {silent, "privileged-containers"}, {cl.ID, "rbac-enabled"}} {
		page, _ := st.Query(t.Context(), store.Posture, store.Query{PartitionKey: c.cluster, Filters: []store.Filter{{Field: "checkId", Op: store.Eq, Value: c.check}, {Field: "status", Op: store.Eq, Value: model.PostureFail}}})
		if len(page.Items) == 0 {
			t.Errorf("%s: no failed %s", c.cluster, c.check)
		}
	}
}

// onlyCluster is src with only its one ARM cluster (no broken one).
type onlyCluster struct{ *source }

func (o *onlyCluster) Clusters(context.Context, string) ([]*posture.Cluster, error) {
	return []*posture.Cluster{o.cluster}, nil
}

func (o *onlyCluster) Kube(context.Context, *posture.Cluster) (kubernetes.Interface, error) {
	return nil, o.kubeErr
}

// legacyObjects decodes the neglected cluster's objects.
func legacyObjects(t *testing.T) []runtime.Object {
	t.Helper()
	var objs []runtime.Object
	for _, doc := range strings.Split(string(must(os.ReadFile("../../shared/posture/testdata/bad/legacy.yaml"))), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, obj)
	}
	return objs
}
