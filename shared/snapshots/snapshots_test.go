package snapshots

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/cosmos"
	"github.com/palisade-sec/palisade/tests/testenv"
)

const cluster = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// stores runs fn against the embedded store and the Cosmos DB store (on
// the loopback Cosmos DB server).
func stores(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("embedded", func(t *testing.T) { fn(t, testenv.Store(t)) })
	t.Run("cosmos", func(t *testing.T) {
		endpoint := testenv.StartCosmos(t)
		st, err := cosmos.New(t.Context(), cosmos.Options{Endpoint: endpoint, Key: testenv.CosmosKey, Database: "snapshots", InsecureLoopbackTLS: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
}

func pod(name, image string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name,
		Annotations: map[string]string{"pad": noise(400)}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}
	inventory.SetType(p, "Pod")
	return p
}

// noise is n hexadecimal digits that do not compress much.
func noise(n int) string {
	var b []byte
	for len(b) < n {
		b = fmt.Appendf(b, "%016x", rand.Uint64())
	}
	return string(b[:n])
}

// msg is a message as the hub delivers it: decoded envelope and body.
type msg struct {
	env  *inventory.Envelope
	body []byte
}

func decode(t *testing.T, ms []inventory.Message) []msg {
	t.Helper()
	var out []msg
	for _, m := range ms {
		e, err := inventory.Decode(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, msg{e, m.Body})
	}
	return out
}

func snapshot(t *testing.T, gen int64, at time.Time, pods ...*corev1.Pod) []msg {
	t.Helper()
	b, err := inventory.NewBuilder(inventory.Envelope{Kind: inventory.KindSnapshot, Cluster: cluster, Agent: "a", Time: at, Generation: gen}, 4096)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if err := b.Add("Pod", p); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, ms)
}

func changes(t *testing.T, gen, seq int64, at time.Time, pods []*corev1.Pod, deleted ...string) msg {
	t.Helper()
	b, _ := inventory.NewBuilder(inventory.Envelope{Kind: inventory.KindChanges, Cluster: cluster, Agent: "a", Time: at, Generation: gen, Seq: seq}, 0)
	for _, p := range pods {
		if err := b.Add("Pod", p); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range deleted {
		if err := b.Delete(inventory.Ref{Kind: "Pod", Namespace: "shop", Name: d}); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := b.Finish()
	if err != nil || len(ms) != 1 {
		t.Fatalf("%d messages, %v", len(ms), err)
	}
	return decode(t, ms)[0]
}

func pods(n int, image string) []*corev1.Pod {
	out := make([]*corev1.Pod, n)
	for i := range out {
		out[i] = pod(fmt.Sprintf("web-%02d", i), image)
	}
	return out
}

func names(o *inventory.Objects) map[string]string {
	m := map[string]string{}
	for _, p := range o.Pods {
		m[p.Name] = p.Spec.Containers[0].Image
	}
	return m
}

func TestOutOfOrderRedeliveredPartsCompleteOnce(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		now := t0.Add(time.Minute)
		s := New(st, Options{Now: func() time.Time { return now }})
		ctx := t.Context()
		parts := snapshot(t, 10, t0, pods(40, "web:1")...)
		if len(parts) < 3 {
			t.Fatalf("%d parts; the test wants several", len(parts))
		}
		// A change for the generation arrives before its snapshot is whole.
		early := changes(t, 10, 1, t0.Add(time.Second), []*corev1.Pod{pod("web-03", "web:2")}, "web-04")
		order := []msg{parts[len(parts)-1], early, parts[1], parts[1]}
		order = append(order, parts[2:len(parts)-1]...)
		for i, m := range order {
			res, err := s.Take(ctx, m.env, m.body)
			if err != nil || res.Outcome != Stored {
				t.Fatalf("message %d: %+v %v", i, res, err)
			}
			if _, err := s.Latest(ctx, cluster); !errors.Is(err, ErrNoSnapshot) {
				t.Fatalf("a partial snapshot was readable after message %d: %v", i, err)
			}
		}
		res, err := s.Take(ctx, parts[0].env, parts[0].body)
		if err != nil || res.Outcome != Completed || res.Snapshot == nil {
			t.Fatalf("last part: %+v %v", res, err)
		}
		got := names(&res.Snapshot.Objects)
		if len(got) != 39 || got["web-03"] != "web:2" || got["web-04"] != "" || got["web-05"] != "web:1" {
			t.Errorf("completed snapshot %v", got)
		}
		// Redelivered parts change nothing.
		for _, m := range parts {
			if res, err := s.Take(ctx, m.env, m.body); err != nil || res.Outcome != Stale {
				t.Errorf("redelivered part: %+v %v", res, err)
			}
		}
		latest, err := s.Latest(ctx, cluster)
		if err != nil {
			t.Fatal(err)
		}
		h := latest.Head
		if h.Generation != 10 || h.Parts != len(parts) || h.Objects != 39 || h.Changes != 1 || !h.SnapshotAt.Equal(t0) || !h.CompletedAt.Equal(now) {
			t.Errorf("head %+v", h)
		}
		if d := names(&latest.Objects); len(d) != 39 || d["web-03"] != "web:2" {
			t.Errorf("latest %v", d)
		}
	})
}

func TestChangesApplyNewerGenerationsReplaceAndPrune(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store) {
		now := t0.Add(time.Hour)
		s := New(st, Options{Now: func() time.Time { return now }})
		ctx := t.Context()
		take := func(m msg, want string) Result {
			t.Helper()
			res, err := s.Take(ctx, m.env, m.body)
			if err != nil || res.Outcome != want {
				t.Fatalf("%s %d/%d: %+v %v, want %s", m.env.Kind, m.env.Generation, m.env.Seq, res, err, want)
			}
			return res
		}
		for _, m := range snapshot(t, 1, t0, pods(3, "web:1")...) {
			take(m, map[bool]string{true: Completed, false: Stored}[m.env.Parts > 0])
		}
		// Changes 2 before 1: both apply, in seq order when read.
		res := take(changes(t, 1, 2, t0.Add(2*time.Second), []*corev1.Pod{pod("web-00", "web:3")}), Applied)
		if len(res.Changed.Pods) != 1 {
			t.Errorf("changed %+v", res.Changed)
		}
		take(changes(t, 1, 1, t0.Add(time.Second), []*corev1.Pod{pod("web-00", "web:2"), pod("new", "api:1")}), Applied)
		latest, err := s.Latest(ctx, cluster)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(&latest.Objects); got["web-00"] != "web:3" || got["new"] != "api:1" || len(got) != 4 || latest.Head.Changes != 2 {
			t.Errorf("after changes %v %+v", got, latest.Head)
		}
		// Generation 2 completes; generation 1's leftovers go.
		for _, m := range snapshot(t, 2, t0.Add(time.Hour), pods(2, "web:9")...) {
			take(m, map[bool]string{true: Completed, false: Stored}[m.env.Parts > 0])
		}
		take(changes(t, 1, 3, t0.Add(3*time.Second), []*corev1.Pod{pod("late", "x")}), Stale)
		latest, err = s.Latest(ctx, cluster)
		if err != nil || len(latest.Objects.Pods) != 2 || latest.Head.Generation != 2 || latest.Head.Changes != 0 {
			t.Fatalf("generation 2: %+v %v", latest, err)
		}
		page, err := st.Query(ctx, store.Clusters, store.Query{PartitionKey: cluster, Filters: []store.Filter{{Field: "generation", Op: store.Eq, Value: 1}}})
		if err != nil || len(page.Items) != 0 {
			t.Errorf("generation 1 left %d items (%v)", len(page.Items), err)
		}
		heads, err := s.Heads(ctx, store.Cursor{})
		if err != nil || len(heads.Items) != 1 || heads.Items[0].Cluster != cluster {
			t.Errorf("heads %+v %v", heads, err)
		}
	})
}

