package main

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/ehsink"
	"github.com/palisade-sec/palisade/shared/inventory"
	"github.com/palisade-sec/palisade/shared/logging"
	"github.com/palisade-sec/palisade/shared/model"
)

// decisions sends the webhook's audit and deny decisions on the inventory
// hub, through the agent's queue, in messages of up to maxBatch decisions
// at most every flush interval. Every replica sends its own: each answers
// reviews. A burst beyond the buffer is counted and logged, not queued.
type decisions struct {
	cluster, agent string
	maxBytes       int
	push           func(id string, body []byte) error
	log            zerolog.Logger

	mu      sync.Mutex
	pending []model.Admission
	dropped atomic.Int64
}

const (
	decisionsFlush    = time.Second
	decisionsMaxBatch = 200
	decisionsMaxHeld  = 10000
)

func newDecisions(cluster, agent string, maxBytes int, push func(id string, body []byte) error, log zerolog.Logger) *decisions {
	return &decisions{cluster: cluster, agent: agent, maxBytes: maxBytes, push: push, log: log}
}

// Record implements admission.Recorder.
func (d *decisions) Record(a model.Admission) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.pending) >= decisionsMaxHeld {
		d.dropped.Add(1)
		return
	}
	d.pending = append(d.pending, a)
}

// Run flushes until ctx ends, and once more after.
func (d *decisions) Run(ctx context.Context) {
	t := time.NewTicker(decisionsFlush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.flush()
			return
		case <-t.C:
			d.flush()
		}
	}
}

func (d *decisions) flush() {
	d.mu.Lock()
	all := d.pending
	d.pending = nil
	d.mu.Unlock()
	if n := d.dropped.Swap(0); n > 0 {
		d.log.Warn().Int(logging.FieldCount, int(n)).Msg("admission decisions dropped: more than the buffer holds")
	}
	for len(all) > 0 {
		batch := all[:min(len(all), decisionsMaxBatch)]
		all = all[len(batch):]
		uids := make([]string, len(batch))
		for i, a := range batch {
			uids[i] = a.UID
		}
		id := model.HashID(d.cluster, inventory.KindAdmission, strings.Join(uids, ","))
		m, err := inventory.Encode(inventory.Envelope{Kind: inventory.KindAdmission, ID: id, Cluster: d.cluster, Agent: d.agent,
			Time: batch[len(batch)-1].Time, Admissions: batch}, d.maxBytes)
		if err == nil {
			err = d.push(m.ID, m.Body)
		}
		if err != nil {
			d.log.Error().Err(err).Int(logging.FieldCount, len(batch)).Msg("admission decisions not sent")
		}
	}
}

// queuePush frames a message for the Event Hubs sink's queue.
func queuePush(q interface{ Push(uint8, []byte) }) func(id string, body []byte) error {
	return func(id string, body []byte) error {
		rec, err := ehsink.Frame(id, body)
		if err != nil {
			return err
		}
		q.Push(0, rec)
		return nil
	}
}
