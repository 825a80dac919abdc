package scanimage_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/scanevents"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
)

// TestPushPublishesEvents: a scan publishes ImageScanCompleted to the
// Event Grid topic (a loopback HTTPS server checking the key), and a
// redelivered event publishes nothing more.
func TestPushPublishesEvents(t *testing.T) {
	var (
		mu     sync.Mutex
		events []struct {
			EventType string
			Subject   string
			Data      scanevents.ScanCompleted
		}
	)
	topic := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/events" || r.Header.Get("aeg-sas-key") != "k" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := json.Unmarshal(b, &events); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	defer topic.Close()
	pub, err := scanevents.New(topic.URL+"/api/events", "k", nil, &azcore.ClientOptions{Transport: topic.Client()})
	if err != nil {
		t.Fatal(err)
	}
	r := newRigWith(t, pub)
	digest := scantest.Push(t, r.registry, "team/app", "1.0", scantest.Image(t, scantest.Layer(t, scantest.DebianFiles())))
	ev := event(t, false, "Microsoft.ContainerRegistry.ImagePushed", r.registry, "team/app", "1.0", digest)
	for range 2 {
		if err := r.deliver(t, ev, false); err != nil {
			t.Fatal(err)
		}
	}
	stored := r.dump(t, digest)
	mu.Lock()
	defer mu.Unlock()
	// The fixture DB has no critical finding for this image after
	// Debian's severities, so one ImageScanCompleted is all.
	if len(events) != 1 || events[0].EventType != scanevents.TypeScanCompleted || events[0].Subject != r.registry+"/team/app@"+digest {
		t.Fatalf("events: %+v", events)
	}
	got := events[0].Data
	want := scanevents.ScanCompleted{Digest: digest, Registry: r.registry, Repository: "team/app", Tags: []string{"1.0"},
		Trigger: "push", Status: stored.Image.Status, OS: stored.Image.OS, DBVersion: stored.Image.DBVersion,
		Counts: stored.Image.Counts, Packages: stored.Image.Packages, New: len(stored.Findings), ScannedAt: scanTime}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("ImageScanCompleted data (-want +got):\n%s", d)
	}
	if s := r.fn.Stats(); s.EventsFailed != 0 {
		t.Fatalf("stats %+v", s)
	}
}
