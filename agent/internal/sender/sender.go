// Package sender turns palisade-agent's cache into the inventory stream
// (shared/inventory): a full snapshot when it starts (as the leader) and
// every Resync, the changed objects every FlushInterval (each object at
// most once, whole, or as deleted), a heartbeat when nothing else went out
// for Heartbeat, and the reports of other parts of the agent. Messages go
// to the queue the Event Hubs sink (shared/ehsink) sends from; if the queue
// drops any (an outage longer than it can hold), a new snapshot follows as
// soon as the queue has drained, so the receiver never keeps a gap.
//
// Generations increase across restarts and leaders: a generation is the
// leadership term (the Lease's transition count) times 10^10 plus the
// snapshot's Unix time in seconds (at least one more than the last).
package sender

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/palisade-sec/palisade/shared/ehsink"
	"github.com/palisade-sec/palisade/shared/ehsink/queue"
	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
)

// Source is the cluster view the stream is read from (*cache.Cache).
type Source interface {
	Each(kind string, fn func(runtime.Object) error) error
	Get(r inventory.Ref) (runtime.Object, bool)
	TakeDirty() []inventory.Ref
}

// Queue is where messages wait for the sink (*queue.Queue).
type Queue interface {
	Push(prio uint8, data []byte)
	Pending() (int, int64)
	Stats() queue.Stats
}

// Options configure a Sender.
type Options struct {
	// Cluster is the cluster's identity on every message; Agent names this
	// instance.
	Cluster, Agent string
	// Resync is the time between full snapshots (default 1h),
	// FlushInterval between changes messages (default 5s), Heartbeat the
	// longest silence (default 5m).
	Resync, FlushInterval, Heartbeat time.Duration
	// MaxMessageBytes bounds each message (default inventory.DefaultMaxBytes).
	MaxMessageBytes int
	// Custom reads, at each snapshot, what the informers do not hold: the
	// Cilium and Calico network policies and the custom resources not
	// assessed (inventory.CollectCustom). Nil: nothing.
	Custom func(context.Context, *inventory.Objects) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.Resync <= 0 {
		o.Resync = time.Hour
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 5 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Minute
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = inventory.DefaultMaxBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// termScale separates terms in a generation.
const termScale = 10_000_000_000

// Stats count what the sender did.
type Stats struct {
	Snapshots, SnapshotParts, SnapshotBytes int64
	Changes, ChangedObjects, Heartbeats     int64
	Reports, Skipped, Refused               int64
	// LastSnapshot is how long the last snapshot took to encode.
	LastSnapshot time.Duration
	Generation   int64
}

// Sender produces the stream. Run, Report and Stats are safe to call
// concurrently.
type Sender struct {
	opts Options
	src  Source
	q    Queue
	log  zerolog.Logger

	mu       sync.Mutex
	gen, seq int64
	lastSent time.Time
	drops    uint64 // the queue's drops seen so far
	stats    Stats
}

// New returns a sender of src's objects into q.
func New(opts Options, src Source, q Queue, log zerolog.Logger) *Sender {
	opts.defaults()
	return &Sender{opts: opts, src: src, q: q, log: log.With().Str(logging.FieldComponent, "sender").Logger()}
}

// Stats returns the counters.
func (s *Sender) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Generation = s.gen
	return st
}

// Run streams until ctx ends: a snapshot now, then changes, heartbeats
// and resyncs. term is the leadership term (0 without leader election).
func (s *Sender) Run(ctx context.Context, term int64) error {
	if err := s.Snapshot(ctx, term); err != nil {
		return err
	}
	flush := time.NewTicker(s.opts.FlushInterval)
	defer flush.Stop()
	resync := time.NewTicker(s.opts.Resync)
	defer resync.Stop()
	needSnapshot := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-resync.C:
			needSnapshot = true
		case <-flush.C:
		}
		if s.dropped() {
			s.log.Warn().Msg("the send queue dropped messages: a new snapshot follows once it has drained")
			needSnapshot = true
		}
		var err error
		switch n, _ := s.q.Pending(); {
		case needSnapshot && n == 0:
			needSnapshot = false
			err = s.Snapshot(ctx, term)
		default:
			err = s.Flush()
			if err == nil && s.opts.Now().Sub(s.lastSentAt()) >= s.opts.Heartbeat {
				err = s.heartbeat()
			}
		}
		if err != nil {
			return err
		}
	}
}

