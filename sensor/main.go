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
	"strconv"
	"strings"
	"syscall"

	"github.com/palisade-sec/palisade/shared/logging"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-chown-spool" {
		// Run as root by the chart's init container, before the sensor.
		if err := chownSpool(os.Getenv("PALISADE_SENSOR_SPOOL_DIR"), os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "palisade-sensor:", err)
			os.Exit(1)
		}
		return
	}
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

// chownSpool creates the spool directory and gives it to uid:gid, so that the
// sensor, which runs as that non-root user, can write to a host directory.
func chownSpool(dir, owner string) error {
	if dir == "" {
		return errors.New("-chown-spool: PALISADE_SENSOR_SPOOL_DIR is not set")
	}
	u, g, ok := strings.Cut(owner, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("-chown-spool: %q is not UID:GID", owner)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("spool dir: %w", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("spool dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("spool dir: %w", err)
	}
	return nil
}
