package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-sec/palisade/functions/ingestinventory"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/funchost"
	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/snapshots"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/kubeapi"
	"github.com/palisade-sec/palisade/tests/testenv"
)

func TestMain(m *testing.M) { kubeapi.Main(m) }

const cluster = "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/aks-rg/providers/Microsoft.ContainerService/managedClusters/prod-aks"

// pipeline is a real API server, the Event Hubs stand-in and
// ingestinventory behind the Functions host emulator, over one store.
type pipeline struct {
	t     *testing.T
	s     *kubeapi.Server
	kc    kubernetes.Interface
	eh    *testenv.EventHubs
	host  *funchost.Host
	st    store.Store
	snaps *snapshots.Store

	mu        sync.Mutex
	delivered int                   // events of the stand-in handed to the function
	seen      []*inventory.Envelope // what was delivered, in order
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	s := kubeapi.Shared(t)
	p := &pipeline{t: t, s: s, kc: s.Client(t), st: testenv.Store(t)}
	p.eh = testenv.StartEventHubs(t)
	p.eh.Hub = "inventory"
	p.snaps = snapshots.New(p.st, snapshots.Options{})
	srv := customhandler.NewServer(zerolog.Nop())
	srv.Handle(ingestinventory.Name, ingestinventory.New(p.st, ingestinventory.Options{}).Handle)
	p.host = testenv.Host(t, srv, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	return p
}

// config is the agent's configuration for the pipeline.
func (p *pipeline) config(name, leaseNS string) Config {
	c, err := loadConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		p.t.Fatal(err)
	}
	c.ClusterID, c.Name, c.Namespace = cluster, name, leaseNS
	c.Kubeconfig = p.s.Kubeconfig
	c.EventHubsConnectionString = p.eh.ConnectionString()
	c.FlushInterval, c.Heartbeat, c.OpsAddr = 200*time.Millisecond, 2*time.Second, ""
	c.RetryMin, c.RetryMax, c.SendTimeout = 100*time.Millisecond, time.Second, 5*time.Second
	return c
}

// start runs an agent until the returned stop is called, which waits for
// it and fails the test if it ended with an error.
func (p *pipeline) start(cfg Config) (stop func()) {
	p.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := zerolog.New(zerolog.NewTestWriter(p.t)).Level(zerolog.WarnLevel)
	go func() { done <- run(ctx, cfg, log) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				p.t.Errorf("agent %s: %v", cfg.Name, err)
			}
		})
	}
	p.t.Cleanup(stop)
	return stop
}

// pump hands the events the stand-in accepted since the last call to
// ingestinventory, in arrival order, in batches as the trigger makes them.
func (p *pipeline) pump() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	events := p.eh.Events(p.t)
	for p.delivered < len(events) {
		batch := events[p.delivered:min(len(events), p.delivered+100)]
		var ev []funchost.EventHubEvent
		for i, e := range batch {
			if len(e.BodyBytes) == 0 {
				p.t.Fatalf("event %s has no body", e.ID)
			}
			env, err := inventory.Decode(e.BodyBytes)
			if err != nil {
				p.t.Fatalf("the agent sent an undecodable message: %v", err)
			}
			if env.ID != e.ID {
				p.t.Errorf("message id %s, envelope id %s", e.ID, env.ID)
			}
			p.seen = append(p.seen, env)
			ev = append(ev, funchost.EventHubEvent{Body: e.BodyBytes, PartitionKey: e.PartitionKey, SequenceNumber: int64(p.delivered + i), EnqueuedTime: time.Now()})
		}
		pc := funchost.PartitionContext{EventHubName: "inventory", ConsumerGroup: "$Default", PartitionID: "0"}
		if _, err := p.host.DeliverEventHubs(p.t.Context(), ingestinventory.Name, pc, ev); err != nil {
			p.t.Fatalf("ingestinventory: %v", err)
		}
		p.delivered += len(batch)
	}
}

// timeout bounds every wait: generous, the machine is shared.
const timeout = 3 * time.Minute