func TestHeartbeatsKeepTheAgentFreshWithoutGoingBack(t *testing.T) {
	st := testenv.Store(t)
	now := t0
	s := New(st, Options{Now: func() time.Time { return now }})
	ctx := t.Context()
	beat := func(at time.Time) {
		t.Helper()
		m, err := inventory.Encode(inventory.Envelope{Kind: inventory.KindHeartbeat, ID: at.String(), Cluster: cluster, Agent: "a", Time: at}, 0)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := inventory.Decode(m.Body)
		if res, err := s.Take(ctx, e, m.Body); err != nil || res.Outcome != Seen {
			t.Fatalf("%+v %v", res, err)
		}
	}
	beat(t0.Add(time.Hour)) // the agent's clock is ahead: LastSeen is now
	h, err := s.Head(ctx, cluster)
	if !errors.Is(err, ErrNoSnapshot) || !h.LastSeen.Equal(t0) {
		t.Fatalf("%+v %v", h, err)
	}
	now = t0.Add(10 * time.Minute)
	beat(t0.Add(5 * time.Minute))
	beat(t0.Add(time.Minute)) // a late redelivery
	h, _ = s.Head(ctx, cluster)
	if !h.LastSeen.Equal(t0.Add(5*time.Minute)) || h.LastSeenUnix != h.LastSeen.Unix() {
		t.Errorf("last seen %v", h.LastSeen)
	}
	if !h.Stale(t0.Add(time.Hour), 15*time.Minute) || h.Stale(t0.Add(10*time.Minute), 15*time.Minute) {
		t.Error("Stale")
	}
}

func TestBrokenPartIsReported(t *testing.T) {
	st := testenv.Store(t)
	s := New(st, Options{Now: func() time.Time { return t0 }})
	parts := snapshot(t, 5, t0, pods(1, "web")...)
	m := parts[0]
	if _, err := s.Take(t.Context(), m.env, []byte("not what was decoded")); !errors.Is(err, ErrBroken) {
		t.Errorf("error %v, want ErrBroken", err)
	}
}
