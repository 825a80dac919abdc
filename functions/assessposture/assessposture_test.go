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
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
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
	fn := New(st, src, Options{
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
