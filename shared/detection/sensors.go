package detection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// KindSensor is the state kind of sensor health: the last event each node's
// sensor sent (id SensorID, SensorNode in State.Data).
const KindSensor = "sensor-node"

// SensorInterval is how often, at most, one process records a node's last
// event: sensor health is minutes-fresh at the cost of one write per node
// and interval, not one per batch.
const SensorInterval = time.Minute

// SensorNode is what is known of one node's sensor.
type SensorNode struct {
	Cluster   string    `json:"cluster"`
	Node      string    `json:"node"`
	LastEvent time.Time `json:"lastEvent"`
}

// SensorID is the state id of a node's sensor record.
func SensorID(cluster, node string) string { return model.HashID(KindSensor, cluster, node) }

// Sensors records the last event of each node's sensor.
type Sensors struct {
	st      store.Store
	now     func() time.Time
	mu      sync.Mutex
	written map[[2]string]time.Time // the last event recorded per cluster and node
}

// NewSensors returns a recorder of sensor health in st's state container.
func NewSensors(st store.Store, now func() time.Time) *Sensors {
	return &Sensors{st: st, now: now, written: map[[2]string]time.Time{}}
}

// Observe records, for each cluster and node of envs, the time of its
// latest event, unless this process recorded one less than SensorInterval
// earlier. An event time in the future (a node's clock ahead) counts as
// now. The stored time only moves forward, so redelivered or late batches
// change nothing.
func (s *Sensors) Observe(ctx context.Context, envs []*model.Envelope) error {
	now := s.now().UTC()
	latest := map[[2]string]time.Time{}
	for _, e := range envs {
		if e.Cluster == "" || e.Node == "" {
			continue
		}
		k := [2]string{e.Cluster, e.Node}
		t := e.Time.UTC()
		if t.After(now) {
			t = now
		}
		if t.After(latest[k]) {
			latest[k] = t
		}
	}
	for k, t := range latest {
		s.mu.Lock()
		done := t.Sub(s.written[k]) < SensorInterval
		s.mu.Unlock()
		if done {
			continue
		}
		if err := s.record(ctx, k[0], k[1], t); err != nil {
			return err
		}
		s.mu.Lock()
		if t.After(s.written[k]) {
			s.written[k] = t
		}
		s.mu.Unlock()
	}
	return nil
}

func (s *Sensors) record(ctx context.Context, cluster, node string, t time.Time) error {
	id := SensorID(cluster, node)
	for range maxConflicts {
		var cur model.State
		etag, err := s.st.Get(ctx, store.State, KindSensor, id, &cur)
		cond := store.Cond{IfMatch: etag}
		switch {
		case errors.Is(err, store.ErrNotFound):
			cond = store.Cond{IfNoneMatch: true}
		case err != nil:
			return fmt.Errorf("read the sensor of %s: %w", node, err)
		default:
			var old SensorNode
			if json.Unmarshal(cur.Data, &old) == nil && !t.After(old.LastEvent) {
				return nil
			}
		}
		data, err := json.Marshal(SensorNode{Cluster: cluster, Node: node, LastEvent: t})
		if err != nil {
			return fmt.Errorf("encode the sensor of %s: %w", node, err)
		}
		_, err = s.st.Put(ctx, store.State, KindSensor, id, model.State{ID: id, Kind: KindSensor, UpdatedAt: t, Data: data}, cond)
		if errors.Is(err, store.ErrPrecondition) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write the sensor of %s: %w", node, err)
		}
		return nil
	}
	return fmt.Errorf("write the sensor of %s: %d concurrent updates in a row: %w", node, maxConflicts, store.ErrPrecondition)
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