// waitFor pumps until the cluster's latest snapshot passes check, which
// says what is still wrong ("" when nothing is).
func (p *pipeline) waitFor(what string, check func(*snapshots.Snapshot) string) *snapshots.Snapshot {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p.pump()
		snap, err := p.snaps.Latest(p.t.Context(), cluster)
		wrong := fmt.Sprint(err)
		if err == nil {
			if wrong = check(snap); wrong == "" {
				return snap
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s: %s", what, wrong)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// versions is every object's resourceVersion, by "Kind/ns/name".
func versions(o *inventory.Objects) map[string]string {
	m := map[string]string{}
	o.Each(func(kind string, meta metav1.Object, _ runtime.Object) {
		m[inventory.ResourceName(kind, meta.GetNamespace(), meta.GetName())] = meta.GetResourceVersion()
	})
	return m
}

// collect reads the objects directly, as assessposture's direct path does.
func (p *pipeline) collect() inventory.Objects {
	p.t.Helper()
	clients, err := posture.NewClients(p.s.Config())
	if err != nil {
		p.t.Fatal(err)
	}
	objs, err := posture.Collect(p.t.Context(), clients)
	if err != nil {
		p.t.Fatal(err)
	}
	return objs
}

// matchesServer waits until the latest snapshot holds exactly what the
// API server holds, version for version: every change arrived, in order.
func (p *pipeline) matchesServer(what string) *snapshots.Snapshot {
	p.t.Helper()
	return p.waitFor(what, func(s *snapshots.Snapshot) string {
		want := p.collect()
		if diff := cmp.Diff(versions(&want), versions(&s.Objects)); diff != "" {
			return "objects by resourceVersion (-server +snapshot):\n" + diff
		}
		return ""
	})
}

// noGaps checks that every generation the function completed arrived
// whole and that its changes carry every seq from 1.
func (p *pipeline) noGaps(gen int64) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	parts, seqs := map[int]bool{}, map[int64]bool{}
	count := 0
	var maxSeq int64
	for _, e := range p.seen {
		if e.Generation != gen {
			continue
		}
		switch e.Kind {
		case inventory.KindSnapshot:
			parts[e.Part] = true
			if e.Parts > 0 {
				count = e.Parts
			}
		case inventory.KindChanges:
			seqs[e.Seq] = true
			maxSeq = max(maxSeq, e.Seq)
		}
	}
	if count == 0 || len(parts) != count {
		p.t.Errorf("generation %d: parts %v of %d", gen, parts, count)
	}
	for s := int64(1); s <= maxSeq; s++ {
		if !seqs[s] {
			p.t.Errorf("generation %d: changes %d missing of 1..%d", gen, s, maxSeq)
		}
	}
}

var yes = true

func deployment(ns, name string, privileged bool) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "myacr.azurecr.io/shop/" + name + ":1",
					SecurityContext: &corev1.SecurityContext{Privileged: &privileged}}}}}}}
}

// runningPod creates a pod and writes the status a kubelet would, with the
// digest it pulled.
func (p *pipeline) runningPod(ns, name, image string, n int) {
	p.t.Helper()
	ctx := p.t.Context()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}
	created, err := p.kc.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		p.t.Fatal(err)
	}
	created.Status.Phase = corev1.PodRunning
	created.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: image, Ready: true,
		ImageID: fmt.Sprintf("%s@sha256:%064x", strings.Split(image, ":")[0], n)}}
	if _, err := p.kc.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		p.t.Fatal(err)
	}
}

// outage is how long Event Hubs is down in TestAgentStreamsTheCluster:
// 30 s (3 s with -short).
func outage() time.Duration {
	if testing.Short() {
		return 3 * time.Second
	}
	return 30 * time.Second
}

