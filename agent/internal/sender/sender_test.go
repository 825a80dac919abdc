package sender

import (
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/palisade-sec/palisade/agent/internal/cache"
	"github.com/palisade-sec/palisade/shared/ehsink/queue"
	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/model"
)

// drain takes every queued message and decodes it.
func drain(t *testing.T, q *queue.Queue) []*inventory.Envelope {
	t.Helper()
	items, err := q.Take(1000, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	q.Ack(items)
	var out []*inventory.Envelope
	for _, it := range items {
		n := int(it.Data[0])
		id, body := string(it.Data[1:1+n]), it.Data[1+n:]
		e, err := inventory.Decode(body)
		if err != nil {
			t.Fatal(err)
		}
		if e.ID != id {
			t.Errorf("message id %s, envelope id %s", id, e.ID)
		}
		out = append(out, e)
	}
	return out
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func pod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "web:1"}}}}
}

// TestSnapshotThenChanges runs the cache over client-go's fake clientset:
// a snapshot of what is there (trimmed), then each change once per flush,
// deletions as such, and generations that only grow.
func TestSnapshotThenChanges(t *testing.T) {
	kc := fake.NewClientset(pod("web-0"), pod("web-1"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	c, err := cache.New(kc)
	if err != nil {
		t.Fatal(err)
	}
	c.Start(t.Context())
	if err := c.WaitForSync(t.Context()); err != nil {
		t.Fatal(err)
	}
	q, _ := queue.Open(queue.Options{})
	now := time.Unix(1_780_000_000, 0)
	s := New(Options{Cluster: "c1", Agent: "a", Now: func() time.Time { return now }}, c, q, zerolog.Nop())
	if err := s.Snapshot(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	snap := drain(t, q)
	if len(snap) != 1 || snap[0].Kind != inventory.KindSnapshot || snap[0].Generation != 3*termScale+now.Unix() || snap[0].Parts != 1 {
		t.Fatalf("snapshot %+v", snap)
	}
	o := snap[0].Objects
	if len(o.Pods) != 2 || len(o.Namespaces) != 1 || o.Pods[0].Name != "web-0" {
		t.Fatalf("snapshot objects %+v", o)
	}
	if p := o.Pods[0]; p.ManagedFields != nil || p.Annotations["kubectl.kubernetes.io/last-applied-configuration"] != "" || p.Annotations["keep"] != "me" || p.Kind != "Pod" || p.APIVersion != "v1" {
		t.Errorf("pod not trimmed or typed: %+v", p.ObjectMeta)
	}

	ctx := t.Context()
	p := pod("web-2")
	if _, err := kc.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // three updates, one message
		p.Labels = map[string]string{"v": fmt.Sprint(i)}
		if _, err := kc.CoreV1().Pods("shop").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := kc.CoreV1().Pods("shop").Delete(ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the cache to see the changes", func() bool {
		got, ok := c.Get(inventory.Ref{Kind: "Pod", Namespace: "shop", Name: "web-2"})
		_, stillThere := c.Get(inventory.Ref{Kind: "Pod", Namespace: "shop", Name: "web-0"})
		return ok && got.(*corev1.Pod).Labels["v"] == "2" && !stillThere
	})
	time.Sleep(50 * time.Millisecond) // the handlers run after the store update
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	ch := drain(t, q)
	if len(ch) != 1 || ch[0].Kind != inventory.KindChanges || ch[0].Seq != 1 || ch[0].Generation != snap[0].Generation {
		t.Fatalf("changes %+v", ch)
	}
	if len(ch[0].Objects.Pods) != 1 || ch[0].Objects.Pods[0].Labels["v"] != "2" ||
		len(ch[0].Deleted) != 1 || ch[0].Deleted[0] != (inventory.Ref{Kind: "Pod", Namespace: "shop", Name: "web-0"}) {
		t.Errorf("changes objects %+v deleted %+v", ch[0].Objects, ch[0].Deleted)
	}
	if err := s.Flush(); err != nil || len(drain(t, q)) != 0 {
		t.Errorf("nothing changed, yet a message: %v", err)
	}
	// The same second, or an earlier term: the generation still grows.
	if err := s.Snapshot(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if again := drain(t, q); again[0].Generation != snap[0].Generation+1 {
		t.Errorf("generation %d after %d", again[0].Generation, snap[0].Generation)
	}
	if err := s.Report([]model.Remediation{{ResultID: "r", CheckID: "c", Resource: "DaemonSet/a/b", At: now}}); err != nil {
		t.Fatal(err)
	}
	if rep := drain(t, q); len(rep) != 1 || rep[0].Kind != inventory.KindRemediation || rep[0].Remediations[0].ResultID != "r" {
		t.Errorf("report %+v", rep)
	}
}

// TestDropsBringANewSnapshot: when the queue drops messages, Run sends a
// new snapshot once the queue has drained.
func TestDropsBringANewSnapshot(t *testing.T) {
	kc := fake.NewClientset(pod("web-0"))
	c, _ := cache.New(kc)
	c.Start(t.Context())
	c.WaitForSync(t.Context())
	q, _ := queue.Open(queue.Options{MaxEvents: 1})
	s := New(Options{Cluster: "c1", Agent: "a", FlushInterval: 10 * time.Millisecond, Heartbeat: time.Hour}, c, q, zerolog.Nop())
	done := make(chan error, 1)
	go func() { done <- s.Run(t.Context(), 1) }()
	waitFor(t, "the first snapshot", func() bool { return s.Stats().Snapshots == 1 })
	q.Push(0, []byte("\x01xfiller")) // the queue holds one: the snapshot is evicted
	waitFor(t, "the drop to be seen", func() bool { return q.Stats().Drops[queue.ReasonBufferFull][0] > 0 })
	items, _ := q.Take(10, 1<<30) // Event Hubs is back: the queue drains
	q.Ack(items)
	waitFor(t, "a second snapshot", func() bool { return s.Stats().Snapshots == 2 })
	if got := drain(t, q); len(got) != 1 || got[0].Kind != inventory.KindSnapshot {
		t.Errorf("queued %+v", got)
	}
}
