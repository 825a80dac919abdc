// Package detection turns runtime events (Falco, through the sensor's
// envelopes) and the hits of the audit rules into Defender-style alerts: it
// holds the alert-type catalogue, the runtime rules, the folding of hits into
// one alert per (cluster, type, entity, window), the merge of those alerts
// into the store (idempotent under redelivery), enrichment with the image's
// open vulnerabilities, and per-workload network baselines.
package detection

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
)

// MaxEventIDs bounds the event ids an alert keeps, so that an alert
// document stays small however many events it counts. A redelivered batch
// is recognised by the Event Hubs position of its events (see Position and
// model.Alert.Watermarks); the recent ids catch the same event sent twice
// by the sensor (a resend after a lost acknowledgement, close behind the
// first) and redeliveries that came without positions.
const MaxEventIDs = 32

// MaxWatermarks bounds the partitions an alert keeps a watermark for; an
// Event Hubs namespace has at most 32 partitions a hub (Premium: 100), so
// only the events of an unusually wide hub rely on the recent ids alone.
const MaxWatermarks = 128

// Position is where an event was read: the Event Hubs partition, as
// "hub/partition id", the event's sequence number in it and its enqueued
// time (Unix milliseconds, 0 when unknown). The zero Position is unknown.
type Position struct {
	Partition  string
	Seq        int64
	EnqueuedMs int64
}

// counted reports whether the event at p is at or below w: counted
// already, when w was raised by events of the same partition read in
// order.
func (p Position) counted(w model.Watermark) bool {
	if p.Seq > w.Seq {
		return false
	}
	return p.EnqueuedMs == 0 || w.EnqueuedMs == 0 || p.EnqueuedMs <= w.EnqueuedMs
}

// Positions returns the positions of a batch read from one partition, or
// nil when seqs cannot be trusted to be positions: not one an event, or not
// increasing, as a partition's sequence numbers always are. enqueued (Unix
// milliseconds, parallel to seqs) may be nil.
func Positions(partition string, seqs, enqueued []int64, events int) []Position {
	if partition == "" || len(seqs) != events {
		return nil
	}
	if len(enqueued) != len(seqs) {
		enqueued = nil
	}
	out := make([]Position, len(seqs))
	for i, s := range seqs {
		if s < 0 || (i > 0 && s <= seqs[i-1]) {
			return nil
		}
		out[i] = Position{Partition: partition, Seq: s}
		if enqueued != nil {
			out[i].EnqueuedMs = enqueued[i]
		}
	}
	return out
}

// Detector applies the rules and folds hits into alerts. It holds no I/O and
// is safe for concurrent use.
type Detector struct {
	types       typeIndex
	window      time.Duration
	minPriority int
	thresholds  map[string]int
	ttl         time.Duration
}

// Options configure a Detector. Zero values take the defaults noted.
type Options struct {
	// Window is the de-duplication window: one alert per (cluster, type,
	// entity) per window. Default one hour.
	Window time.Duration
	// MinFalcoPriority is the lowest priority of a Falco rule without a
	// mapped alert type that still raises a generic alert. Default warning.
	MinFalcoPriority string
	// FailedAuthBurst, SecretReadBurst and ReconBurst are the counts within
	// a window that raise the burst alert types. Defaults 10, 20 and 5.
	FailedAuthBurst, SecretReadBurst, ReconBurst int
	// AlertTTL is how long alerts are kept in the store; 0 keeps them.
	AlertTTL time.Duration
}

func (o *Options) defaults() {
	if o.Window == 0 {
		o.Window = time.Hour
	}
	if o.MinFalcoPriority == "" {
		o.MinFalcoPriority = "warning"
	}
	for _, d := range []struct {
		n   *int
		def int
	}{{&o.FailedAuthBurst, 10}, {&o.SecretReadBurst, 20}, {&o.ReconBurst, 5}} {
		if *d.n == 0 {
			*d.n = d.def
		}
	}
}

