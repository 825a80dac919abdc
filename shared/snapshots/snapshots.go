// Package snapshots keeps the latest complete snapshot of each cluster from
// what its palisade-agent sends (shared/inventory messages), in the clusters
// container, which it alone reads and writes. Delivery is at least once and
// may replay or reorder messages, so every write is keyed by what the
// message is (cluster, generation, part or seq) and the state only moves
// forward:
//
//   - a snapshot part is stored as received; the generation's progress item
//     records which parts arrived, and the last part says how many there
//     are. When all are in, the generation is loaded (parts, then the
//     changes received for it in seq order) and, if it is newer than the
//     head's, becomes the head: the cluster's latest complete snapshot.
//     Older generations are then deleted. A partial snapshot is never read.
//   - changes of the head's generation are stored and read with it from
//     then on; changes of a newer generation wait (stored) for it to
//     complete; changes of an older one are stale and dropped.
//   - every message moves the head's LastSeen forward, so a silent agent
//     shows (ClusterInventory.Stale).
package snapshots

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// Item types in the clusters container.
const (
	typeHead       = "head"
	typeGeneration = "generation"
	typePart       = "part"
	typeChanges    = "changes"
)

// Errors.
var (
	// ErrNoSnapshot: the cluster has no complete snapshot (or no agent).
	ErrNoSnapshot = errors.New("no complete snapshot")
	// ErrBroken: a complete generation could not be read back (a part or
	// change that does not decode, or a missing part).
	ErrBroken = errors.New("snapshot cannot be assembled")
)

// Options configure the Store.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store keeps snapshots in a store.Store.
type Store struct {
	st  store.Store
	now func() time.Time
}

// New returns a Store over st.
func New(st store.Store, opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{st: st, now: opts.Now}
}

// item is a stored part or changes message, as received.
type item struct {
	ID         string    `json:"id"`
	Cluster    string    `json:"cluster"`
	Type       string    `json:"type"`
	Generation int64     `json:"generation"`
	N          int64     `json:"n"` // part number or seq
	At         time.Time `json:"at"`
	Body       []byte    `json:"body,omitempty"`
}

// progress records the parts of one generation that arrived.
type progress struct {
	ID         string    `json:"id"`
	Cluster    string    `json:"cluster"`
	Type       string    `json:"type"`
	Generation int64     `json:"generation"`
	Parts      int       `json:"parts"` // 0 until the last part arrives
	Received   []int     `json:"received"`
	SnapshotAt time.Time `json:"snapshotAt"`
	Skipped    []string  `json:"skipped,omitempty"`
}

func (p *progress) complete() bool { return p.Parts > 0 && len(p.Received) == p.Parts }

func headID(cluster string) string { return model.HashID(typeHead, cluster) }

func itemID(cluster, typ string, gen, n int64) string {
	return model.HashID(cluster, typ, strconv.FormatInt(gen, 10), strconv.FormatInt(n, 10))
}

// Outcomes of Take.
const (
	// Stored: kept for a generation that is not complete yet.
	Stored = "stored"
	// Completed: the message completed a generation, now the head.
	Completed = "completed"
	// Applied: changes of the head's generation.
	Applied = "applied"
	// Stale: about a generation older than the head's; dropped.
	Stale = "stale"
	// Seen: a heartbeat.
	Seen = "seen"
)

// Result is what Take did with a message.
type Result struct {
	Outcome string
	// Snapshot is the new latest snapshot (Completed).
	Snapshot *Snapshot
	// Changed are the objects a changes message brought (Applied).
	Changed *inventory.Objects
}

// Snapshot is a cluster's latest complete snapshot, changes applied.
type Snapshot struct {
	Head    model.ClusterInventory
	Objects inventory.Objects
}

