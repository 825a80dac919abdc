package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/palisade-sec/palisade/shared/model"
)

var at = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const cluster = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"

func pod(ns, name, image string, n int) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name, "n": fmt.Sprint(n)},
			Annotations: map[string]string{"noise": randomText(200, uint32(n+1))}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image, Args: []string{fmt.Sprintf("--instance=%d", n)}}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: image,
			ImageID: fmt.Sprintf("%s@sha256:%064x", image, n%7)}}},
	}
	SetType(p, "Pod")
	return p
}

func decodeAll(t *testing.T, msgs []Message, max int) []*Envelope {
	t.Helper()
	var out []*Envelope
	for i, m := range msgs {
		if len(m.Body) > max {
			t.Errorf("message %d is %d bytes, over %d", i, len(m.Body), max)
		}
		e, err := Decode(m.Body)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if e.ID != m.ID {
			t.Errorf("message %d: envelope id %s, message id %s", i, e.ID, m.ID)
		}
		out = append(out, e)
	}
	return out
}

func TestSnapshotPartsStayUnderTheLimitAndCarryEverything(t *testing.T) {
	const max = 8192
	b, err := NewBuilder(Envelope{Kind: KindSnapshot, Cluster: cluster, Agent: "agent-0", Time: at, Generation: 7_000_001}, max)
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}}}
	SetType(ns, "Namespace")
	if err := b.Add("Namespace", ns); err != nil {
		t.Fatal(err)
	}
	var want Objects
	want.Add(ns.DeepCopy())
	for i := range 300 {
		p := pod("shop", fmt.Sprintf("web-%03d", i), "myacr.azurecr.io/shop/web", i)
		if err := b.Add("Pod", p); err != nil {
			t.Fatal(err)
		}
		want.Add(p.DeepCopy())
	}
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "reader"}, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, Resources: []string{"pods"}, APIGroups: []string{""}}}}
	SetType(cr, "ClusterRole")
	if err := b.Add("ClusterRole", cr); err != nil {
		t.Fatal(err)
	}
	want.Add(cr.DeepCopy())
	msgs, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 3 {
		t.Fatalf("%d parts; the test wants several", len(msgs))
	}
	var got Objects
	for i, e := range decodeAll(t, msgs, max) {
		if e.Kind != KindSnapshot || e.Generation != 7_000_001 || e.Part != i || e.Cluster != cluster || !e.Time.Equal(at) {
			t.Errorf("part %d header %+v", i, e)
		}
		if last := i == len(msgs)-1; (e.Parts != 0) != last || last && e.Parts != len(msgs) {
			t.Errorf("part %d of %d says parts %d", i, len(msgs), e.Parts)
		}
		got.Apply(e.Objects, nil)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("objects across the parts (-want +got):\n%s", diff)
	}
	if msgs[0].ID != MessageID(cluster, KindSnapshot, 7_000_001, 0) {
		t.Error("part 0 id is not deterministic")
	}
}

func TestEmptySnapshotIsOnePart(t *testing.T) {
	b, _ := NewBuilder(Envelope{Kind: KindSnapshot, Cluster: cluster, Time: at, Generation: 1}, 0)
	msgs, err := b.Finish()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
	e := decodeAll(t, msgs, DefaultMaxBytes)[0]
	if e.Parts != 1 || e.Objects != nil {
		t.Errorf("%+v", e)
	}
}

