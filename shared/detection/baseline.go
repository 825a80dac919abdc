package detection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
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
// them once learning is over.
type Baselines struct {
	st       store.Store
	d        *Detector
	learning time.Duration
	max      int
	now      func() time.Time
}

// NewBaselines returns baselines stored in st's state container.
func NewBaselines(st store.Store, d *Detector, learning time.Duration, maxDestinations int, now func() time.Time) *Baselines {
	return &Baselines{st: st, d: d, learning: learning, max: maxDestinations, now: now}
}

// conn is one outbound connection of a workload.
type conn struct {
	env  *model.Envelope
	dest string
	at   time.Time
}

// Observe updates the baselines of the workloads in envs and returns a
// NetworkAnomaly hit for each connection outside a baseline whose learning
// period is over.
func (b *Baselines) Observe(ctx context.Context, envs []*model.Envelope) ([]Hit, error) {
	groups := map[string][]conn{}
	for _, e := range envs {
		if e.K8s == nil || e.K8s.Namespace == "" {
			continue
		}
		ip, port, proto := destination(e.OutputFields)
		if ip == "" || port == 0 {
			continue
		}
		key := baselineID(e.Cluster, e.K8s.Namespace, workloadOf(e))
		groups[key] = append(groups[key], conn{env: e, dest: destKey(ip, port, proto), at: e.Time})
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var hits []Hit
	for _, k := range keys {
		h, err := b.observe(ctx, k, groups[k])
		if err != nil {
			return nil, err
		}
		hits = append(hits, h...)
	}
	return hits, nil
}

func (b *Baselines) observe(ctx context.Context, id string, conns []conn) ([]Hit, error) {
	sort.SliceStable(conns, func(i, j int) bool { return conns[i].at.Before(conns[j].at) })
	first := conns[0].env
	for range maxConflicts {
		var st model.State
		var bl Baseline
		etag, err := b.st.Get(ctx, store.State, KindBaseline, id, &st)
		cond := store.Cond{IfMatch: etag}
		switch {
		case errors.Is(err, store.ErrNotFound):
			bl = Baseline{Cluster: first.Cluster, Namespace: first.K8s.Namespace, Workload: workloadOf(first), Since: conns[0].at.UTC()}
			cond = store.Cond{IfNoneMatch: true}
		case err != nil:
			return nil, fmt.Errorf("read network baseline %s: %w", id, err)
		default:
			if err := json.Unmarshal(st.Data, &bl); err != nil {
				return nil, fmt.Errorf("decode network baseline %s: %w", id, err)
			}
		}
		if bl.Destinations == nil {
			bl.Destinations = map[string]Destination{}
		}
		hits, changed := b.apply(&bl, conns)
		if !changed {
			return hits, nil
		}
		data, err := json.Marshal(bl)
		if err != nil {
			return nil, fmt.Errorf("encode network baseline %s: %w", id, err)
		}
		st = model.State{ID: id, Kind: KindBaseline, UpdatedAt: b.now().UTC(), Data: data}
		_, err = b.st.Put(ctx, store.State, KindBaseline, id, st, cond)
		if errors.Is(err, store.ErrPrecondition) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("write network baseline %s: %w", id, err)
		}
		return hits, nil
	}
	return nil, fmt.Errorf("write network baseline %s: %d concurrent updates in a row: %w", id, maxConflicts, store.ErrPrecondition)
}

// apply learns or checks each connection; it reports whether bl changed.
func (b *Baselines) apply(bl *Baseline, conns []conn) (hits []Hit, changed bool) {
	end := bl.Since.Add(b.learning)
	for _, c := range conns {
		d, known := bl.Destinations[c.dest]
		switch {
		case known && d.Flagged == c.env.ID:
			hits = append(hits, b.hit(c))
		case known:
		case c.at.Before(end):
			if len(bl.Destinations) >= b.max {
				bl.Full = true
				continue
			}
			bl.Destinations[c.dest] = Destination{First: c.at.Unix()}
			changed = true
		default:
			hits = append(hits, b.hit(c))
			if len(bl.Destinations) < b.max {
				bl.Destinations[c.dest] = Destination{First: c.at.Unix(), Flagged: c.env.ID}
				changed = true
			}
		}
	}
	return hits, changed
}

func (b *Baselines) hit(c conn) Hit {
	ev := newEvent(c.env)
	h := b.d.runtimeHit(&ev, "NetworkAnomaly")
	h.Evidence["baselineDestination"] = c.dest
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