// Take stores one decoded message (body is the message as received) and
// moves the cluster's state forward. Taking the same message again changes
// nothing. Messages of kinds other than snapshot, changes and heartbeat are
// not Take's: they fail.
func (s *Store) Take(ctx context.Context, e *inventory.Envelope, body []byte) (Result, error) {
	now := s.now().UTC()
	seen := e.Time.UTC()
	if seen.After(now) {
		seen = now
	}
	head, err := s.Head(ctx, e.Cluster)
	if err != nil && !errors.Is(err, ErrNoSnapshot) {
		return Result{}, err
	}
	err = nil
	var res Result
	switch e.Kind {
	case inventory.KindHeartbeat:
		res.Outcome = Seen
	case inventory.KindChanges:
		res, err = s.takeChanges(ctx, e, body, head)
	case inventory.KindSnapshot:
		res, err = s.takePart(ctx, e, body, head)
	default:
		return Result{}, fmt.Errorf("snapshots: %s messages are not inventory", e.Kind)
	}
	if err != nil {
		return res, err
	}
	_, err = s.updateHead(ctx, e.Cluster, func(h *model.ClusterInventory) bool {
		changed := false
		if res.Snapshot != nil && h.Generation < res.Snapshot.Head.Generation {
			gen := res.Snapshot.Head
			h.Generation, h.Parts, h.SnapshotAt, h.CompletedAt, h.Objects, h.Skipped, h.Changes =
				gen.Generation, gen.Parts, gen.SnapshotAt, now, gen.Objects, gen.Skipped, gen.Changes
			changed = true
		}
		if e.Kind == inventory.KindChanges && e.Generation == h.Generation && e.Seq > h.Changes {
			h.Changes, changed = e.Seq, true
		}
		if seen.After(h.LastSeen) {
			h.LastSeen, h.LastSeenUnix, h.Agent, changed = seen, seen.Unix(), e.Agent, true
		}
		return changed
	})
	if err != nil {
		return res, err
	}
	if res.Snapshot != nil {
		if err := s.prune(ctx, e.Cluster, res.Snapshot.Head.Generation); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (s *Store) takeChanges(ctx context.Context, e *inventory.Envelope, body []byte, head model.ClusterInventory) (Result, error) {
	if e.Generation < head.Generation {
		return Result{Outcome: Stale}, nil
	}
	if err := s.putItem(ctx, e, typeChanges, e.Seq, body); err != nil {
		return Result{}, err
	}
	if e.Generation > head.Generation {
		return Result{Outcome: Stored}, nil
	}
	changed := e.Objects
	if changed == nil {
		changed = &inventory.Objects{}
	}
	return Result{Outcome: Applied, Changed: changed}, nil
}

func (s *Store) takePart(ctx context.Context, e *inventory.Envelope, body []byte, head model.ClusterInventory) (Result, error) {
	if e.Generation <= head.Generation {
		return Result{Outcome: Stale}, nil
	}
	if err := s.putItem(ctx, e, typePart, int64(e.Part), body); err != nil {
		return Result{}, err
	}
	prog, err := s.updateProgress(ctx, e)
	if err != nil {
		return Result{}, err
	}
	if !prog.complete() {
		return Result{Outcome: Stored}, nil
	}
	snap, err := s.load(ctx, e.Cluster, prog)
	if err != nil {
		return Result{}, err
	}
	return Result{Outcome: Completed, Snapshot: snap}, nil
}

func (s *Store) putItem(ctx context.Context, e *inventory.Envelope, typ string, n int64, body []byte) error {
	it := item{ID: itemID(e.Cluster, typ, e.Generation, n), Cluster: e.Cluster, Type: typ, Generation: e.Generation, N: n, At: e.Time.UTC(), Body: body}
	if _, err := s.st.Put(ctx, store.Clusters, e.Cluster, it.ID, it, store.Cond{}); err != nil {
		return fmt.Errorf("store %s %d of generation %d of %s: %w", typ, n, e.Generation, e.Cluster, err)
	}
	return nil
}

// maxAttempts bounds optimistic-concurrency retries of one update.
const maxAttempts = 8

// updateProgress records a part of e's generation.
func (s *Store) updateProgress(ctx context.Context, e *inventory.Envelope) (progress, error) {
	id := itemID(e.Cluster, typeGeneration, e.Generation, 0)
	for range maxAttempts {
		var p progress
		etag, err := s.st.Get(ctx, store.Clusters, e.Cluster, id, &p)
		cond := store.Cond{IfMatch: etag}
		switch {
		case errors.Is(err, store.ErrNotFound):
			p = progress{ID: id, Cluster: e.Cluster, Type: typeGeneration, Generation: e.Generation}
			cond = store.Cond{IfNoneMatch: true}
		case err != nil:
			return p, fmt.Errorf("read progress of generation %d of %s: %w", e.Generation, e.Cluster, err)
		}
		i, found := slices.BinarySearch(p.Received, e.Part)
		if found && (e.Parts == 0 || p.Parts == e.Parts) {
			return p, nil // a part seen before
		}
		if !found {
			p.Received = slices.Insert(p.Received, i, e.Part)
		}
		if e.Part == 0 || p.SnapshotAt.IsZero() {
			p.SnapshotAt = e.Time.UTC()
		}
		if e.Parts > 0 {
			p.Parts = e.Parts
			for _, r := range e.Skipped {
				p.Skipped = append(p.Skipped, r.String())
			}
		}
		_, err = s.st.Put(ctx, store.Clusters, e.Cluster, id, p, cond)
		if errors.Is(err, store.ErrPrecondition) {
			continue
		}
		if err != nil {
			return p, fmt.Errorf("write progress of generation %d of %s: %w", e.Generation, e.Cluster, err)
		}
		return p, nil
	}
	return progress{}, fmt.Errorf("progress of generation %d of %s kept changing", e.Generation, e.Cluster)
}

// updateHead applies fn to the cluster's head and writes it when fn
// reports a change.
func (s *Store) updateHead(ctx context.Context, cluster string, fn func(*model.ClusterInventory) bool) (model.ClusterInventory, error) {
	id := headID(cluster)
	for range maxAttempts {
		var h model.ClusterInventory
		etag, err := s.st.Get(ctx, store.Clusters, cluster, id, &h)
		cond := store.Cond{IfMatch: etag}
		switch {
		case errors.Is(err, store.ErrNotFound):
			h = model.ClusterInventory{ID: id, Cluster: cluster, Type: typeHead}
			cond = store.Cond{IfNoneMatch: true}
		case err != nil:
			return h, fmt.Errorf("read inventory head of %s: %w", cluster, err)
		}
		if !fn(&h) {
			return h, nil
		}
		_, err = s.st.Put(ctx, store.Clusters, cluster, id, h, cond)
		if errors.Is(err, store.ErrPrecondition) {
			continue
		}
		if err != nil {
			return h, fmt.Errorf("write inventory head of %s: %w", cluster, err)
		}
		return h, nil
	}
	return model.ClusterInventory{}, fmt.Errorf("inventory head of %s kept changing", cluster)
}

// Head returns the cluster's head; ErrNoSnapshot (with the head, which may
// show the agent's last contact) when no snapshot has completed.
func (s *Store) Head(ctx context.Context, cluster string) (model.ClusterInventory, error) {
	var h model.ClusterInventory
	_, err := s.st.Get(ctx, store.Clusters, cluster, headID(cluster), &h)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return h, fmt.Errorf("cluster %s: %w", cluster, ErrNoSnapshot)
	case err != nil:
		return h, fmt.Errorf("read inventory head of %s: %w", cluster, err)
	case h.Generation == 0:
		return h, fmt.Errorf("cluster %s: %w", cluster, ErrNoSnapshot)
	}
	return h, nil
}

// Heads lists the clusters that have an agent, one page at a time.
func (s *Store) Heads(ctx context.Context, cur store.Cursor) (store.List[model.ClusterInventory], error) {
	q := store.Query{Filters: []store.Filter{{Field: "type", Op: store.Eq, Value: typeHead}}}
	return store.QueryList[model.ClusterInventory](ctx, s.st, store.Clusters, q, cur)
}

// Latest reads a cluster's latest complete snapshot, with the changes
// received since applied.
func (s *Store) Latest(ctx context.Context, cluster string) (*Snapshot, error) {
	h, err := s.Head(ctx, cluster)
	if err != nil {
		return nil, err
	}
	snap, err := s.load(ctx, cluster, progress{Generation: h.Generation, Parts: h.Parts, SnapshotAt: h.SnapshotAt, Skipped: h.Skipped})
	if err != nil {
		return nil, err
	}
	snap.Head = h
	return snap, nil
}

// load assembles a generation: its parts in order, then its changes in
// seq order.
func (s *Store) load(ctx context.Context, cluster string, p progress) (*Snapshot, error) {
	q := store.Query{PartitionKey: cluster, Limit: 8, Filters: []store.Filter{{Field: "generation", Op: store.Eq, Value: p.Generation}}}
	var parts, changes []item
	err := store.Each(ctx, s.st, store.Clusters, q, func(it item) error {
		switch it.Type {
		case typePart:
			parts = append(parts, it)
		case typeChanges:
			changes = append(changes, it)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read generation %d of %s: %w", p.Generation, cluster, err)
	}
	byN := func(a, b item) int { return cmp.Compare(a.N, b.N) }
	slices.SortFunc(parts, byN)
	slices.SortFunc(changes, byN)
	if len(parts) != p.Parts {
		return nil, fmt.Errorf("%w: generation %d of %s has %d of %d parts", ErrBroken, p.Generation, cluster, len(parts), p.Parts)
	}
	snap := &Snapshot{Head: model.ClusterInventory{Cluster: cluster, Generation: p.Generation, Parts: p.Parts, SnapshotAt: p.SnapshotAt, Skipped: p.Skipped}}
	for i, it := range append(parts, changes...) {
		if i < len(parts) && it.N != int64(i) {
			return nil, fmt.Errorf("%w: generation %d of %s lacks part %d", ErrBroken, p.Generation, cluster, i)
		}
		e, err := inventory.Decode(it.Body)
		if err != nil {
			return nil, fmt.Errorf("%w: generation %d of %s, %s %d: %v", ErrBroken, p.Generation, cluster, it.Type, it.N, err)
		}
		if e.Objects == nil {
			e.Objects = &inventory.Objects{}
		}
		snap.Objects.Apply(e.Objects, e.Deleted)
		if it.Type == typeChanges {
			snap.Head.Changes = it.N
		}
	}
	snap.Head.Objects = snap.Objects.Count()
	return snap, nil
}

// prune deletes what older generations left: parts, changes and progress.
func (s *Store) prune(ctx context.Context, cluster string, gen int64) error {
	q := store.Query{PartitionKey: cluster, Limit: 8, Filters: []store.Filter{
		{Field: "generation", Op: store.Lt, Value: gen}, {Field: "type", Op: store.Ne, Value: typeHead}}}
	var ids []string
	err := store.Each(ctx, s.st, store.Clusters, q, func(it struct {
		ID string `json:"id"`
	}) error {
		ids = append(ids, it.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("list old generations of %s: %w", cluster, err)
	}
	for _, id := range ids {
		if err := s.st.Delete(ctx, store.Clusters, cluster, id); err != nil {
			return fmt.Errorf("delete old inventory of %s: %w", cluster, err)
		}
	}
	return nil
}
