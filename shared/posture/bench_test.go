package posture

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-sec/palisade/shared/store/embedded"
)

// bigSnapshot builds a 5,000-pod cluster: 1,000 deployments of 4 replicas
// and 1,000 bare pods over 100 namespaces, with services, RBAC and network
// policies.
func bigSnapshot() *Snapshot {
	var o Objects
	yes := true
	ctrl := func(kind, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, Controller: &yes}}
	}
	spec := func(i int) corev1.PodSpec {
		s := corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: fmt.Sprintf("myacr.azurecr.io/team%d/app:1.%d", i%20, i%7),
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")}},
			Env: []corev1.EnvVar{{Name: "MODE", Value: "prod"}},
		}, {Name: "sidecar", Image: "mcr.microsoft.com/oss/envoyproxy/envoy:v1.30.1"}}}
		if i%3 == 0 {
			s.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: new(bool), RunAsNonRoot: &yes}
		}
		return s
	}
	for n := range 100 {
		ns := fmt.Sprintf("team-%03d", n)
		o.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"team": ns}}})
		o.Add(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}})
		o.Add(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}})
		if n%2 == 0 {
			o.Add(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny", Namespace: ns}})
		}
		for r := range 5 {
			o.Add(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("role-%d", r), Namespace: ns},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "configmaps", "secrets"}, Verbs: []string{"get", "list"}}}})
		}
		for r := range 10 {
			o.Add(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rb-%d", r), Namespace: ns},
				Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "app", Namespace: ns}},
				RoleRef:  rbacv1.RoleRef{Kind: "Role", Name: fmt.Sprintf("role-%d", r%5)}})
		}
		for d := range 10 {
			i := n*10 + d
			name := fmt.Sprintf("app-%d", d)
			o.Add(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
				Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: spec(i)}}})
			rs := name + "-5d8f7"
			o.Add(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: rs, Namespace: ns, OwnerReferences: ctrl("Deployment", name)},
				Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: spec(i)}}})
			for p := range 4 {
				o.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", rs, p), Namespace: ns, OwnerReferences: ctrl("ReplicaSet", rs)},
					Spec: spec(i), Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app",
						ImageID: fmt.Sprintf("myacr.azurecr.io/team%d/app@sha256:%064x", i%20, i%200)}}}})
			}
			o.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("job-%d", d), Namespace: ns},
				Spec: spec(i + 1)})
			for s := range 2 {
				o.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", name, s), Namespace: ns},
					Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: int32(443 + s*7637), Protocol: corev1.ProtocolTCP}}}})
			}
		}
	}
	return &Snapshot{Name: "bench", Objects: o}
}

// BenchmarkAssess5000Pods assesses a 5,000-pod snapshot with the built-in
// checks and three Rego policies (prepared once, outside the loop, as in a
// run).
func BenchmarkAssess5000Pods(b *testing.B) {
	snap := bigSnapshot()
	if n := len(snap.Objects.Pods); n != 5000 {
		b.Fatalf("%d pods", n)
	}
	cfg := testConfig(b, "testdata/policies")
	eng, err := LoadEngine(b.Context(), cfg, nil, clock)
	if err != nil || len(eng.Policies()) != 3 {
		b.Fatalf("engine: %v", err)
	}
	var results int
	b.ReportAllocs()
	for b.Loop() {
		rep, err := eng.Assess(b.Context(), snap)
		if err != nil {
			b.Fatal(err)
		}
		results = len(rep.Results)
	}
	b.ReportMetric(float64(results), "results/op")
	b.ReportMetric(float64(snap.Objects.Count()), "objects")
}

// BenchmarkRecord5000Pods records the assessment of the 5,000-pod cluster
// again and again, nothing having changed, and reports the store writes of
// each run: every-result rewrites every result each run (what the Recorder
// did before, reproduced with a refresh on every run), changed-only writes
// what changed plus the daily refresh (a fresh store item lasts a day).
func BenchmarkRecord5000Pods(b *testing.B) {
	snap := bigSnapshot()
	eng := NewEngine(testConfig(b, ""), nil, nil, nil, nil, clock)
	rep, err := eng.Assess(b.Context(), snap)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name    string
		refresh time.Duration
	}{{"every-result", time.Nanosecond}, {"changed-only", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			st, err := embedded.OpenWith(filepath.Join(b.TempDir(), "palisade.db"), embedded.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			cs := &countingStore{Store: st}
			rc := &Recorder{Store: cs, RefreshEvery: bc.refresh}
			if _, err := rc.Record(b.Context(), rep); err != nil { // the first run writes everything
				b.Fatal(err)
			}
			first, _ := cs.reset()
			runs := 0
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				runs++
				rep.At = testNow.Add(time.Duration(runs) * time.Second)
				if _, err := rc.Record(b.Context(), rep); err != nil {
					b.Fatal(err)
				}
			}
			writes, _ := cs.reset()
			b.ReportMetric(float64(first), "writes/first-run")
			b.ReportMetric(float64(writes)/float64(runs), "writes/run")
			b.ReportMetric(float64(len(rep.Results)), "results/run")
			b.ReportMetric(float64((cpuTime(b)-cpu0).Milliseconds())/float64(runs), "cpu-ms/run")
		})
	}
}

// cpuTime is the process's user+system CPU time so far: the machine is
// shared, so CPU time shows the cost regardless of what else runs.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