// NewDetector returns a detector configured by opts.
func NewDetector(opts Options) (*Detector, error) {
	opts.defaults()
	idx, err := newTypeIndex()
	if err != nil {
		return nil, err
	}
	if opts.Window < 0 {
		return nil, fmt.Errorf("alert window must be positive, got %s", opts.Window)
	}
	d := &Detector{types: idx, window: opts.Window, minPriority: priorityRank(opts.MinFalcoPriority), ttl: opts.AlertTTL,
		thresholds: map[string]int{"FailedAuthBurst": opts.FailedAuthBurst, "SecretReadBurst": opts.SecretReadBurst, "ReconnaissanceBurst": opts.ReconBurst}}
	for name, t := range idx {
		if t.Burst && d.thresholds[name] < 1 {
			return nil, fmt.Errorf("burst alert type %s has no threshold", name)
		}
	}
	return d, nil
}

// Threshold is the count at which an alert of type name is raised (1 for
// all but burst types).
func (d *Detector) Threshold(name string) int {
	if n := d.thresholds[name]; n > 0 {
		return n
	}
	return 1
}

// Fold is one alert built from the hits of one batch, with the ids of the
// distinct events that made it and where each was read.
type Fold struct {
	Alert     model.Alert
	EventIDs  []string
	Positions []Position // one an event id; zero when unknown
	seen      map[string]struct{}
}

// Batch folds the hits of one batch of events. Not safe for concurrent use.
type Batch struct {
	d     *Detector
	folds map[string]*Fold
	buf   []Hit
	pos   Position
}

// SetPosition says where the events whose hits are added next were read.
func (b *Batch) SetPosition(p Position) { b.pos = p }

// NewBatch starts a batch.
func (d *Detector) NewBatch() *Batch { return &Batch{d: d, folds: map[string]*Fold{}} }

// AddEnvelope applies the runtime rules to e and folds the hits. It returns
// how many hits the event raised.
func (b *Batch) AddEnvelope(e *model.Envelope) int {
	b.buf = b.d.runtimeHits(e, b.buf[:0])
	for i := range b.buf {
		b.Add(b.buf[i])
	}
	return len(b.buf)
}

// Add folds one hit, read at the batch's current position unless the hit
// has its own. A hit of an unknown type is a programming error and panics.
func (b *Batch) Add(h Hit) {
	t, ok := b.d.types[h.Type]
	if !ok {
		panic("detection: unknown alert type " + h.Type)
	}
	at := time.Unix(0, h.Time).UTC()
	ws := at.Truncate(b.d.window)
	idType := h.Type
	if h.Key != "" {
		idType += "/" + h.Key
	}
	id := model.AlertID(h.Cluster, idType, h.Entity, ws)
	f, ok := b.folds[id]
	if !ok {
		f = &Fold{Alert: b.d.newAlert(id, t, &h, ws, at), seen: map[string]struct{}{}}
		b.folds[id] = f
	}
	if _, dup := f.seen[h.EventID]; dup {
		return
	}
	f.seen[h.EventID] = struct{}{}
	f.EventIDs = append(f.EventIDs, h.EventID)
	if h.Pos == (Position{}) {
		h.Pos = b.pos
	}
	f.Positions = append(f.Positions, h.Pos)
	a := &f.Alert
	a.Count = len(f.EventIDs)
	if at.Before(a.FirstSeen) {
		a.FirstSeen = at
	}
	if !at.Before(a.LastSeen) {
		a.LastSeen, a.LastSeenUnix = at, at.Unix()
		a.Evidence, a.Rule, a.User = h.Evidence, h.Rule, h.User
		if h.Pod != "" {
			a.Pod, a.Container = h.Pod, h.Container
		}
	}
	a.Techniques = union(a.Techniques, h.Techniques)
	a.Status = b.d.status(a.Type, a.Count, "")
}

