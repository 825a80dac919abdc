package runningimages

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/tests/testenv"
)

func images(n int) []model.RunningImage {
	out := make([]model.RunningImage, n)
	for i := range out {
		out[i] = model.RunningImage{Digest: fmt.Sprintf("sha256:%064x", i), Image: "web", Workloads: []string{"Deployment/shop/web"}}
	}
	return out
}

func TestWriteShrinksAndAddMerges(t *testing.T) {
	st := testenv.Store(t)
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if _, err := Write(ctx, st, "c1", images(2500), t0); err != nil {
		t.Fatal(err)
	}
	got, err := Read(ctx, st, "c1")
	if err != nil || len(got) != 2500 {
		t.Fatalf("%d images, %v", len(got), err)
	}
	if _, err := Write(ctx, st, "c1", images(3), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for c, want := range []bool{true, false, false} {
		var s model.State
		_, err := st.Get(ctx, store.State, model.KindRunningImages, ID("c1", c), &s)
		if (err == nil) != want {
			t.Errorf("chunk %d present: %v, want %v", c, err == nil, want)
		}
	}
	t1 := t0.Add(2 * time.Hour)
	more := []model.RunningImage{
		{Digest: fmt.Sprintf("sha256:%064x", 1), Image: "web", Workloads: []string{"Pod/shop/debug"}},
		{Digest: fmt.Sprintf("sha256:%064x", 99), Image: "api", Workloads: []string{"Deployment/shop/api"}},
	}
	added, err := Add(ctx, st, "c1", more, t1)
	if err != nil || added != 1 {
		t.Fatalf("added %d, %v", added, err)
	}
	got, _ = Read(ctx, st, "c1")
	want := append(images(3), more[1]) // the known digest keeps its workloads
	for i := range want {
		want[i].LastSeen = t1
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after Add (-want +got):\n%s", diff)
	}
	if added, err := Add(ctx, st, "c1", more, t1.Add(time.Hour)); err != nil || added != 0 {
		t.Errorf("nothing new: added %d, %v", added, err)
	}
	if got, err := Read(ctx, st, "other"); err != nil || len(got) != 0 {
		t.Errorf("unknown cluster: %v %v", got, err)
	}
}
