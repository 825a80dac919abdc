package detection

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/statecache"
)

// KindBaseline is the state kind of network baselines.
const KindBaseline = "netbaseline"

// Baseline is one workload's learned outbound destinations (state kind
// "netbaseline"). Private addresses are kept as "private:port/proto",
// because pod and service addresses change with every rollout; public ones
// as "address:port/proto".
type Baseline struct {
	Cluster      string                 `json:"cluster"`
	Namespace    string                 `json:"namespace"`
	Workload     string                 `json:"workload"`
	Since        time.Time              `json:"since"` // the first connection seen
	Destinations map[string]Destination `json:"destinations"`
	Full         bool                   `json:"full,omitempty"` // MaxDestinations reached while learning
}

// Destination is one learned destination.
type Destination struct {
	First int64 `json:"first"` // Unix seconds
	// Flagged is the event that raised an alert for this destination after
	// learning, so that a redelivery of that event raises it again.
	Flagged string `json:"flagged,omitempty"`
}

// Baselines learns per-workload destinations and flags connections outside
// them once learning is over. It keeps the baselines it read or wrote in
// memory (statecache), so that a workload's baseline is read once and
// written only when it changes; it is safe for concurrent invocations.
type Baselines struct {
	st       store.Store
	d        *Detector
	learning time.Duration
	max      int
	cache    *statecache.Cache[Baseline]
}

