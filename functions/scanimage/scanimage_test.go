package scanimage_test

import (
	"encoding/json"
	"flag"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/functions/scanimage"
	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/funchost"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
	"github.com/palisade-sec/palisade/tests/golden"
	"github.com/palisade-sec/palisade/tests/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	pushTime = time.Date(2026, 5, 2, 10, 0, 0, 0, time.UTC)
	scanTime = time.Date(2026, 5, 2, 10, 0, 30, 0, time.UTC)
)

// rig is scanimage behind the Functions host harness, with a registry on
// loopback, the fixture DB and an embedded store.
type rig struct {
	host     *funchost.Host
	fn       *scanimage.Function
	st       store.Store
	registry string
}

func newRig(t *testing.T, allowed ...string) *rig {
	t.Helper()
	return newRigWith(t, nil, allowed...)
}

// newRigWith is newRig with a publisher of events.
func newRigWith(t *testing.T, pub scanimage.Publisher, allowed ...string) *rig {
	t.Helper()
	return newRigOpts(t, scanimage.Options{Publisher: pub}, allowed...)
}

// newRigOpts is newRig with options (the registries and the clock are set
// here).
func newRigOpts(t *testing.T, opts scanimage.Options, allowed ...string) *rig {
	t.Helper()
	registry := scantest.Registry(t)
	log := zerolog.New(zerolog.NewTestWriter(t))
	sc, err := scanner.New(t.Context(), scanner.Options{CacheDir: t.TempDir(), DBDir: scantest.FixtureDB(t), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sc.Close() })
	st := testenv.Store(t)
	if len(allowed) == 0 {
		allowed = []string{registry}
	}
	opts.Registries, opts.Now = allowed, func() time.Time { return scanTime }
	fn := scanimage.New(st, sc, opts)
	srv := customhandler.NewServer(log)
	srv.Handle("scanimage", fn.Handle)
	h := testenv.Host(t, srv, log)
	return &rig{host: h, fn: fn, st: st, registry: registry}
}

// event builds an ACR event in the Event Grid or the CloudEvents schema.
func event(t *testing.T, cloud bool, typ, registry, repo, tag, digest string) json.RawMessage {
	t.Helper()
	action := map[string]string{"Microsoft.ContainerRegistry.ImagePushed": "push", "Microsoft.ContainerRegistry.ImageDeleted": "delete"}[typ]
	target := map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": repo, "digest": digest, "size": 1234, "length": 1234}
	if tag != "" {
		target["tag"] = tag
	}
	data := map[string]any{
		"id": "evt-data-1", "timestamp": pushTime.Format(time.RFC3339Nano), "action": action, "target": target,
		"request": map[string]any{"id": "req-1", "host": registry, "method": "PUT", "useragent": "docker/27"},
		"actor":   map[string]any{"name": "ci"}, "source": map[string]any{"addr": "registry-0", "instanceID": "i-1"},
	}
	var ev map[string]any
	if cloud {
		ev = map[string]any{"specversion": "1.0", "id": "ce-1", "type": typ, "time": pushTime.Format(time.RFC3339),
			"source": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r", "subject": repo, "data": data}
	} else {
		ev = map[string]any{"id": "eg-1", "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r",
			"subject": repo, "eventType": typ, "eventTime": pushTime.Format(time.RFC3339), "data": data, "dataVersion": "1.0", "metadataVersion": "1"}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (r *rig) deliver(t *testing.T, ev json.RawMessage, asString bool) error {
	t.Helper()
	return r.host.DeliverEventGrid(t.Context(), "scanimage", []json.RawMessage{ev}, asString)
}

// dump is everything stored for a digest, with the run's registry address
// replaced so golden files are stable.
type dump struct {
	Image     model.Image
	Inventory []model.InventoryChunk
	Findings  []model.Finding
}

func (r *rig) dump(t *testing.T, digest string) dump {
	t.Helper()
	var d dump
	var err error
	if d.Image, err = vulnstore.GetImage(t.Context(), r.st, digest); err != nil {
		t.Fatal(err)
	}
	d.Image.Registry = strings.ReplaceAll(d.Image.Registry, r.registry, "REGISTRY")
	if d.Inventory, err = vulnstore.InventoryChunks(t.Context(), r.st, digest); err != nil {
		t.Fatal(err)
	}
	findings, err := vulnstore.Findings(t.Context(), r.st, digest)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		f.Registry = strings.ReplaceAll(f.Registry, r.registry, "REGISTRY")
		d.Findings = append(d.Findings, f)
	}
	sort.Slice(d.Findings, func(i, j int) bool { return d.Findings[i].ID < d.Findings[j].ID })
	sort.Slice(d.Inventory, func(i, j int) bool { return d.Inventory[i].Index < d.Inventory[j].Index })
	return d
}

func goldenJSON(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Compare(t, filepath.Join("testdata", name), append(b, '\n'), *update)
}

func TestScanOnPush(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    []scantest.File
		cloud    bool
		asString bool
	}{
		{"debian-eventgrid", scantest.DebianFiles(), false, false},
		{"debian-cloudevents", scantest.DebianFiles(), true, true},
		{"alpine-eventgrid", scantest.AlpineFiles(), false, true},
		{"alpine-cloudevents", scantest.AlpineFiles(), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			img := scantest.Image(t, scantest.Layer(t, tc.files))
			digest := scantest.Push(t, r.registry, "team/app", "1.0", img)
			ev := event(t, tc.cloud, "Microsoft.ContainerRegistry.ImagePushed", r.registry, "team/app", "1.0", digest)
			if err := r.deliver(t, ev, tc.asString); err != nil {
				t.Fatal(err)
			}
			first := r.dump(t, digest)
			goldenJSON(t, tc.name+".golden.json", first)

			// The same event again leaves exactly the same stored data.
			if err := r.deliver(t, ev, !tc.asString); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(first, r.dump(t, digest)); d != "" {
				t.Fatalf("redelivery changed stored data (-first +second):\n%s", d)
			}
			if s := r.fn.Stats(); s.Scanned != 1 || s.Skipped != 1 {
				t.Fatalf("stats %+v: want one scan and one skip", s)
			}

			// ImageDeleted marks the image deleted and resolves every finding.
			del := event(t, tc.cloud, "Microsoft.ContainerRegistry.ImageDeleted", r.registry, "team/app", "", digest)
			for range 2 {
				if err := r.deliver(t, del, tc.asString); err != nil {
					t.Fatal(err)
				}
			}
			gone := r.dump(t, digest)
			if gone.Image.Status != model.ImageDeleted || !gone.Image.DeletedAt.Equal(pushTime) || len(gone.Image.Counts) != 0 {
				t.Fatalf("deleted image: %+v", gone.Image)
			}
			if len(gone.Findings) != len(first.Findings) || len(gone.Findings) == 0 {
				t.Fatalf("deleted image has %d findings, want %d", len(gone.Findings), len(first.Findings))
			}
			for _, f := range gone.Findings {
				if f.Status != model.FindingResolved || !f.ResolvedAt.Equal(pushTime) {
					t.Fatalf("finding %s after delete: status %s resolved %v", f.VulnID, f.Status, f.ResolvedAt)
				}
			}
		})
	}
}