// TestAgentStreamsTheCluster: the snapshot and the changes (create, update,
// delete) reach ingestinventory complete and in order, across a restart of
// the agent and an Event Hubs outage; posture on the snapshot equals
// posture through the direct path for the same objects.
func TestAgentStreamsTheCluster(t *testing.T) {
	p := newPipeline(t)
	ctx := t.Context()
	ns := p.s.Namespace(t, map[string]string{"pod-security.kubernetes.io/enforce": "baseline"})
	mustCreate(t, func() error {
		_, err := p.kc.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "web", false), metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := p.kc.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 8080}}}}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := p.kc.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "admins"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects: []rbacv1.Subject{{Kind: "Group", Name: "devs", APIGroup: "rbac.authorization.k8s.io"}}}, metav1.CreateOptions{})
		return err
	})
	for i := range 3 {
		p.runningPod(ns, fmt.Sprintf("web-%d", i), "myacr.azurecr.io/shop/web:1", 1)
	}
	p.runningPod(ns, "debug", "docker.io/library/busybox:1.36", 2)

	// Custom resources: a Cilium policy covers the namespace, and widgets
	// no check reads are reported with their count.
	dc, err := dynamic.NewForConfig(p.s.Config())
	if err != nil {
		t.Fatal(err)
	}
	cnp := p.s.CRD(t, "cilium.io", "v2", "CiliumNetworkPolicy", "ciliumnetworkpolicies", "Namespaced")
	widgets := p.s.CRD(t, "example.com", "v1", "Widget", "widgets", "Namespaced")
	for gvr, u := range map[schema.GroupVersionResource]*unstructured.Unstructured{
		cnp:     {Object: map[string]any{"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "spec": map[string]any{"endpointSelector": map[string]any{}}}},
		widgets: {Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget", "spec": map[string]any{}}},
	} {
		u.SetNamespace(ns)
		u.SetName("one")
		mustCreate(t, func() error {
			_, err := dc.Resource(gvr).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
			return err
		})
	}

	cfg := p.config("agent-a", ns)
	cfg.OpsAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	stopA := p.start(cfg)
	first := p.matchesServer("the first snapshot")
	p.noGaps(first.Head.Generation)
	checkOps(t, cfg.OpsAddr)
	samePosture(t, first, p.collect())
	if len(first.Objects.CNIPolicies) == 0 || !slices.ContainsFunc(first.Objects.NotAssessed, func(na model.PostureNotAssessed) bool {
		return na.Kind == "Widget" && na.Count >= 1 && na.Reason == inventory.ReasonCustomResource
	}) {
		t.Errorf("snapshot: CNI policies %d, not assessed %+v", len(first.Objects.CNIPolicies), first.Objects.NotAssessed)
	}
	imgs := waitImages(t, p, 2)
	if !slices.Contains(imgs[0].Workloads, "Pod/"+ns+"/web-0") || !slices.Contains(imgs[1].Workloads, "Pod/"+ns+"/debug") {
		t.Errorf("running images %+v", imgs)
	}

	// Changes: update, create (a new image), delete.
	d, _ := p.kc.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	d.Spec.Template.Spec.Containers[0].SecurityContext.Privileged = &yes
	if _, err := p.kc.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p.runningPod(ns, "api-0", "myacr.azurecr.io/shop/api:1", 3)
	if err := p.kc.CoreV1().Pods(ns).Delete(ctx, "web-2", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, func() error {
		_, err := p.kc.NetworkingV1().NetworkPolicies(ns).Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deny-all"},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}, metav1.CreateOptions{})
		return err
	})
	changed := p.matchesServer("the changes")
	if changed.Head.Generation != first.Head.Generation || changed.Head.Changes == 0 {
		t.Errorf("changes applied to generation %d (%d changes), want %d", changed.Head.Generation, changed.Head.Changes, first.Head.Generation)
	}
	p.noGaps(first.Head.Generation)
	samePosture(t, changed, p.collect())
	waitImages(t, p, 3) // the new image is running at once

	// A restart: the new agent's first snapshot is a newer generation.
	stopA()
	mustCreate(t, func() error {
		_, err := p.kc.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "while-down"}}, metav1.CreateOptions{})
		return err
	})
	p.start(p.config("agent-b", ns))
	p.waitFor("a newer generation", func(s *snapshots.Snapshot) string {
		if s.Head.Generation <= first.Head.Generation {
			return fmt.Sprintf("generation %d", s.Head.Generation)
		}
		return ""
	})
	restarted := p.matchesServer("the restarted agent's view")
	p.noGaps(restarted.Head.Generation)

	// Event Hubs goes away; the cluster keeps changing.
	p.eh.Control(t, "/down")
	for i := range 5 {
		p.runningPod(ns, fmt.Sprintf("batch-%d", i), "myacr.azurecr.io/shop/batch:1", 10+i)
	}
	if err := p.kc.CoreV1().Pods(ns).Delete(ctx, "web-0", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(outage())
	p.eh.Control(t, "/up")
	after := p.matchesServer("the changes made during the outage")
	if after.Head.Generation != restarted.Head.Generation {
		t.Logf("a new snapshot followed the outage: generation %d", after.Head.Generation)
	}
	p.noGaps(after.Head.Generation)
	samePosture(t, after, p.collect())
	var parked []model.Parked
	store.Each(ctx, p.st, store.State, store.Query{PartitionKey: model.KindParked}, func(pk model.Parked) error { parked = append(parked, pk); return nil })
	if len(parked) != 0 {
		t.Errorf("parked: %+v", parked)
	}
}

