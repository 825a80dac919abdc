// Package localregistry is the OCI registry `palisade dev` runs on
// loopback (go-containerregistry's registry), made to raise the events an
// Azure Container Registry raises: a manifest pushed becomes
// Microsoft.ContainerRegistry.ImagePushed, a manifest deleted becomes
// ImageDeleted, in the Event Grid schema.
package localregistry

import (
	"encoding/json"
	"io"
	stdlog "log"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// Event types raised, as ACR names them.
const (
	ImagePushed  = "Microsoft.ContainerRegistry.ImagePushed"
	ImageDeleted = "Microsoft.ContainerRegistry.ImageDeleted"
)

var manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)

// New returns the registry handler. host is the login server events name
// (e.g. "localhost:5000"); publish receives each event as Event Grid JSON.
func New(host string, log zerolog.Logger, now func() time.Time, publish func(event json.RawMessage)) http.Handler {
	reg := registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)), registry.WithReferrersSupport(true))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := manifestPath.FindStringSubmatch(r.URL.Path)
		if m == nil || (r.Method != http.MethodPut && r.Method != http.MethodDelete) {
			reg.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		reg.ServeHTTP(rec, r)
		if rec.status/100 != 2 {
			return
		}
		repo, ref := m[1], m[2]
		digest, tag := rec.Header().Get("Docker-Content-Digest"), ""
		if strings.HasPrefix(ref, "sha256:") {
			digest = ref
		} else {
			tag = ref
		}
		typ, action := ImagePushed, "push"
		if r.Method == http.MethodDelete {
			typ, action = ImageDeleted, "delete"
		}
		ev := buildEvent(host, typ, action, repo, tag, digest, r.Header.Get("Content-Type"), r.ContentLength, now())
		log.Info().Str("event_type", typ).Str("repository", repo).Str("digest", digest).Str("tag", tag).Msg("registry event")
		publish(ev)
	})
}

func buildEvent(host, typ, action, repo, tag, digest, mediaType string, size int64, now time.Time) json.RawMessage {
	target := map[string]any{"repository": repo, "digest": digest}
	if mediaType != "" {
		target["mediaType"] = mediaType
	}
	if tag != "" {
		target["tag"] = tag
	}
	if size > 0 {
		target["size"], target["length"] = size, size
	}
	subject := repo
	if tag != "" {
		subject += ":" + tag
	}
	ev, _ := json.Marshal(map[string]any{
		"id":        uuid.NewString(),
		"topic":     "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.ContainerRegistry/registries/local",
		"subject":   subject,
		"eventType": typ,
		"eventTime": now.UTC().Format(time.RFC3339Nano),
		"data": map[string]any{
			"id": uuid.NewString(), "timestamp": now.UTC().Format(time.RFC3339Nano), "action": action,
			"target":  target,
			"request": map[string]any{"id": uuid.NewString(), "host": host, "method": map[string]string{"push": "PUT", "delete": "DELETE"}[action]},
		},
		"dataVersion": "1.0", "metadataVersion": "1",
	})
	return ev
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
