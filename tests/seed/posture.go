package seed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
)

// runs are the assessments of each cluster, oldest first: a history over
// the last days, the workloads getting better over time.
var runs = []time.Duration{-72 * time.Hour, -48 * time.Hour, -24 * time.Hour, -6 * time.Hour, -time.Hour}

func (s *seeder) posture(ctx context.Context) error {
	legacy, err := posture.LoadManifestDir(filepath.Join(s.root, "shared", "posture", "testdata", "bad"), posture.ManifestOptions{})
	if err != nil {
		return err
	}
	armFiles := []string{"cluster-weak.json", "cluster-hardened.json"}
	opts := posture.Options{TrustedRegistries: []string{"contoso.azurecr.io"}, AllowedServicePorts: []int{80, 443},
		AllowedAppArmorProfiles: []string{"runtime/default"}, MinKubernetesVersion: "1.30", ExcludedNamespaces: []string{"kube-system"},
		VulnSeverity: model.SeverityHigh}
	ws := s.workloads()
	rec := &posture.Recorder{Store: s.st}
	for ci, cl := range s.o.Clusters {
		b, err := os.ReadFile(filepath.Join(s.root, "shared", "posture", "testdata", "arm", armFiles[ci%len(armFiles)]))
		if err != nil {
			return err
		}
		arm, err := posture.DecodeCluster(b)
		if err != nil {
			return err
		}
		exemptions := []posture.Exemption{{Name: "legacy-agent", Check: "*", Cluster: cl, Namespace: "legacy", Reason: "Vendor agent; replacement planned for Q3 (CHG-4211).",
			Expires: s.o.Now.Add(30 * 24 * time.Hour)}}
		for ri, ago := range runs {
			at := s.o.Now.Add(ago)
			objs := legacy
			var mine []runtime.Object
			namespaces := map[string]bool{}
			for wi, w := range ws {
				if w.cluster != cl {
					continue
				}
				if !namespaces[w.namespace] {
					namespaces[w.namespace] = true
					mine = append(mine, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.namespace}})
				}
				// Later runs fix the workloads one by one.
				mine = append(mine, s.deployment(w, wi%len(runs) < ri)...)
			}
			var generated posture.Objects
			for _, obj := range mine {
				generated.Add(obj)
			}
			objs = merge(objs, generated)
			snap := &posture.Snapshot{Name: cl, Cluster: arm, Objects: objs}
			var ex []posture.Exemption
			if ri > 0 {
				ex = exemptions
			}
			eng := posture.NewEngine(opts, nil, nil, ex, posture.StoreVulns{Store: s.st}, func() time.Time { return at })
			rep, err := eng.Assess(ctx, snap)
			if err != nil {
				return err
			}
			if _, err := rec.Record(ctx, rep); err != nil {
				return err
			}
			if ri == len(runs)-1 {
				if err := s.remediate(ctx, rep, mine, at); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// remediate records a dry run of the privileged-containers fix, against a
// fake API server holding the cluster's objects.
func (s *seeder) remediate(ctx context.Context, rep *posture.Report, objs []runtime.Object, at time.Time) error {
	cs := fake.NewClientset(objs...)
	cs.PrependReactor("patch", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		p := a.(clienttesting.PatchActionImpl)
		obj, err := cs.Tracker().Get(a.GetResource(), a.GetNamespace(), p.Name)
		return true, obj, err
	})
	rm := &posture.Remediator{Client: cs, Store: s.st, Checks: []string{"privileged-containers", "resource-limits"}, Now: func() time.Time { return at }}
	_, err := rm.Remediate(ctx, rep)
	return err
}

func merge(a, b posture.Objects) posture.Objects {
	a.Namespaces = append(append([]corev1.Namespace(nil), a.Namespaces...), b.Namespaces...)
	a.Pods = append(append([]corev1.Pod(nil), a.Pods...), b.Pods...)
	a.Deployments = append(append([]appsv1.Deployment(nil), a.Deployments...), b.Deployments...)
	a.ReplicaSets = append(append([]appsv1.ReplicaSet(nil), a.ReplicaSets...), b.ReplicaSets...)
	return a
}

// deployment is a workload's Deployment, ReplicaSet and running Pod, whose
// status names the image digest the node pulled.
func (s *seeder) deployment(w workload, hardened bool) []runtime.Object {
	labels := map[string]string{"app": w.name}
	ref := fmt.Sprintf("%s/%s:%s", w.img.Registry, w.img.Repository, firstTag(w.img))
	c := corev1.Container{Name: "app", Image: ref, Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}
	if hardened {
		no, yes := false, true
		c.SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: &no, RunAsNonRoot: &yes, ReadOnlyRootFilesystem: &yes,
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}}
		c.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")}}
	} else if w.img.Digest[len(w.img.Digest)-1]%3 == 0 {
		yes := true
		c.SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	}
	spec := corev1.PodSpec{Containers: []corev1.Container{c}, ServiceAccountName: "default"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: w.name, Namespace: w.namespace, UID: uid("d", w), Labels: labels},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}}
	yes := true
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: w.name + "-7d4b9c8f5", Namespace: w.namespace, UID: uid("r", w), Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: w.name, UID: dep.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: dep.Spec.Template}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: rs.Name + "-x2x7q", Namespace: w.namespace, UID: uid("p", w), Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}},
		Spec:   spec,
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: ref, ImageID: ref + "@" + w.img.Digest, Ready: true}}}}
	return []runtime.Object{dep, rs, pod}
}

func uid(kind string, w workload) types.UID {
	return types.UID(model.HashID(kind, w.cluster, w.namespace, w.name))
}

func firstTag(img model.Image) string {
	if len(img.Tags) > 0 {
		return img.Tags[0]
	}
	return "latest"
}