func mustCreate(t *testing.T, create func() error) {
	t.Helper()
	if err := create(); err != nil {
		t.Fatal(err)
	}
}

// samePosture assesses the snapshot and the directly collected objects
// and wants the same results and running images.
func samePosture(t *testing.T, snap *snapshots.Snapshot, direct inventory.Objects) {
	t.Helper()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	eng := posture.NewEngine(posture.Options{TrustedRegistries: []string{"myacr.azurecr.io"}, AllowedServicePorts: []int{80, 443},
		VulnSeverity: model.SeverityHigh, ExcludedNamespaces: []string{"kube-system"}}, nil, nil, nil, nil, func() time.Time { return at })
	viaAgent, err := eng.Assess(t.Context(), &posture.Snapshot{Name: cluster, Objects: snap.Objects})
	if err != nil {
		t.Fatal(err)
	}
	viaAPI, err := eng.Assess(t.Context(), &posture.Snapshot{Name: cluster, Objects: direct})
	if err != nil {
		t.Fatal(err)
	}
	if len(viaAPI.Results) < 10 {
		t.Fatalf("only %d results", len(viaAPI.Results))
	}
	if diff := cmp.Diff(viaAPI.Results, viaAgent.Results); diff != "" {
		t.Errorf("posture through the agent differs from the direct path (-direct +agent):\n%s", diff)
	}
	if diff := cmp.Diff(viaAPI.NotAssessed, viaAgent.NotAssessed); diff != "" {
		t.Errorf("not assessed (-direct +agent):\n%s", diff)
	}
	if diff := cmp.Diff(viaAPI.RunningImages, viaAgent.RunningImages); diff != "" {
		t.Errorf("running images (-direct +agent):\n%s", diff)
	}
}

// waitImages waits for at least n running images of the cluster.
func waitImages(t *testing.T, p *pipeline, n int) []model.RunningImage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p.pump()
		var ri []model.RunningImage
		var s model.State
		if _, err := p.st.Get(t.Context(), store.State, model.KindRunningImages, model.HashID(model.KindRunningImages, cluster, "0"), &s); err == nil {
			var r model.RunningImages
			json.Unmarshal(s.Data, &r)
			ri = r.Images
		}
		if len(ri) >= n {
			return ri
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d running images, want %d", len(ri), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkOps reads the agent's health and metrics.
func checkOps(t *testing.T, addr string) {
	t.Helper()
	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s %s", path, resp.Status, b)
		}
		return string(b)
	}
	if h := get("/healthz"); !strings.Contains(h, `"leader":true`) {
		t.Errorf("healthz %s", h)
	}
	m := get("/metrics")
	for _, want := range []string{"palisade_agent_leader 1", "palisade_agent_snapshots_total 1", `palisade_agent_cached_objects{kind="Pod"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
