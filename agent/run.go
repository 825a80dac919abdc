package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/palisade-sec/palisade/agent/internal/cache"
	"github.com/palisade-sec/palisade/agent/internal/ops"
	"github.com/palisade-sec/palisade/agent/internal/remediation"
	"github.com/palisade-sec/palisade/agent/internal/sender"
	"github.com/palisade-sec/palisade/shared/ehsink"
	"github.com/palisade-sec/palisade/shared/ehsink/queue"
	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
)

// Leader election timing: client-go's usual values.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// run runs the agent until ctx ends: it fills the cache, and while it
// leads (or alone) sends the inventory and carries out remediations; at the
// end it sends what is queued within the shutdown timeout.
func run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log = log.With().Str(logging.FieldCluster, cfg.ClusterID).Str("agent", cfg.Name).Logger()
	rc, err := restConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	c, err := cache.New(kc)
	if err != nil {
		return err
	}
	q, err := queue.Open(queue.Options{MaxEvents: 1 << 20, MaxBytes: cfg.BufferMaxBytes})
	if err != nil {
		return fmt.Errorf("open buffer: %w", err)
	}
	sent := &ops.Sent{}
	// Without a connection string: workload identity in AKS, a managed
	// identity or AZURE_* elsewhere, as for the sensor.
	snk, err := ehsink.New(ehsink.Options{
		ConnectionString: cfg.EventHubsConnectionString,
		Namespace:        cfg.EventHubsNamespace,
		EventHub:         cfg.EventHubName,
		// One cluster's messages stay in order on one partition; the
		// cluster id itself may pass the 128-character key limit.
		PartitionKey:  model.HashID(cfg.ClusterID),
		ContentType:   "application/gzip",
		ApplicationID: "palisade-agent",
		FlushInterval: 250 * time.Millisecond,
		SendTimeout:   cfg.SendTimeout,
		MinBackoff:    cfg.RetryMin,
		MaxBackoff:    cfg.RetryMax,
	}, q, sent, log)
	if err != nil {
		q.Close()
		return err
	}
	dc, err := dynamic.NewForConfig(rc)
	if err != nil {
		q.Close()
		return fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	// Cilium and Calico policies and the count of other custom resources
	// are read at each snapshot, as assessposture's direct path reads them.
	custom := func(ctx context.Context, o *inventory.Objects) error {
		return inventory.CollectCustom(ctx, kc.Discovery(), dc, o)
	}
	snd := sender.New(sender.Options{Cluster: cfg.ClusterID, Agent: cfg.Name, Resync: cfg.Resync, FlushInterval: cfg.FlushInterval,
		Heartbeat: cfg.Heartbeat, MaxMessageBytes: cfg.MaxMessageBytes, Custom: custom}, c, q, log)
	var rem *remediation.Remediator
	if cfg.Remediation {
		rem, err = remediation.New(remediation.Options{APIURL: cfg.APIURL, Key: cfg.APIKey, Cluster: cfg.ClusterID, Interval: cfg.RemediationInterval}, kc, snd, log)
		if err != nil {
			q.Close()
			return err
		}
	}

	var leader atomic.Bool
	outer := ctx
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if cfg.OpsAddr != "" {
		ln, err := net.Listen("tcp", cfg.OpsAddr)
		if err != nil {
			q.Close()
			return fmt.Errorf("ops endpoint: %w", err)
		}
		h := ops.Handler(sent, func() ops.State {
			objs := map[string]int{}
			for _, k := range inventory.Kinds {
				objs[k.Name] = c.Len(k.Name)
			}
			return ops.State{Synced: c.Synced(), Leader: leader.Load(), Sender: snd.Stats(), Queue: q.Stats(), Objects: objs}
		})
		opsCtx, stopOps := context.WithCancel(context.WithoutCancel(outer))
		defer stopOps()
		wg.Go(func() {
			if err := ops.Serve(opsCtx, ln, h); err != nil {
				errc <- err
			}
		})
		defer func() { stopOps(); wg.Wait() }()
	}
	c.Start(ctx)
	start := time.Now()
	if err := c.WaitForSync(ctx); err != nil {
		q.Close()
		if outer.Err() != nil {
			return nil
		}
		return err
	}
	log.Info().Dur(logging.FieldDuration, time.Since(start)).Bool("leader_election", cfg.LeaderElection).
		Bool("remediation", rem != nil).Msg("palisade-agent cache synced")

	var gating sync.WaitGroup
	defer gating.Wait()
	if cfg.Gate.Addr != "" {
		rec := newDecisions(cfg.ClusterID, cfg.Name, cfg.MaxMessageBytes, queuePush(q), log)
		if err := startGate(ctx, cfg, kc, c, rec, &gating, errc, log); err != nil {
			q.Close()
			return err
		}
		gating.Go(func() { rec.Run(ctx) })
	}
	var sending sync.WaitGroup
	sending.Go(func() { snk.Run(ctx) })
	lead := func(ctx context.Context, term int64) {
		leader.Store(true)
		defer leader.Store(false)
		log.Info().Int64("term", term).Msg("leading: sending the inventory")
		var w sync.WaitGroup
		if rem != nil {
			w.Go(func() { rem.Run(ctx) })
		}
		if err := snd.Run(ctx, term); err != nil {
			errc <- err
		}
		w.Wait()
	}
	sending.Go(func() {
		if cfg.LeaderElection {
			elect(ctx, kc, cfg, log, lead)
		} else {
			lead(ctx, 0)
		}
	})
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	stop()
	sending.Wait()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(outer), cfg.ShutdownTimeout)
	left := snk.Drain(dctx)
	closeErr := snk.Close(dctx)
	cancel()
	closeErr = errors.Join(closeErr, q.Close())
	ev := log.Info()
	if left > 0 {
		ev = log.Warn()
	}
	ev.Int("unsent", left).Msg("palisade-agent stopped")
	if closeErr != nil {
		log.Warn().Err(closeErr).Msg("closing")
	}
	return runErr
}

// restConfig reads a kubeconfig, or the in-cluster service account. It
// asks for protobuf, cheaper to decode than JSON for the watch streams.
func restConfig(kubeconfig string) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes configuration: %w", err)
	}
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	rc.UserAgent = "palisade-agent"
	rc.QPS, rc.Burst = 20, 40
	return rc, nil
}

// elect campaigns for the Lease until ctx ends and calls lead for each
// term won, with the term's number: the Lease's transition count, which
// grows with every change of holder. The identity is new for each process,
// so a restarted agent starts a new term.
func elect(ctx context.Context, kc kubernetes.Interface, cfg Config, log zerolog.Logger, lead func(context.Context, int64)) {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	id := cfg.Name + "_" + hex.EncodeToString(suffix)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: cfg.LeaseName, Namespace: cfg.Namespace},
		Client:     kc.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, Name: cfg.LeaseName, ReleaseOnCancel: true,
			LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					l, err := kc.CoordinationV1().Leases(cfg.Namespace).Get(ctx, cfg.LeaseName, metav1.GetOptions{})
					if err != nil {
						log.Error().Err(err).Msg("read the lease just won")
						return
					}
					var term int64
					if t := l.Spec.LeaseTransitions; t != nil {
						term = int64(*t)
					}
					lead(ctx, term)
				},
				OnStoppedLeading: func() { log.Info().Msg("not leading") },
			},
		})
		if err != nil {
			log.Error().Err(err).Msg("leader election")
			return
		}
		le.Run(ctx)
	}
}
