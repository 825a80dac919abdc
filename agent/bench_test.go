package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/palisade-sec/palisade/shared/inventory/inventorytest"
	"github.com/palisade-sec/palisade/tests/kubeapi"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// BenchmarkAgent5000Pods runs the palisade-agent binary against a real API
// server holding a 5,000-pod cluster (inventorytest.Cluster: 1,000
// Deployments and ReplicaSets, 2,000 Services, RBAC, about 10,900 objects)
// and the Event Hubs stand-in, and reports, from the agent process itself:
// the time from start to its first snapshot queued (list, sync, encode;
// sync-s) and the encoding alone (snapshot-s), the snapshot's compressed
// size, and then, over 30 s of 10 changes a second, its CPU use as a
// share of one core (from /proc, so other load on the machine does not
// count) and its resident memory (rss-MB, peak-rss-MB).
func BenchmarkAgent5000Pods(b *testing.B) {
	s := kubeapi.Shared(b)
	kc := s.Client(b)
	populate(b, kc)
	eh := testenv.StartEventHubs(b)
	eh.Hub = "inventory"
	bin := filepath.Join(b.TempDir(), "palisade-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build the agent: %v\n%s", err, out)
	}
	for b.Loop() {
		measureAgent(b, s, kc, bin, eh.ConnectionString())
	}
}