// BaselineOptions configure Baselines. Zero values take the defaults noted.
type BaselineOptions struct {
	// Learning is how long a workload's destinations are learned.
	// Default 24h.
	Learning time.Duration
	// MaxDestinations bounds one workload's baseline. Default 2000.
	MaxDestinations int
	// MaxCached bounds the baselines an instance keeps in memory.
	// Default 1000.
	MaxCached int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewBaselines returns baselines stored in st's state container.
func NewBaselines(st store.Store, d *Detector, opts BaselineOptions) *Baselines {
	if opts.Learning == 0 {
		opts.Learning = 24 * time.Hour
	}
	if opts.MaxDestinations <= 0 {
		opts.MaxDestinations = 2000
	}
	if opts.MaxCached <= 0 {
		opts.MaxCached = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	now := opts.Now
	codec := statecache.Codec[Baseline]{
		Decode: func(raw []byte) (Baseline, error) {
			var st model.State
			var bl Baseline
			if err := json.Unmarshal(raw, &st); err != nil {
				return bl, err
			}
			err := json.Unmarshal(st.Data, &bl)
			return bl, err
		},
		Encode: func(_, id string, bl Baseline) (any, error) {
			data, err := json.Marshal(bl)
			if err != nil {
				return nil, err
			}
			return model.State{ID: id, Kind: KindBaseline, UpdatedAt: now().UTC(), Data: data}, nil
		},
	}
	return &Baselines{st: st, d: d, learning: opts.Learning, max: opts.MaxDestinations,
		cache: statecache.New(store.State, codec, statecache.Options{MaxEntries: opts.MaxCached, Stage: StateStage})}
}

// conn is one outbound connection of a workload.
type conn struct {
	env  *model.Envelope
	pos  Position
	dest string
	at   time.Time
}

// Observe updates the baselines of the workloads in envs, in attempts of
// its own (see Stage), and returns the NetworkAnomaly hits.
func (b *Baselines) Observe(ctx context.Context, envs []*model.Envelope) ([]Hit, error) {
	var hits []Hit
	err := statecache.Run(ctx, b.st, maxConflicts, func(tx *statecache.Tx) error {
		var err error
		hits, err = b.Stage(ctx, tx, envs, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update network baselines: %w", err)
	}
	return hits, nil
}

// Stage stages in tx the baseline changes of the workloads in envs (read
// at positions pos, parallel to envs, or nil when unknown), at most one
// write a workload, and returns a NetworkAnomaly hit for each connection
// outside a baseline whose learning period is over.
func (b *Baselines) Stage(ctx context.Context, tx *statecache.Tx, envs []*model.Envelope, pos []Position) ([]Hit, error) {
	groups := map[string][]conn{}
	for i, e := range envs {
		if e.K8s == nil || e.K8s.Namespace == "" {
			continue
		}
		ip, port, proto := destination(e.OutputFields)
		if ip == "" || port == 0 {
			continue
		}
		c := conn{env: e, dest: destKey(ip, port, proto), at: e.Time}
		if pos != nil {
			c.pos = pos[i]
		}
		key := baselineID(e.Cluster, e.K8s.Namespace, workloadOf(e))
		groups[key] = append(groups[key], c)
	}
	ids := slices.Sorted(maps.Keys(groups))
	keys := make([]store.Key, len(ids))
	for i, id := range ids {
		keys[i] = store.Key{PK: KindBaseline, ID: id}
	}
	if err := statecache.Prefetch(ctx, tx, b.cache, keys); err != nil {
		return nil, fmt.Errorf("read network baselines: %w", err)
	}
	var hits []Hit
	for _, k := range ids {
		conns := groups[k]
		sort.SliceStable(conns, func(i, j int) bool { return conns[i].at.Before(conns[j].at) })
		first := conns[0]
		var found []Hit
		_, err := statecache.Update(ctx, tx, b.cache, KindBaseline, k, func(cur Baseline, ok bool) (Baseline, bool) {
			if !ok {
				cur = Baseline{Cluster: first.env.Cluster, Namespace: first.env.K8s.Namespace, Workload: workloadOf(first.env), Since: first.at.UTC()}
			}
			next, h, changed := b.apply(cur, conns)
			found = h
			return next, changed || !ok
		})
		if err != nil {
			return nil, fmt.Errorf("network baseline %s: %w", k, err)
		}
		hits = append(hits, found...)
	}
	return hits, nil
}

// apply learns or checks each connection against cur, which it does not
// modify: it returns the baseline with its changes (a copy when there are
// any) and whether there were.
func (b *Baselines) apply(cur Baseline, conns []conn) (next Baseline, hits []Hit, changed bool) {
	next = cur
	end := cur.Since.Add(b.learning)
	cloned := false
	set := func(dest string, d Destination) {
		if !cloned {
			next.Destinations = maps.Clone(cur.Destinations)
			if next.Destinations == nil {
				next.Destinations = map[string]Destination{}
			}
			cloned = true
		}
		next.Destinations[dest] = d
		changed = true
	}
	for _, c := range conns {
		d, known := next.Destinations[c.dest]
		switch {
		case known && d.Flagged == c.env.ID:
			hits = append(hits, b.hit(c))
		case known:
		case c.at.Before(end):
			if len(next.Destinations) >= b.max {
				if !next.Full {
					next.Full, changed = true, true
				}
				continue
			}
			set(c.dest, Destination{First: c.at.Unix()})
		default:
			hits = append(hits, b.hit(c))
			if len(next.Destinations) < b.max {
				set(c.dest, Destination{First: c.at.Unix(), Flagged: c.env.ID})
			}
		}
	}
	return next, hits, changed
}

func (b *Baselines) hit(c conn) Hit {
	ev := newEvent(c.env)
	h := b.d.runtimeHit(&ev, "NetworkAnomaly")
	h.Evidence["baselineDestination"] = c.dest
	h.Pos = c.pos
	return h
}

func baselineID(cluster, ns, workload string) string {
	return model.HashID(KindBaseline, cluster, ns, workload)
}

func workloadOf(e *model.Envelope) string {
	if e.K8s.Workload != "" {
		return e.K8s.Workload
	}
	return WorkloadFromPod(e.K8s.Pod)
}

func destKey(ip string, port int, proto string) string {
	if proto == "" {
		proto = "tcp"
	}
	a, err := netip.ParseAddr(ip)
	host := ip
	if err == nil && (a.IsPrivate() || a.IsLoopback() || cgnat.Contains(a)) {
		host = "private"
	}
	return host + ":" + strconv.Itoa(port) + "/" + proto
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")
