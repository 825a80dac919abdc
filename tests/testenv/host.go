package testenv

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/customhandler"
	"github.com/palisade-sec/palisade/shared/funchost"
)

// Host serves handler on a loopback port, as the handler binary would, and
// returns the Functions host emulator attached to it with the repository's
// host.json and function.json files. Both stop when the test ends.
func Host(t testing.TB, handler http.Handler, log zerolog.Logger) *funchost.Host {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = customhandler.Serve(ctx, "127.0.0.1:0", handler, func(a net.Addr) { addr <- a })
	}()
	t.Cleanup(func() { cancel(); <-done })
	app, err := funchost.LoadApp(Root(t))
	if err != nil {
		t.Fatal(err)
	}
	return funchost.Attach(app, "http://"+(<-addr).String(), log)
}
