package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/sensor/falco"
	"github.com/palisade-sec/palisade/sensor/ops"
	"github.com/palisade-sec/palisade/shared/ehsink"
	"github.com/palisade-sec/palisade/shared/ehsink/queue"
	"github.com/palisade-sec/palisade/shared/falcoevent"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
)

// run runs the sensor until ctx ends, then stops the inputs, sends what is
// buffered within the shutdown timeout and leaves the rest in the spool.
func run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log = log.With().Str(logging.FieldCluster, cfg.ClusterID).Str(logging.FieldNode, cfg.NodeName).Logger()

	qopts := queue.Options{MaxEvents: cfg.BufferMaxEvents, MaxBytes: cfg.BufferMaxBytes}
	if cfg.SpoolDir != "" {
		qopts = queue.Options{Dir: cfg.SpoolDir, MaxEvents: cfg.SpoolMaxEvents, MaxBytes: cfg.SpoolMaxBytes}
	}
	q, err := queue.Open(qopts)
	if err != nil {
		return fmt.Errorf("open buffer: %w", err)
	}
	if st := q.Stats(); st.Events > 0 {
		log.Info().Int(logging.FieldCount, st.Events).Msg("resuming events left in the spool")
	}
	metrics := ops.NewMetrics()

	// Without a connection string: workload identity in AKS, a managed
	// identity or AZURE_* elsewhere.
	snk, err := ehsink.New(ehsink.Options{
		ConnectionString: cfg.EventHubsConnectionString,
		Namespace:        cfg.EventHubsNamespace,
		EventHub:         cfg.EventHubName,
		PartitionKey:     cfg.NodeName,
		ApplicationID:    "palisade-sensor",
		MaxBatchBytes:    cfg.BatchMaxBytes,
		MaxBatchEvents:   cfg.BatchMaxEvents,
		FlushInterval:    cfg.FlushInterval,
		SendTimeout:      cfg.SendTimeout,
		MinBackoff:       cfg.RetryMin,
		MaxBackoff:       cfg.RetryMax,
	}, q, metrics, log)
	if err != nil {
		q.Close()
		return err
	}

	var httpLn, opsLn net.Listener
	closeAll := func() {
		for _, l := range []net.Listener{httpLn, opsLn} {
			if l != nil {
				l.Close()
			}
		}
	}
	if cfg.HTTPAddr != "" {
		if httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			q.Close()
			return fmt.Errorf("http input: %w", err)
		}
	}
	if cfg.OpsAddr != "" {
		if opsLn, err = net.Listen("tcp", cfg.OpsAddr); err != nil {
			closeAll()
			q.Close()
			return fmt.Errorf("ops endpoint: %w", err)
		}
	}

	in := &intake{cluster: cfg.ClusterID, node: cfg.NodeName, q: q, metrics: metrics,
		log: log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Second})}
	opsCtx, stopOps := context.WithCancel(context.WithoutCancel(ctx))
	outer := ctx
	ctx, stopInputs := context.WithCancel(ctx)
	defer stopInputs()
	defer stopOps()
	errc := make(chan error, 4)
	var inputs, opsDone sync.WaitGroup
	if opsLn != nil {
		opsDone.Go(func() { errc <- ops.Serve(opsCtx, opsLn, ops.Handler(metrics, q)) })
	}
	if httpLn != nil {
		h := falco.NewHTTPInput(falco.HTTPOptions{MaxBodyBytes: cfg.HTTPMaxBodyBytes}, in, log)
		inputs.Go(func() { errc <- ops.Serve(ctx, httpLn, h) })
	}
	if cfg.GRPCAddr != "" {
		g := falco.NewGRPCInput(falco.GRPCOptions{
			Address: cfg.GRPCAddr, CertFile: cfg.GRPCCert, KeyFile: cfg.GRPCKey, CARootFile: cfg.GRPCCA,
			PollInterval: cfg.GRPCPollInterval, MinBackoff: cfg.ReconnectMin, MaxBackoff: cfg.ReconnectMax,
		}, in, log)
		inputs.Go(func() { errc <- g.Run(ctx) })
	}
	var sending sync.WaitGroup
	sending.Go(func() { snk.Run(ctx) })
	sending.Go(func() { syncSpool(ctx, q, log) })
	log.Info().Str("http", cfg.HTTPAddr).Str("grpc", cfg.GRPCAddr).Str("ops", cfg.OpsAddr).
		Bool("spool", cfg.SpoolDir != "").Msg("palisade-sensor started")

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		// An input or endpoint failed for good (e.g. bad gRPC settings).
	}
	// Stop taking events, then send what is buffered.
	stopInputs()
	inputs.Wait()
	sending.Wait()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(outer), cfg.ShutdownTimeout)
	left := snk.Drain(dctx)
	closeErr := snk.Close(dctx)
	cancel()
	if err := q.Close(); err != nil {
		closeErr = errors.Join(closeErr, err)
	}
	ev := log.Info()
	if left > 0 {
		ev = log.Warn()
	}
	ev.Int("unsent", left).Bool("kept_in_spool", cfg.SpoolDir != "").Msg("palisade-sensor stopped")
	stopOps()
	opsDone.Wait()
	if closeErr != nil {
		log.Warn().Err(closeErr).Msg("closing")
	}
	return runErr
}

// intake turns the inputs' events into queued records.
type intake struct {
	cluster, node string
	q             *queue.Queue
	metrics       *ops.Metrics
	log           zerolog.Logger
}

var _ falco.Receiver = (*intake)(nil)

// Receive stamps, encodes and queues one event.
func (in *intake) Receive(ev falcoevent.Event, input string) {
	falcoevent.Stamp(&ev.Envelope, in.cluster, in.node)
	rec, err := record(&ev.Envelope)
	if err != nil {
		in.Invalid(input, err)
		return
	}
	in.metrics.Received(input)
	in.q.Push(uint8(ev.Priority), rec)
}

// Invalid counts and logs (sampled) an input that could not be used.
func (in *intake) Invalid(input string, err error) {
	in.metrics.Invalid(input)
	in.log.Warn().Err(err).Str("input", input).Msg("invalid falco event")
}

// record frames an envelope for the queue: its id is the message id.
func record(env *model.Envelope) ([]byte, error) {
	body, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode envelope %s: %w", env.ID, err)
	}
	return ehsink.Frame(env.ID, body)
}

// syncSpool flushes the spool to disk every second.
func syncSpool(ctx context.Context, q *queue.Queue, log zerolog.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := q.Sync(); err != nil {
				log.Warn().Err(err).Msg("spool sync")
			}
		}
	}
}
