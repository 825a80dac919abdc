package localregistry

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rs/zerolog"
)

type acrEvent struct {
	EventType string
	Subject   string
	Data      struct {
		Action  string
		Target  struct{ Repository, Digest, Tag string }
		Request struct{ Host string }
	}
}

func TestPushAndDeleteRaiseEvents(t *testing.T) {
	var mu sync.Mutex
	var events []acrEvent
	srv := httptest.NewServer(New("localhost:5000", zerolog.Nop(), time.Now, func(raw json.RawMessage) {
		var ev acrEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Errorf("event is not JSON: %v", err)
		}
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/team/web:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	if err := remote.Delete(ref.Context().Digest(digest.String())); err != nil {
		t.Fatal(err)
	}

	if len(events) != 2 {
		t.Fatalf("got %d events, want a push and a delete: %+v", len(events), events)
	}
	push, del := events[0], events[1]
	if push.EventType != ImagePushed || push.Data.Action != "push" || push.Data.Target.Repository != "team/web" ||
		push.Data.Target.Tag != "v1" || push.Data.Target.Digest != digest.String() || push.Data.Request.Host != "localhost:5000" || push.Subject != "team/web:v1" {
		t.Errorf("push event = %+v", push)
	}
	if del.EventType != ImageDeleted || del.Data.Target.Digest != digest.String() || del.Data.Target.Tag != "" {
		t.Errorf("delete event = %+v", del)
	}
}
