// Command palisade-agent runs inside every protected cluster (a Deployment
// of the Helm chart) and reaches out only: it keeps the cluster's objects
// that posture evaluates, and the images that run, in client-go informers,
// and sends them to the "inventory" event hub as a full snapshot at start
// and every resync period and as changes in between (shared/inventory),
// through the same Event Hubs sink and workload identity as
// palisade-sensor. With remediation on, it fetches the opted-in patches
// from the Palisade API and applies them with server-side apply. Of
// several replicas, the holder of a Lease does the sending.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/palisade-sec/palisade/shared/logging"
)

func main() {
	cfg, err := loadConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "palisade-agent:", err)
		os.Exit(2)
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	log := logging.Stderr(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error().Err(err).Msg("palisade-agent stopped")
		os.Exit(1)
	}
}