func TestAllowlistRefusal(t *testing.T) {
	r := newRig(t, "contoso.azurecr.io")
	img := scantest.Image(t, scantest.Layer(t, scantest.AlpineFiles()))
	digest := scantest.Push(t, r.registry, "team/app", "1.0", img)
	if err := r.deliver(t, event(t, false, "Microsoft.ContainerRegistry.ImagePushed", r.registry, "team/app", "1.0", digest), false); err != nil {
		t.Fatal(err)
	}
	if s := r.fn.Stats(); s.Refused != 1 || s.Scanned != 0 {
		t.Fatalf("stats %+v: want the event refused", s)
	}
	if img2, err := vulnstore.GetImage(t.Context(), r.st, digest); err == nil {
		t.Fatalf("a refused event stored an image: %+v", img2)
	}
}

func TestOtherEventsIgnored(t *testing.T) {
	r := newRig(t)
	ev := json.RawMessage(`{"id":"x","topic":"t","subject":"s","eventType":"Microsoft.Storage.BlobCreated","eventTime":"2026-05-02T10:00:00Z","data":{"api":"PutBlob"},"dataVersion":"1"}`)
	if err := r.deliver(t, ev, false); err != nil {
		t.Fatal(err)
	}
	if s := r.fn.Stats(); s.Ignored != 1 {
		t.Fatalf("stats %+v: want one ignored", s)
	}
}

func TestBadEventIsBadRequest(t *testing.T) {
	r := newRig(t)
	ev := event(t, false, "Microsoft.ContainerRegistry.ImagePushed", r.registry, "team/app", "1.0", "sha256:nothex")
	err := r.deliver(t, ev, false)
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("want a 400 naming the digest, got %v", err)
	}
}

func TestHostileImageRecordedAsFailed(t *testing.T) {
	r := newRig(t)
	img := scantest.Image(t, scantest.Layer(t, []scantest.File{
		{Name: "etc/alpine-release", Body: []byte("3.19.1\n")},
		{Name: "../../../root/.ssh/authorized_keys", Body: []byte("ssh-ed25519 AAAA attacker\n")},
	}))
	digest := scantest.Push(t, r.registry, "team/evil", "1", img)
	// Acknowledged (no Event Grid retry can cure it) and recorded as failed.
	if err := r.deliver(t, event(t, false, "Microsoft.ContainerRegistry.ImagePushed", r.registry, "team/evil", "1", digest), false); err != nil {
		t.Fatal(err)
	}
	d := r.dump(t, digest)
	if d.Image.Status != model.ImageFailed || !strings.Contains(d.Image.Error, "outside the image root") || len(d.Findings) != 0 {
		t.Fatalf("hostile image stored as %+v", d.Image)
	}
	if s := r.fn.Stats(); s.Failed != 1 {
		t.Fatalf("stats %+v", s)
	}
}
