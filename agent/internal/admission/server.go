package admission

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/palisade-sec/palisade/shared/serve"
)

// Serve answers reviews at path over TLS on ln, with the certificate
// getCert gives (renewed certificates are served as they come), until ctx
// ends.
func Serve(ctx context.Context, ln net.Listener, path string, h http.Handler, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) error {
	mux := http.NewServeMux()
	mux.Handle(path, h)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: getCert},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	if err := serve.Until(ctx, srv, ln); err != nil {
		return fmt.Errorf("admission webhook: %w", err)
	}
	return nil
}