// measureAgent starts the agent and measures it.
func measureAgent(b *testing.B, s *kubeapi.Server, kc kubernetes.Interface, bin, conn string) {
	ops := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"PALISADE_AGENT_CLUSTER_ID="+cluster, "PALISADE_AGENT_NAME=bench", "PALISADE_AGENT_KUBECONFIG="+s.Kubeconfig,
		"PALISADE_AGENT_EVENTHUBS_CONNECTION_STRING="+conn, "PALISADE_AGENT_OPS_ADDR="+ops,
		"PALISADE_AGENT_LEADER_ELECTION=false", "PALISADE_AGENT_LOG_LEVEL=warn")
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var m map[string]float64
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("no snapshot within 5 minutes")
		}
		if m = scrape(ops); m["palisade_agent_snapshots_total"] >= 1 {
			break
		}
	}
	syncWall := time.Since(start)
	if n := m[`palisade_agent_cached_objects{kind="Pod"}`]; n < 5000 {
		b.Fatalf("the agent holds %v pods", n)
	}

	// Steady state: 10 changes a second, spread over the pods.
	const window = 30 * time.Second
	pods, err := kc.CoreV1().Pods("").List(b.Context(), metav1.ListOptions{Limit: 500})
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(5 * time.Second) // let the first snapshot's sending settle
	cpu0 := procCPU(b, cmd.Process.Pid)
	t0 := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	for i := 0; time.Since(t0) < window; i++ {
		<-tick.C
		p := pods.Items[i%len(pods.Items)]
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"bench/seq":"%d"}}}`, i)
		if _, err := kc.CoreV1().Pods(p.Namespace).Patch(b.Context(), p.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	cpu := procCPU(b, cmd.Process.Pid) - cpu0
	wall := time.Since(t0)
	rss, peak := procMem(b, cmd.Process.Pid)
	m = scrape(ops)
	if m["palisade_agent_changes_total"] == 0 {
		b.Error("no changes sent during the steady state")
	}
	b.ReportMetric(syncWall.Seconds(), "sync-s")
	b.ReportMetric(m["palisade_agent_snapshot_seconds"], "snapshot-s")
	b.ReportMetric(m["palisade_agent_snapshot_bytes"]/1e6, "snapshot-MB")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "steady-cpu-%")
	b.ReportMetric(rss/1024, "rss-MB")
	b.ReportMetric(peak/1024, "peak-rss-MB")
}

// populate creates inventorytest.Cluster's objects in the server (once a
// server: a second run finds them there), pods with their status.
func populate(b *testing.B, kc kubernetes.Interface) {
	ctx := b.Context()
	if _, err := kc.CoreV1().Namespaces().Get(ctx, "team-000", metav1.GetOptions{}); err == nil {
		return
	}
	o := inventorytest.Cluster()
	// Namespaces first, then the rest from a few workers.
	for i := range o.Namespaces {
		if _, err := kc.CoreV1().Namespaces().Create(ctx, &o.Namespaces[i], metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	work := make(chan runtime.Object)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 8 {
		wg.Go(func() {
			for obj := range work {
				if err := create(ctx, kc, obj); err != nil && !apierrors.IsAlreadyExists(err) {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	o.Each(func(kind string, _ metav1.Object, obj runtime.Object) {
		if kind != "Namespace" {
			work <- obj
		}
	})
	close(work)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// create creates one object of the benchmark cluster; a pod's status is
// written after it, as a kubelet would.
func create(ctx context.Context, kc kubernetes.Interface, obj runtime.Object) error {
	opts := metav1.CreateOptions{}
	if m, ok := obj.(metav1.Object); ok {
		refs := m.GetOwnerReferences()
		for i := range refs {
			refs[i].UID = types.UID("bench-" + refs[i].Name) // no garbage collector runs
		}
		m.SetOwnerReferences(refs)
	}
	var err error
	switch v := obj.(type) {
	case *corev1.Pod:
		st := v.Status
		var p *corev1.Pod
		if p, err = kc.CoreV1().Pods(v.Namespace).Create(ctx, v, opts); err == nil && len(st.ContainerStatuses) > 0 {
			p.Status = st
			p.Status.Phase = corev1.PodRunning
			for i := range p.Status.ContainerStatuses {
				cs := &p.Status.ContainerStatuses[i]
				cs.Image, cs.Ready = p.Spec.Containers[0].Image, true
			}
			_, err = kc.CoreV1().Pods(v.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		}
	case *corev1.Service:
		v.Spec.ClusterIP = corev1.ClusterIPNone
		_, err = kc.CoreV1().Services(v.Namespace).Create(ctx, v, opts)
	case *corev1.ServiceAccount:
		_, err = kc.CoreV1().ServiceAccounts(v.Namespace).Create(ctx, v, opts)
	default:
		err = createTyped(ctx, kc, obj)
	}
	return err
}

// createTyped creates the other kinds, completing what the API server
// requires and posture does not read (selectors, role references' group).
func createTyped(ctx context.Context, kc kubernetes.Interface, obj runtime.Object) error {
	opts := metav1.CreateOptions{}
	var err error
	switch v := obj.(type) {
	case *appsv1.Deployment:
		v.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": v.Name}}
		v.Spec.Template.Labels = map[string]string{"app": v.Name}
		_, err = kc.AppsV1().Deployments(v.Namespace).Create(ctx, v, opts)
	case *appsv1.ReplicaSet:
		app := strings.TrimSuffix(v.Name, "-5d8f7")
		v.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
		v.Spec.Template.Labels = map[string]string{"app": app}
		_, err = kc.AppsV1().ReplicaSets(v.Namespace).Create(ctx, v, opts)
	case *networkingv1.NetworkPolicy:
		_, err = kc.NetworkingV1().NetworkPolicies(v.Namespace).Create(ctx, v, opts)
	case *rbacv1.Role:
		_, err = kc.RbacV1().Roles(v.Namespace).Create(ctx, v, opts)
	case *rbacv1.RoleBinding:
		v.RoleRef.APIGroup = rbacv1.GroupName
		_, err = kc.RbacV1().RoleBindings(v.Namespace).Create(ctx, v, opts)
	default:
		err = fmt.Errorf("benchmark cluster: no create for %T", obj)
	}
	return err
}

// scrape reads the agent's /metrics into name{labels} -> value (empty
// while it does not answer).
func scrape(addr string) map[string]float64 {
	m := map[string]float64{}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// procCPU is a process's user+system CPU time (/proc/PID/stat, in clock
// ticks of 1/100 s).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 14th and 15th fields of the line.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procMem returns a process's resident set and its peak, in KiB.
func procMem(b *testing.B, pid int) (rss, peak float64) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			peak = n
		}
	}
	return rss, peak
}
