// Package serve runs an HTTP server on a listener until a context ends,
// then shuts it down gracefully: the one way the cluster-side binaries
// (sensor and agent) serve their endpoints.
package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// shutdownGrace is how long requests in flight get once ctx ends.
const shutdownGrace = 5 * time.Second

// Until serves srv on ln (over TLS when srv.TLSConfig is set, its
// certificates from the config) until ctx ends, then shuts srv down and
// returns nil. A server that fails returns the error, naming the address.
func Until(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}
