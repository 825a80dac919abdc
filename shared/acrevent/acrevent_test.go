package acrevent

import (
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/shared/model"
)

const digestA = "sha256:da2a4fa1c010a8d99e6152f96a9d4edfdd09d4dd1f08333a894de221e5e9b7b6"

func TestDecodeRejects(t *testing.T) {
	base := func(data string) string {
		return `{"id":"1","eventType":"Microsoft.ContainerRegistry.ImagePushed","eventTime":"2026-05-02T10:00:00Z","subject":"s","dataVersion":"1","data":` + data + `}`
	}
	for _, tc := range []struct{ name, raw, want string }{
		{"not json", `{`, "not a JSON object"},
		{"no type", `{"id":"1","data":{}}`, "no type"},
		{"no data", `{"id":"1","eventType":"Microsoft.ContainerRegistry.ImagePushed","eventTime":"2026-05-02T10:00:00Z"}`, "no data"},
		{"no host", base(`{"target":{"repository":"a","digest":"` + digestA + `"},"request":{}}`), "request.host"},
		{"bad digest", base(`{"target":{"repository":"a","digest":"sha256:zz"},"request":{"host":"r.azurecr.io"}}`), "digest"},
		{"bad repo", base(`{"target":{"repository":"../x","digest":"` + digestA + `"},"request":{"host":"r.azurecr.io"}}`), "repository"},
		{"url elsewhere", base(`{"target":{"repository":"a","digest":"` + digestA + `","url":"https://evil.example/v2/a/manifests/` + digestA + `"},"request":{"host":"r.azurecr.io"}}`), "does not point at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming %q, got %v", tc.want, err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"1","eventType":"Microsoft.ContainerRegistry.ImagePushed","eventTime":"2026-05-02T10:00:00Z","subject":"a:1","dataVersion":"1","data":{"timestamp":"2026-05-02T10:00:00Z","target":{"repository":"a","tag":"1","digest":"` + digestA + `"},"request":{"host":"r.azurecr.io"}}}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"Microsoft.ContainerRegistry.ImageDeleted","time":"2026-05-02T10:00:00Z","data":{"target":{"repository":"a","digest":"` + digestA + `"},"request":{"host":"R.azurecr.io"}}}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"/s","type":"x","data_base64":"e30="}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := Decode(raw)
		if err != nil || !ev.IsRegistryImageEvent() {
			return
		}
		// Anything accepted is safe to act on.
		if !model.ValidDigest(ev.Digest) || ev.Registry == "" || strings.ContainsAny(ev.Registry, "/@ ") ||
			ev.Repository == "" || strings.Contains(ev.Repository, "..") || ev.Time.IsZero() {
			t.Fatalf("accepted an unsafe event: %+v", ev)
		}
	})
}