func TestChangesAndDeletesApply(t *testing.T) {
	var base Objects
	for i := range 5 {
		base.Add(pod("shop", fmt.Sprintf("web-%d", i), "web", i))
	}
	b, err := NewBuilder(Envelope{Kind: KindChanges, Cluster: cluster, Time: at, Generation: 3, Seq: 10}, 4096)
	if err != nil {
		t.Fatal(err)
	}
	changed := pod("shop", "web-1", "web:v2", 1)
	added := pod("shop", "web-9", "web", 9)
	for _, p := range []*corev1.Pod{changed, added} {
		if err := b.Add("Pod", p); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 { // enough refs to need a second message
		if err := b.Delete(Ref{Kind: "Pod", Namespace: "shop", Name: fmt.Sprintf("web-%d-%s", i, randomText(40, uint32(i)))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete(Ref{Kind: "Pod", Namespace: "shop", Name: "web-3"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Add("Pod", added); err == nil {
		t.Error("Add after Delete accepted")
	}
	msgs, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 2 {
		t.Fatalf("%d messages; the test wants several", len(msgs))
	}
	for i, e := range decodeAll(t, msgs, 4096) {
		if e.Kind != KindChanges || e.Seq != 10+int64(i) || e.Generation != 3 {
			t.Errorf("message %d header %+v", i, e)
		}
		if e.Objects == nil {
			e.Objects = &Objects{}
		}
		base.Apply(e.Objects, e.Deleted)
	}
	var names []string
	for _, p := range base.Pods {
		names = append(names, p.Name+"="+p.Spec.Containers[0].Image)
	}
	want := []string{"web-0=web", "web-1=web:v2", "web-2=web", "web-4=web", "web-9=web"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("pods after changes (-want +got):\n%s", diff)
	}
}

func TestObjectLargerThanAMessage(t *testing.T) {
	huge := pod("shop", "huge", "web", 1)
	huge.Annotations = map[string]string{"blob": randomText(20000, 7)}
	b, _ := NewBuilder(Envelope{Kind: KindSnapshot, Cluster: cluster, Time: at, Generation: 1}, 8192)
	if err := b.Add("Pod", pod("shop", "small", "web", 2)); err != nil {
		t.Fatal(err)
	}
	if err := b.Add("Pod", huge); err != nil {
		t.Fatal(err)
	}
	msgs, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	envs := decodeAll(t, msgs, 8192)
	last := envs[len(envs)-1]
	if diff := cmp.Diff([]Ref{{Kind: "Pod", Namespace: "shop", Name: "huge"}}, last.Skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	c, _ := NewBuilder(Envelope{Kind: KindChanges, Cluster: cluster, Time: at, Generation: 1, Seq: 1}, 8192)
	if err := c.Add("Pod", huge); err == nil {
		t.Error("changes took an object larger than a message")
	}
}

// randomText is n characters that compress poorly, the same for a seed.
func randomText(n int, seed uint32) string {
	var b strings.Builder
	x := seed*2654435761 + 1
	for b.Len() < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789"[x%36])
	}
	return b.String()
}

func gz(s string) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write([]byte(s))
	w.Close()
	return buf.Bytes()
}

func TestDecodeRefusesWhatIsWrong(t *testing.T) {
	ok := `"v":1,"id":"m1","cluster":"c1","time":"2026-03-01T12:00:00Z"`
	tests := map[string]struct {
		body []byte
		want string
	}{
		"not json":             {[]byte("{"), "not an inventory envelope"},
		"bad gzip":             {[]byte{0x1f, 0x8b, 1, 2, 3}, "gzip"},
		"version 2":            {[]byte(`{"v":2,"kind":"snapshot","id":"m","cluster":"c","time":"2026-03-01T12:00:00Z"}`), "version 2"},
		"no kind":              {[]byte(`{` + ok + `}`), "no kind"},
		"no cluster":           {[]byte(`{"v":1,"kind":"heartbeat","id":"m","time":"2026-03-01T12:00:00Z"}`), "no cluster"},
		"no time":              {[]byte(`{"v":1,"kind":"heartbeat","id":"m","cluster":"c"}`), "no time"},
		"snapshot no gen":      {[]byte(`{` + ok + `,"kind":"snapshot"}`), "generation 0"},
		"parts not on last":    {[]byte(`{` + ok + `,"kind":"snapshot","generation":1,"part":0,"parts":3}`), "only the last part"},
		"changes no seq":       {[]byte(`{` + ok + `,"kind":"changes","generation":1}`), "seq from 1"},
		"pod with no ns":       {[]byte(`{` + ok + `,"kind":"snapshot","generation":1,"objects":{"pods":[{"metadata":{"name":"p"}}]}}`), "Pod p with no namespace"},
		"deleted bad kind":     {[]byte(`{` + ok + `,"kind":"changes","generation":1,"seq":1,"deleted":[{"kind":"Secret","namespace":"a","name":"b"}]}`), `unknown kind "Secret"`},
		"empty remediation":    {[]byte(`{` + ok + `,"kind":"remediation"}`), "reports nothing"},
		"too large":            {bytes.Repeat([]byte(" "), MaxMessageBytes+1), "larger than"},
		"decompression bomb":   {gz(`{"v":1,"kind":"heartbeat","pad":"` + strings.Repeat("a", MaxDecodedBytes) + `"}`), "decompresses to more than"},
		"namespaced ns":        {[]byte(`{` + ok + `,"kind":"snapshot","generation":1,"objects":{"namespaces":[{"metadata":{"name":"a","namespace":"b"}}]}}`), "cluster-scoped Namespace a"},
		"object not an object": {[]byte(`{` + ok + `,"kind":"snapshot","generation":1,"objects":{"pods":[1]}}`), "not an inventory envelope"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(tt.body)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrInvalid naming %q", err, tt.want)
			}
		})
	}
	// A kind this version does not know decodes, for the caller to set aside.
	e, err := Decode(gz(`{` + ok + `,"kind":"future-kind","decision":{"allowed":false}}`))
	if err != nil || e.Kind != "future-kind" {
		t.Errorf("unknown kind: %+v %v", e, err)
	}
}

func TestEncodeOneMessage(t *testing.T) {
	rem := model.Remediation{ResultID: "r1", Cluster: cluster, CheckID: "privileged-containers", Resource: "DaemonSet/legacy/agent", DryRun: true, At: at}
	m, err := Encode(Envelope{Kind: KindRemediation, ID: "rem-1", Cluster: cluster, Time: at, Remediations: []model.Remediation{rem}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Decode(m.Body)
	if err != nil || m.ID != "rem-1" || len(e.Remediations) != 1 || e.Remediations[0] != rem {
		t.Errorf("%+v %v", e, err)
	}
	if _, err := Encode(Envelope{Kind: KindHeartbeat, ID: "h", Cluster: randomText(20000, 7), Time: at}, 4096); err == nil {
		t.Error("oversized message encoded")
	}
}

func TestRunningImagesResolveOwners(t *testing.T) {
	yes := true
	var o Objects
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-5d8f",
		OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web", Controller: &yes}}}}
	o.Add(rs)
	p := pod("shop", "web-5d8f-abcde", "myacr.azurecr.io/shop/web:1", 1)
	p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-5d8f", Controller: &yes}}
	o.Add(p)
	bare := pod("shop", "debug", "myacr.azurecr.io/shop/web:1", 8) // same digest as p (8 % 7 == 1)
	bare.Status.InitContainerStatuses = []corev1.ContainerStatus{{Image: "busybox", ImageID: "docker.io/library/busybox:latest"}}
	o.Add(bare)
	got := RunningImages(&o)
	want := []model.RunningImage{{Digest: fmt.Sprintf("sha256:%064x", 1), Image: "myacr.azurecr.io/shop/web:1",
		Workloads: []string{"Deployment/shop/web", "Pod/shop/debug"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("running images (-want +got):\n%s", diff)
	}
}

// TestKindsAgree: every kind of Kinds is an Objects field of that JSON name,
// known to KindOf and Add, and carried in order by Each.
func TestKindsAgree(t *testing.T) {
	var o Objects
	var want []string
	for _, k := range Kinds {
		obj, err := scheme.Scheme.New(k.GroupVersion.WithKind(k.Name))
		if err != nil {
			t.Fatalf("%s: %v", k.Name, err)
		}
		if got := KindOf(obj); got != k.Name {
			t.Errorf("KindOf(%T) = %q, want %s", obj, got, k.Name)
		}
		if !o.Add(obj) {
			t.Errorf("Add refuses %s", k.Name)
		}
		want = append(want, k.Name)
	}
	var got []string
	o.Each(func(kind string, _ metav1.Object, obj runtime.Object) {
		got = append(got, kind)
		if obj.GetObjectKind().GroupVersionKind().Kind != kind {
			t.Errorf("%s without its kind set", kind)
		}
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Each order (-want +got):\n%s", diff)
	}
	raw, _ := json.Marshal(o)
	var fields map[string]json.RawMessage
	json.Unmarshal(raw, &fields)
	for _, k := range Kinds {
		if _, ok := fields[k.Field]; !ok {
			t.Errorf("no JSON field %q for %s in %s", k.Field, k.Name, raw)
		}
	}
	// Beside the kinds: CNI policies, other objects, what is not assessed.
	if len(fields) != len(Kinds) || reflect.TypeOf(o).NumField() != len(Kinds)+3 {
		t.Errorf("%d fields, %d kinds", len(fields), len(Kinds))
	}
}

// TestSnapshotCarriesCNIPoliciesAndNotAssessed: what the informers do not
// hold travels in the snapshot, and only there; anything else in those
// lists is refused.
func TestSnapshotCarriesCNIPoliciesAndNotAssessed(t *testing.T) {
	cnp := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
		"metadata": map[string]any{"namespace": "shop", "name": "deny"}, "spec": map[string]any{"endpointSelector": map[string]any{}}}}
	widget := model.PostureNotAssessed{Kind: "Widget", APIVersion: "example.com/v1", Source: "cluster", Count: 2, Reason: ReasonCustomResource}
	b, err := NewBuilder(Envelope{Kind: KindSnapshot, Cluster: cluster, Time: at, Generation: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Add("Pod", pod("shop", "web", "web", 1)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddCNIPolicy(cnp); err != nil {
		t.Fatal(err)
	}
	if err := b.AddNotAssessed(widget); err != nil {
		t.Fatal(err)
	}
	bad := cnp.DeepCopy()
	bad.SetKind("Widget")
	if err := b.AddCNIPolicy(bad); err == nil {
		t.Error("a Widget was taken as a CNI policy")
	}
	msgs, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	envs := decodeAll(t, msgs, DefaultMaxBytes)
	var o Objects
	for _, e := range envs {
		o.Apply(e.Objects, nil)
	}
	if len(o.Pods) != 1 || len(o.CNIPolicies) != 1 || o.CNIPolicies[0].GetName() != "deny" ||
		!reflect.DeepEqual(o.NotAssessed, []model.PostureNotAssessed{widget}) || o.Count() != 2 {
		t.Errorf("decoded %d pods, CNI policies %+v, not assessed %+v", len(o.Pods), o.CNIPolicies, o.NotAssessed)
	}

	c, _ := NewBuilder(Envelope{Kind: KindChanges, Cluster: cluster, Time: at, Generation: 1, Seq: 1}, 0)
	if c.AddCNIPolicy(cnp) == nil || c.AddNotAssessed(widget) == nil {
		t.Error("changes carry CNI policies or not-assessed entries")
	}
	for name, objects := range map[string]string{
		"not a CNI kind": `{"cniPolicies":[{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"}}]}`,
		"other objects":  `{"other":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"x"}}]}`,
		"changes":        `{"notAssessed":[{"kind":"Widget","reason":"x"}]}`,
	} {
		kind := `"snapshot","generation":1,"parts":1`
		if name == "changes" {
			kind = `"changes","generation":1,"seq":1`
		}
		raw := `{"v":1,"kind":` + kind + `,"id":"x","cluster":"c","time":"2026-03-01T12:00:00Z","objects":` + objects + `}`
		if _, err := Decode([]byte(raw)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
