package testenv

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// CountingRegistry is a registry on loopback that counts the requests it
// serves: to prove that a rescan pulls nothing, or that a cached layer is
// not fetched again.
type CountingRegistry struct {
	Host string // host:port
	srv  *httptest.Server

	mu       sync.Mutex
	requests []string // "GET /v2/team/app/blobs/sha256:…"
}

// NewCountingRegistry starts a counting registry, closed when the test ends.
func NewCountingRegistry(t testing.TB) *CountingRegistry {
	t.Helper()
	return ServeCounting(t, func(string) http.Handler { return registry.New(registry.Logger(log.New(io.Discard, "", 0))) })
}

// ServeCounting serves, counting its requests, the registry handler that
// newHandler makes for the host:port it is served on: a registry that
// needs its own address, such as palisade dev's (shared/localregistry).
func ServeCounting(t testing.TB, newHandler func(host string) http.Handler) *CountingRegistry {
	t.Helper()
	r := &CountingRegistry{}
	r.srv = httptest.NewUnstartedServer(nil)
	r.Host = r.srv.Listener.Addr().String()
	reg := newHandler(r.Host)
	r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		reg.ServeHTTP(w, req)
	})
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

// Requests counts the requests served with method (any when "") whose path
// contains substr.
func (r *CountingRegistry) Requests(method, substr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, q := range r.requests {
		m, p, _ := strings.Cut(q, " ")
		if (method == "" || m == method) && strings.Contains(p, substr) {
			n++
		}
	}
	return n
}

// Close stops the registry: any later request fails.
func (r *CountingRegistry) Close() { r.srv.Close() }