func (d *Detector) newAlert(id string, t *AlertType, h *Hit, ws, at time.Time) model.Alert {
	sev := t.Severity
	if h.Severity != "" {
		sev = h.Severity
	}
	title := t.Title
	if h.Key != "" {
		title += ": " + h.Key
	}
	a := model.Alert{
		ID: id, Cluster: h.Cluster, Type: t.Name, RefType: t.RefType, Title: title, Description: t.Description,
		Severity: sev, SeverityRank: sev.Rank(), Tactics: t.Tactics, Techniques: union(nil, t.Techniques),
		Source: t.Source, Entity: h.Entity, Namespace: h.Namespace, Workload: h.Workload, Pod: h.Pod,
		Container: h.Container, Image: h.Image, ImageDigest: h.ImageDigest, Node: h.Node, User: h.User,
		Rule: h.Rule, WindowStart: ws, FirstSeen: at, LastSeen: at, LastSeenUnix: at.Unix(),
		Evidence: h.Evidence, RemediationSteps: t.Remediation, Status: model.AlertNew,
	}
	if d.ttl > 0 {
		a.TTL = int(d.ttl / time.Second)
	}
	return a
}

// status is the status of an alert of type typ with count events: pending
// below the type's threshold, else new. A status set by a person (active,
// resolved, dismissed: see Triage) is kept, so that a detection repeating
// within the alert's window does not undo the triage.
func (d *Detector) status(typ string, count int, current string) string {
	if triaged(current) {
		return current
	}
	if count < d.Threshold(typ) {
		return model.AlertPending
	}
	return model.AlertNew
}

// triaged reports whether only a person sets an alert to status.
func triaged(status string) bool {
	return status == model.AlertActive || status == model.AlertResolved || status == model.AlertDismissed
}

// Folds returns the batch's alerts, ordered by id.
func (b *Batch) Folds() []*Fold {
	out := make([]*Fold, 0, len(b.folds))
	for _, f := range b.folds {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Alert.ID < out[j].Alert.ID })
	return out
}

// Alerts returns the batch's alerts on their own (no store), ordered by
// last seen then id, with at most MaxEventIDs event ids each. Pending burst
// alerts are included; callers filter on Status.
func (b *Batch) Alerts() []model.Alert {
	folds := b.Folds()
	out := make([]model.Alert, len(folds))
	for i, f := range folds {
		out[i] = f.Alert
		out[i].EventIDs = lastN(f.EventIDs, MaxEventIDs)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastSeen.Before(out[j].LastSeen) })
	return out
}

// Len is the number of alerts in the batch.
func (b *Batch) Len() int { return len(b.folds) }

func union(a, b []string) []string {
	for _, x := range b {
		found := false
		for _, y := range a {
			if x == y {
				found = true
				break
			}
		}
		if !found {
			a = append(a, x)
		}
	}
	return a
}

func lastN(ids []string, n int) []string {
	if len(ids) > n {
		ids = ids[len(ids)-n:]
	}
	return append([]string(nil), ids...)
}

// raise returns the next severity up, capped at critical.
func raise(s model.Severity) model.Severity {
	switch s {
	case model.SeverityHigh, model.SeverityCritical:
		return model.SeverityCritical
	case model.SeverityMedium:
		return model.SeverityHigh
	case model.SeverityLow:
		return model.SeverityMedium
	}
	return model.SeverityLow
}

// ParkedID is the deterministic id of a parked input, so a redelivered bad
// event is parked once.
func ParkedID(function, raw string) string { return model.HashID(model.KindParked, function, raw) }

// NewParked builds the record of an input set aside with its reason and the
// first bytes of the input.
func NewParked(function, reason, raw string, at time.Time) model.Parked {
	return model.Parked{ID: ParkedID(function, raw), Kind: model.KindParked, Function: function,
		Reason: truncate(reason, 1024), Sample: truncate(strings.ToValidUTF8(raw, "\uFFFD"), 2048), At: at}
}
