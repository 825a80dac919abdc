package ingestinventory

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/funchost"
	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/runningimages"
	"github.com/palisade-sec/palisade/shared/snapshots"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/testenv"
)

const cluster = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// invoke delivers bodies as one batch, encoded as the host encodes this
// function's binding (function.json: cardinality many, dataType binary).
func invoke(t testing.TB, f *Function, bodies ...[]byte) Summary {
	t.Helper()
	app, err := funchost.LoadApp("../..")
	if err != nil {
		t.Fatal(err)
	}
	trig, _ := app.Functions[Name].Trigger()
	events := make([]funchost.EventHubEvent, len(bodies))
	for i, b := range bodies {
		events[i] = funchost.EventHubEvent{Body: b, SequenceNumber: int64(i), EnqueuedTime: t0}
	}
	p, err := funchost.EventHubPayload(trig, Name, funchost.PartitionContext{EventHubName: "inventory", PartitionID: "0"}, events, t0)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(p)
	req, err := customhandler.DecodeRequest(raw)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.Handle(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.ReturnValue.(Summary)
}

// noise is text that compresses poorly, so snapshots need several parts.
func noise(seed string) string {
	var b strings.Builder
	for i := range 8 {
		fmt.Fprintf(&b, "%x", sha256.Sum256([]byte(fmt.Sprint(seed, i))))
	}
	return b.String()
}

func pod(name, image string, n int) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Annotations: map[string]string{"noise": noise(name)}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: image,
			ImageID: fmt.Sprintf("%s@sha256:%064x", image, n)}}}}
	inventory.SetType(p, "Pod")
	return p
}

func TestSnapshotsChangesAndWhatCannotBeUsed(t *testing.T) {
	st := testenv.Store(t)
	f := New(st, Options{Now: func() time.Time { return t0.Add(time.Minute) }})
	b, _ := inventory.NewBuilder(inventory.Envelope{Kind: inventory.KindSnapshot, Cluster: cluster, Agent: "a", Time: t0, Generation: 4}, 4096)
	for i := range 30 {
		if err := b.Add("Pod", pod(fmt.Sprintf("web-%02d", i), "myacr.azurecr.io/web", i%3+1)); err != nil {
			t.Fatal(err)
		}
	}
	parts, err := b.Finish()
	if err != nil || len(parts) < 2 {
		t.Fatalf("%d parts, %v", len(parts), err)
	}
	// The last part first, then all of them again: one completion.
	var first, second [][]byte
	first = append(first, parts[len(parts)-1].Body, []byte("not an inventory message"))
	for _, p := range parts {
		second = append(second, p.Body)
	}
	sum := invoke(t, f, first...)
	if sum.Parked != 1 || sum.Outcomes[snapshots.Stored] != 1 || len(sum.Completed) != 0 {
		t.Errorf("first batch %+v", sum)
	}
	sum = invoke(t, f, second...)
	if len(sum.Completed) != 1 || sum.Outcomes[snapshots.Completed] != 1 || sum.Outcomes[snapshots.Stale] != 1 {
		t.Errorf("second batch %+v", sum)
	}
	imgs, err := runningimages.Read(t.Context(), st, cluster)
	if err != nil || len(imgs) != 3 {
		t.Fatalf("running images %+v %v", imgs, err)
	}

	// A new image starts running: it is in the running images at once.
	c, _ := inventory.NewBuilder(inventory.Envelope{Kind: inventory.KindChanges, Cluster: cluster, Agent: "a", Time: t0.Add(time.Second), Generation: 4, Seq: 1}, 0)
	c.Add("Pod", pod("api-0", "myacr.azurecr.io/api", 9))
	c.Delete(inventory.Ref{Kind: "Pod", Namespace: "shop", Name: "web-00"})
	ch, _ := c.Finish()
	rem, _ := inventory.Encode(inventory.Envelope{Kind: inventory.KindRemediation, ID: "r1", Cluster: cluster, Time: t0,
		Remediations: []model.Remediation{{ResultID: "res-1", Cluster: "some other cluster", CheckID: "privileged-containers", Resource: "DaemonSet/a/b", DryRun: true, At: t0}}}, 0)
	future, _ := inventory.Encode(inventory.Envelope{Kind: "future-kind", ID: "fut-1", Cluster: cluster, Time: t0}, 0)
	sum = invoke(t, f, ch[0].Body, rem.Body, future.Body)
	if sum.Outcomes[snapshots.Applied] != 1 || sum.NewImages != 1 || sum.Outcomes[inventory.KindRemediation] != 1 || sum.Parked != 1 {
		t.Errorf("third batch %+v", sum)
	}
	imgs, _ = runningimages.Read(t.Context(), st, cluster)
	if len(imgs) != 4 {
		t.Errorf("%d running images after the change, want 4", len(imgs))
	}
	latest, err := snapshots.New(st, snapshots.Options{}).Latest(t.Context(), cluster)
	if err != nil || len(latest.Objects.Pods) != 30 || latest.Head.Changes != 1 {
		t.Errorf("latest: %d pods, %+v, %v", len(latest.Objects.Pods), latest.Head, err)
	}
	var recs, parked []model.State
	store.Each(t.Context(), st, store.State, store.Query{PartitionKey: model.KindRemediation}, func(s model.State) error { recs = append(recs, s); return nil })
	store.Each(t.Context(), st, store.State, store.Query{PartitionKey: model.KindParked}, func(s model.State) error { parked = append(parked, s); return nil })
	if len(recs) != 1 || !strings.Contains(string(recs[0].Data), `"cluster":"`+cluster+`"`) {
		t.Errorf("remediation records %+v", recs)
	}
	var reasons []string
	store.Each(t.Context(), st, store.State, store.Query{PartitionKey: model.KindParked}, func(p model.Parked) error { reasons = append(reasons, p.Reason); return nil })
	if len(reasons) != 2 || !strings.Contains(strings.Join(reasons, "|"), `does not handle kind "future-kind"`) ||
		!strings.Contains(strings.Join(reasons, "|"), "not an inventory envelope") {
		t.Errorf("parked %q", reasons)
	}
}