// dropped reports whether the queue dropped messages since the last call.
func (s *Sender) dropped() bool {
	var total uint64
	for _, byPrio := range s.q.Stats().Drops {
		for _, n := range byPrio {
			total += n
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	more := total > s.drops
	s.drops = total
	return more
}

func (s *Sender) lastSentAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSent
}

// nextGeneration returns a generation above every earlier one of this
// process, of term.
func (s *Sender) nextGeneration(term int64, now time.Time) int64 {
	g := term*termScale + now.Unix()
	if g <= s.gen {
		g = s.gen + 1
	}
	return g
}

// Snapshot sends a full snapshot of the cache as a new generation. Changes
// noted until now are part of it. What Custom cannot read is sent as not
// assessed, not left out.
func (s *Sender) Snapshot(ctx context.Context, term int64) error {
	start := s.opts.Now()
	s.src.TakeDirty()
	s.mu.Lock()
	gen := s.nextGeneration(term, start)
	s.mu.Unlock()
	b, err := inventory.NewBuilder(inventory.Envelope{Kind: inventory.KindSnapshot, Cluster: s.opts.Cluster, Agent: s.opts.Agent,
		Time: start.UTC(), Generation: gen}, s.opts.MaxMessageBytes)
	if err != nil {
		return err
	}
	for _, k := range inventory.Kinds {
		err := s.src.Each(k.Name, func(obj runtime.Object) error { return b.Add(k.Name, obj) })
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
	}
	if err := s.addCustom(ctx, b); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	msgs, err := b.Finish()
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	var bytes int64
	for _, m := range msgs {
		bytes += int64(len(m.Body))
	}
	s.mu.Lock()
	s.gen, s.seq = gen, 0
	s.stats.Snapshots++
	s.stats.SnapshotParts += int64(len(msgs))
	s.stats.SnapshotBytes = bytes
	s.stats.Skipped += int64(len(b.Skipped()))
	s.stats.LastSnapshot = s.opts.Now().Sub(start)
	s.mu.Unlock()
	if err := s.push(msgs); err != nil {
		return err
	}
	ev := s.log.Info()
	if len(b.Skipped()) > 0 {
		ev = s.log.Warn().Int("skipped", len(b.Skipped()))
	}
	ev.Int64("generation", gen).Int("parts", len(msgs)).Int64("bytes", bytes).
		Dur(logging.FieldDuration, s.opts.Now().Sub(start)).Msg("snapshot queued")
	return nil
}

// addCustom adds what Custom reads to a snapshot.
func (s *Sender) addCustom(ctx context.Context, b *inventory.Builder) error {
	if s.opts.Custom == nil {
		return nil
	}
	var o inventory.Objects
	if err := s.opts.Custom(ctx, &o); err != nil {
		s.log.Warn().Err(err).Msg("custom resources not read")
		o.NotAssessed = append(o.NotAssessed, model.PostureNotAssessed{Kind: "*", Source: "cluster",
			Reason: "the agent could not read the custom resources: " + err.Error()})
	}
	for i := range o.CNIPolicies {
		if err := b.AddCNIPolicy(&o.CNIPolicies[i]); err != nil {
			return err
		}
	}
	for _, na := range o.NotAssessed {
		if err := b.AddNotAssessed(na); err != nil {
			return err
		}
	}
	return nil
}

// Flush sends the objects changed since the last snapshot or flush.
func (s *Sender) Flush() error {
	refs := s.src.TakeDirty()
	if len(refs) == 0 {
		return nil
	}
	s.mu.Lock()
	gen, seq := s.gen, s.seq
	s.mu.Unlock()
	if gen == 0 {
		return nil // no snapshot yet: the first one will carry them
	}
	b, err := inventory.NewBuilder(inventory.Envelope{Kind: inventory.KindChanges, Cluster: s.opts.Cluster, Agent: s.opts.Agent,
		Time: s.opts.Now().UTC(), Generation: gen, Seq: seq + 1}, s.opts.MaxMessageBytes)
	if err != nil {
		return err
	}
	var gone []inventory.Ref
	var refused int64
	for _, r := range refs {
		obj, ok := s.src.Get(r)
		if !ok {
			gone = append(gone, r)
			continue
		}
		if err := b.Add(r.Kind, obj); err != nil {
			// Too large for a message: the next snapshot lists it as skipped.
			refused++
			s.log.Warn().Err(err).Str("object", r.String()).Msg("change not sent")
		}
	}
	for _, r := range gone {
		if err := b.Delete(r); err != nil {
			refused++
			s.log.Warn().Err(err).Str("object", r.String()).Msg("deletion not sent")
		}
	}
	msgs, err := b.Finish()
	if err != nil {
		return fmt.Errorf("changes: %w", err)
	}
	s.mu.Lock()
	if s.gen == gen { // a snapshot in between would have covered these
		s.seq += int64(len(msgs))
	}
	s.stats.Changes += int64(len(msgs))
	s.stats.ChangedObjects += int64(len(refs)) - refused
	s.stats.Refused += refused
	s.mu.Unlock()
	return s.push(msgs)
}

func (s *Sender) heartbeat() error {
	now := s.opts.Now().UTC()
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	m, err := inventory.Encode(inventory.Envelope{Kind: inventory.KindHeartbeat, Cluster: s.opts.Cluster, Agent: s.opts.Agent, Time: now, Generation: gen,
		ID: inventory.MessageID(s.opts.Cluster, inventory.KindHeartbeat, gen, now.UnixNano())}, s.opts.MaxMessageBytes)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.stats.Heartbeats++
	s.mu.Unlock()
	return s.push([]inventory.Message{m})
}

// Report sends the outcomes of remediation instructions.
func (s *Sender) Report(recs []model.Remediation) error {
	if len(recs) == 0 {
		return nil
	}
	now := s.opts.Now().UTC()
	id := model.HashID(s.opts.Cluster, inventory.KindRemediation, s.opts.Agent, strconv.FormatInt(now.UnixNano(), 10))
	m, err := inventory.Encode(inventory.Envelope{Kind: inventory.KindRemediation, ID: id, Cluster: s.opts.Cluster, Agent: s.opts.Agent,
		Time: now, Remediations: recs}, s.opts.MaxMessageBytes)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.stats.Reports++
	s.mu.Unlock()
	return s.push([]inventory.Message{m})
}

func (s *Sender) push(msgs []inventory.Message) error {
	for _, m := range msgs {
		rec, err := ehsink.Frame(m.ID, m.Body)
		if err != nil {
			return err
		}
		s.q.Push(0, rec)
	}
	if len(msgs) > 0 {
		s.mu.Lock()
		s.lastSent = s.opts.Now()
		s.mu.Unlock()
	}
	return nil
}
