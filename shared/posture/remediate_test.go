package posture

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/kubeapi"
)

// legacyDaemonSet creates testdata/bad's privileged DaemonSet in namespace
// ns of the real API server and returns it as the server stored it.
func legacyDaemonSet(t *testing.T, s *kubeapi.Server, ns string) *appsv1.DaemonSet {
	t.Helper()
	for _, obj := range readObjects(t, "testdata/bad") {
		ds, ok := obj.(*appsv1.DaemonSet)
		if !ok || ds.Name != "node-agent" {
			continue
		}
		ds.Namespace = ns
		got, err := s.Client(t).AppsV1().DaemonSets(ns).Create(t.Context(), ds, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create %s/%s: %v", ns, ds.Name, err)
		}
		return got
	}
	t.Fatal("no node-agent DaemonSet in testdata/bad")
	return nil
}

// TestRemediationThroughServerSideApply remediates a privileged DaemonSet
// in a real API server: the dry run validates and admits the patch without
// changing anything, the apply changes exactly the patched field under
// Palisade's field manager, and a patch of an object deleted since the
// assessment fails its dry run instead of creating it.
func TestRemediationThroughServerSideApply(t *testing.T) {
	s := kubeapi.Shared(t)
	kc := s.Client(t)
	for _, apply := range []bool{false, true} {
		t.Run(map[bool]string{false: "dry-run", true: "apply"}[apply], func(t *testing.T) {
			ns := s.Namespace(t, nil)
			created := legacyDaemonSet(t, s, ns)
			var snap Snapshot
			snap.Name = "aks-1"
			snap.Objects.Add(created)
			rep, err := NewEngine(testConfig(t, ""), nil, nil, nil, nil, clock).Assess(t.Context(), &snap)
			if err != nil {
				t.Fatal(err)
			}
			st := newTestStore(t)
			rm := &Remediator{Client: kc, Store: st, Checks: []string{"privileged-containers"}, Apply: apply, Now: clock}
			done, err := rm.Remediate(t.Context(), rep)
			if err != nil {
				t.Fatal(err)
			}
			if len(done) != 1 || done[0].Resource != "DaemonSet/"+ns+"/node-agent" || done[0].Error != "" || done[0].Applied != apply || done[0].DryRun == apply {
				t.Fatalf("remediations %+v", done)
			}
			ds, err := kc.AppsV1().DaemonSets(ns).Get(t.Context(), "node-agent", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c := ds.Spec.Template.Spec.Containers[0]
			if priv := *c.SecurityContext.Privileged; priv == apply {
				t.Errorf("privileged is %v after remediation with apply=%v", priv, apply)
			}
			if c.Image != created.Spec.Template.Spec.Containers[0].Image || !*c.SecurityContext.AllowPrivilegeEscalation {
				t.Errorf("remediation changed other fields: %+v", c)
			}
			managers := []string{}
			for _, mf := range ds.ManagedFields {
				managers = append(managers, mf.Manager)
			}
			if slices.Contains(managers, FieldManager) != apply {
				t.Errorf("field managers %v with apply=%v", managers, apply)
			}
			if (ds.Generation != created.Generation) != apply {
				t.Errorf("generation %d -> %d with apply=%v", created.Generation, ds.Generation, apply)
			}
			if got := st.count(store.State); got != 1 {
				t.Errorf("%d remediation records, want 1", got)
			}

			// The object goes away before the next remediation: the dry
			// run is refused and nothing is created.
			if err := kc.AppsV1().DaemonSets(ns).Delete(t.Context(), "node-agent", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			rm.Checks = []string{"host-namespaces"}
			done, err = rm.Remediate(t.Context(), rep)
			if err != nil {
				t.Fatal(err)
			}
			if len(done) != 1 || done[0].Applied || !strings.Contains(done[0].Error, "dry-run apply daemonset") {
				t.Fatalf("remediation of a deleted object: %+v", done)
			}
			if _, err := kc.AppsV1().DaemonSets(ns).Get(t.Context(), "node-agent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the deleted DaemonSet is back: %v", err)
			}
			var recs []model.Remediation
			_ = store.Each(t.Context(), st, store.State, store.Query{PartitionKey: model.KindRemediation}, func(s model.State) error {
				var r model.Remediation
				if err := json.Unmarshal(s.Data, &r); err != nil {
					return err
				}
				recs = append(recs, r)
				return nil
			})
			if len(recs) != 2 {
				t.Errorf("%d records, want 2", len(recs))
			}
		})
	}
}
