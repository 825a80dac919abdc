package detection

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/statecache"
)

// KindSensor is the state kind of sensor health: the last event each node's
// sensor sent (id SensorID, SensorNode in State.Data).
const KindSensor = "sensor-node"

// SensorInterval is how often, at most, a node's last event is recorded:
// sensor health is minutes-fresh at the cost of one write per node and
// interval, not one per batch.
const SensorInterval = time.Minute

// SensorNode is what is known of one node's sensor.
type SensorNode struct {
	Cluster   string    `json:"cluster"`
	Node      string    `json:"node"`
	LastEvent time.Time `json:"lastEvent"`
}

// SensorID is the state id of a node's sensor record.
func SensorID(cluster, node string) string { return model.HashID(KindSensor, cluster, node) }

// Sensors records the last event of each node's sensor. It keeps the
// records it read or wrote in memory (statecache), so that a node's record
// is read once and written at most once a SensorInterval; it is safe for
// concurrent invocations.
type Sensors struct {
	st    store.Store
	now   func() time.Time
	cache *statecache.Cache[SensorNode]
}

// NewSensors returns a recorder of sensor health in st's state container.
func NewSensors(st store.Store, now func() time.Time) *Sensors {
	codec := statecache.Codec[SensorNode]{
		Decode: func(raw []byte) (SensorNode, error) {
			var st model.State
			var n SensorNode
			if err := json.Unmarshal(raw, &st); err != nil {
				return n, err
			}
			err := json.Unmarshal(st.Data, &n)
			return n, err
		},
		Encode: func(_, id string, n SensorNode) (any, error) {
			data, err := json.Marshal(n)
			if err != nil {
				return nil, err
			}
			return model.State{ID: id, Kind: KindSensor, UpdatedAt: n.LastEvent, Data: data}, nil
		},
	}
	return &Sensors{st: st, now: now, cache: statecache.New(store.State, codec, statecache.Options{Stage: StateStage})}
}

// Observe records the sensor health of envs (see Stage) in attempts of its
// own.
func (s *Sensors) Observe(ctx context.Context, envs []*model.Envelope) error {
	err := statecache.Run(ctx, s.st, maxConflicts, func(tx *statecache.Tx) error { return s.Stage(ctx, tx, envs) })
	if err != nil {
		return fmt.Errorf("record sensor health: %w", err)
	}
	return nil
}

// Stage stages in tx, for each cluster and node of envs, the time of its
// latest event, unless the record is less than SensorInterval older. An
// event time in the future (a node's clock ahead) counts as now. The stored
// time only moves forward, so redelivered or late batches change nothing.
func (s *Sensors) Stage(ctx context.Context, tx *statecache.Tx, envs []*model.Envelope) error {
	now := s.now().UTC()
	latest := map[[2]string]int{} // cluster and node → index in nodes
	var nodes []SensorNode
	for _, e := range envs {
		if e.Cluster == "" || e.Node == "" {
			continue
		}
		t := e.Time.UTC()
		if t.After(now) {
			t = now
		}
		i, ok := latest[[2]string{e.Cluster, e.Node}]
		if !ok {
			latest[[2]string{e.Cluster, e.Node}] = len(nodes)
			nodes = append(nodes, SensorNode{Cluster: e.Cluster, Node: e.Node, LastEvent: t})
		} else if t.After(nodes[i].LastEvent) {
			nodes[i].LastEvent = t
		}
	}
	keys := make([]store.Key, len(nodes))
	for i, n := range nodes {
		keys[i] = store.Key{PK: KindSensor, ID: SensorID(n.Cluster, n.Node)}
	}
	if err := statecache.Prefetch(ctx, tx, s.cache, keys); err != nil {
		return fmt.Errorf("read sensor records: %w", err)
	}
	for i, k := range keys {
		n := nodes[i]
		_, err := statecache.Update(ctx, tx, s.cache, k.PK, k.ID, func(cur SensorNode, ok bool) (SensorNode, bool) {
			if ok && n.LastEvent.Sub(cur.LastEvent) < SensorInterval {
				return cur, false
			}
			return n, true
		})
		if err != nil {
			return fmt.Errorf("read the sensor of %s: %w", n.Node, err)
		}
	}
	return nil
}

// EachSensor calls fn for every node's sensor record.
func EachSensor(ctx context.Context, st store.Store, fn func(SensorNode) error) error {
	err := store.Each(ctx, st, store.State, store.Query{PartitionKey: KindSensor, Limit: 1000}, func(s model.State) error {
		var n SensorNode
		if err := json.Unmarshal(s.Data, &n); err != nil {
			return fmt.Errorf("decode sensor record %s: %w", s.ID, err)
		}
		return fn(n)
	})
	if err != nil {
		return fmt.Errorf("read sensor records: %w", err)
	}
	return nil
}
