// Command palisade-sensor runs beside Falco on every node: it receives
// Falco's alerts (gRPC outputs and http_output JSON), wraps each in a
// Palisade envelope with the cluster's and node's identity, and sends them in
// batches to Event Hubs, buffering (optionally on disk) through outages.
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
		fmt.Fprintln(os.Stderr, "palisade-sensor:", err)
		os.Exit(2)
	}
	if cfg.NodeName == "" {
		cfg.NodeName, _ = os.Hostname()
	}
	log := logging.Stderr(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error().Err(err).Msg("palisade-sensor stopped")
		os.Exit(1)
	}
}
