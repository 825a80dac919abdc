// Package queue is the bounded buffer between a cluster-side sender (the
// sensor's Falco events, the agent's inventory messages) and Event Hubs.
//
// Events wait in the queue until the sink has sent them (Take, then Ack), so
// a failed send puts them back (Nack) and nothing is lost to a fault. With a
// spool directory every event is also written to disk on arrival, so the
// queue survives an outage of any length up to its bounds and a restart of
// the sensor. When the queue is full it drops the oldest event of the lowest
// priority present (never one being sent), and counts every drop by reason
// and priority.
package queue

import (
	"errors"
	"fmt"
	"sync"
)

// Levels is the number of priority levels; 0 is the most urgent.
const Levels = 8

// Drop reasons.
const (
	ReasonBufferFull = "buffer_full" // evicted, or refused, because the queue was full
	ReasonTooLarge   = "too_large"   // one event larger than the queue or a batch can hold
	ReasonShutdown   = "shutdown"    // unsent at shutdown with no spool to keep it
	ReasonRejected   = "rejected"    // refused by Event Hubs for good
)

// Options bounds the queue.
type Options struct {
	// MaxEvents and MaxBytes bound the events held, in flight included.
	MaxEvents int
	MaxBytes  int64
	// Dir, when set, is the spool directory: events are kept on disk there
	// and found again by the next Open.
	Dir string
	// SegmentBytes is the size at which the spool starts a new file.
	SegmentBytes int64
}

// Defaults for Options.
const (
	DefaultMaxEvents    = 50_000
	DefaultMaxBytes     = 64 << 20
	DefaultSegmentBytes = 8 << 20
)

func (o *Options) defaults() {
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
}

// ErrClosed is returned by Take after Close.
var ErrClosed = errors.New("queue closed")

// Item is one queued event.
type Item struct {
	Seq      uint64
	Priority uint8
	// Data is the event as it will be sent. Items from Take always have it.
	Data []byte

	size int
	seg  *segment // on disk when set
	off  int64
}

// Queue is safe for concurrent use.
type Queue struct {
	opts Options

	mu       sync.Mutex
	levels   [Levels]deque
	n        int   // events held, in flight included
	bytes    int64 // their size
	inflight int
	inBytes  int64 // size of the events in flight
	nextSeq  uint64
	drops    map[string]*[Levels]uint64
	closed   bool
	ready    chan struct{}
	spool    *spool
	spoolErr uint64
}

// Open returns a queue; with opts.Dir it loads what an earlier run left in
// the spool.
func Open(opts Options) (*Queue, error) {
	opts.defaults()
	q := &Queue{opts: opts, drops: map[string]*[Levels]uint64{}, ready: make(chan struct{}, 1), nextSeq: 1}
	if opts.Dir != "" {
		sp, items, err := openSpool(opts.Dir, opts.SegmentBytes)
		if err != nil {
			return nil, err
		}
		q.spool = sp
		for _, it := range items {
			q.levels[it.Priority].pushBack(it)
			q.n++
			q.bytes += int64(it.size)
			q.nextSeq = max(q.nextSeq, it.Seq+1)
		}
		q.nextSeq = max(q.nextSeq, sp.maxSeq+1)
		// The bounds may have shrunk since the last run.
		for q.n > opts.MaxEvents || q.bytes > opts.MaxBytes {
			if !q.evictLocked(0) {
				break
			}
		}
		if q.n > 0 {
			q.signal()
		}
	}
	return q, nil
}

// Push adds an event of priority prio (0 most urgent, clamped to Levels-1).
// The queue takes ownership of data. It never blocks on a full queue: it
// drops instead and counts the drop.
func (q *Queue) Push(prio uint8, data []byte) {
	prio = min(prio, Levels-1)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.countDrop(ReasonShutdown, prio, 1)
		return
	}
	size := len(data)
	if int64(size) > q.opts.MaxBytes {
		q.countDrop(ReasonTooLarge, prio, 1)
		return
	}
	for q.n+1 > q.opts.MaxEvents || q.bytes+int64(size) > q.opts.MaxBytes {
		if !q.evictLocked(prio) {
			q.countDrop(ReasonBufferFull, prio, 1)
			return
		}
	}
	it := Item{Seq: q.nextSeq, Priority: prio, size: size}
	q.nextSeq++
	if q.spool != nil {
		seg, off, err := q.spool.append(it.Seq, prio, data)
		if err == nil {
			it.seg, it.off = seg, off
		} else {
			// Keep the event in memory rather than lose it; the spool is
			// retried with the next event.
			q.spoolErr++
			it.Data = data
		}
	} else {
		it.Data = data
	}
	q.levels[prio].pushBack(it)
	q.n++
	q.bytes += int64(size)
	q.signal()
}

// evictLocked drops the oldest queued event of the lowest priority present,
// if that priority is not more urgent than incoming. It reports whether it
// made room.
func (q *Queue) evictLocked(incoming uint8) bool {
	for p := Levels - 1; p >= int(incoming) && p >= 0; p-- {
		if q.levels[p].len() == 0 {
			continue
		}
		it := q.levels[p].popFront()
		q.n--
		q.bytes -= int64(it.size)
		q.countDrop(ReasonBufferFull, uint8(p), 1)
		if it.seg != nil {
			q.spool.done([]Item{it})
		}
		return true
	}
	return false
}

func (q *Queue) signal() {
	if q.closed {
		return
	}
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Ready is signalled when events are pushed; a receiver should then Take.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Take removes up to maxItems events, oldest first, whose data add up to at
// most maxBytes (at least one event is returned if any is queued), and holds
// them in flight until Ack or Nack. It returns nothing when the queue is
// empty.
func (q *Queue) Take(maxItems int, maxBytes int64) ([]Item, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, ErrClosed
	}
	var out []Item
	var total int64
	for len(out) < maxItems {
		best := -1
		for p := range Levels {
			if q.levels[p].len() > 0 && (best < 0 || q.levels[p].front().Seq < q.levels[best].front().Seq) {
				best = p
			}
		}
		if best < 0 {
			break
		}
		next := q.levels[best].front()
		if len(out) > 0 && total+int64(next.size) > maxBytes {
			break
		}
		it := q.levels[best].popFront()
		total += int64(it.size)
		out = append(out, it)
	}
	if q.spool != nil {
		if err := q.spool.read(out); err != nil {
			q.putBackLocked(out)
			return nil, err
		}
	}
	q.inflight += len(out)
	q.inBytes += total
	return out, nil
}

// Ack removes sent events for good.
func (q *Queue) Ack(items []Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.releaseLocked(items)
}

// Drop removes in-flight events that can never be sent, counting them.
func (q *Queue) Drop(items []Item, reason string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, it := range items {
		q.countDrop(reason, it.Priority, 1)
	}
	q.releaseLocked(items)
}

func (q *Queue) releaseLocked(items []Item) {
	var disk []Item
	for _, it := range items {
		q.n--
		q.bytes -= int64(it.size)
		if it.seg != nil {
			disk = append(disk, it)
		}
	}
	q.inflight -= len(items)
	q.inBytes -= sizeOf(items)
	if len(disk) > 0 {
		q.spool.done(disk)
	}
}

// Nack returns in-flight events to the queue, at the front, to be sent again.
func (q *Queue) Nack(items []Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inflight -= len(items)
	q.inBytes -= sizeOf(items)
	q.putBackLocked(items)
	if len(items) > 0 {
		q.signal()
	}
}

func sizeOf(items []Item) int64 {
	var n int64
	for _, it := range items {
		n += int64(it.size)
	}
	return n
}

// Pending returns the number and size of events waiting to be taken.
func (q *Queue) Pending() (int, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n - q.inflight, q.bytes - q.inBytes
}

// putBackLocked returns items taken oldest first. They are older than all
// queued events of their priority, so going to the front keeps order.
func (q *Queue) putBackLocked(items []Item) {
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		if it.seg != nil {
			it.Data = nil // read again from the spool when next taken
		}
		q.levels[it.Priority].pushFront(it)
	}
}

func (q *Queue) countDrop(reason string, prio uint8, n uint64) {
	c := q.drops[reason]
	if c == nil {
		c = new([Levels]uint64)
		q.drops[reason] = c
	}
	c[prio] += n
}

// Stats is a snapshot of the queue's counters.
type Stats struct {
	Events      int   // held, in flight included
	Bytes       int64 // their size
	InFlight    int
	SpoolErrors uint64 // events kept in memory because the spool write failed
	// Drops counts dropped events by reason and priority.
	Drops map[string][Levels]uint64
}

// Stats returns a snapshot of the counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{Events: q.n, Bytes: q.bytes, InFlight: q.inflight, SpoolErrors: q.spoolErr, Drops: map[string][Levels]uint64{}}
	for r, c := range q.drops {
		s.Drops[r] = *c
	}
	return s
}

// Sync flushes the spool to stable storage, so that events survive a crash
// of the machine, not only of the sensor. Without a spool it does nothing.
func (q *Queue) Sync() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.spool == nil || q.closed {
		return nil
	}
	if err := q.spool.sync(); err != nil {
		return fmt.Errorf("sync spool: %w", err)
	}
	return nil
}

// Close stops the queue. Events still held stay in the spool for the next
// Open; without a spool they are lost and counted as dropped (shutdown).
// In-flight events should be acked or nacked first.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	close(q.ready)
	if q.spool == nil {
		for p := range Levels {
			if n := q.levels[p].len(); n > 0 {
				q.countDrop(ReasonShutdown, uint8(p), uint64(n))
			}
		}
		return nil
	}
	if err := q.spool.close(); err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}

// deque is a FIFO of items that can also push at the front.
type deque struct {
	buf  []Item
	head int
}

func (d *deque) len() int     { return len(d.buf) - d.head }
func (d *deque) front() *Item { return &d.buf[d.head] }

func (d *deque) pushBack(it Item) { d.buf = append(d.buf, it) }

func (d *deque) popFront() Item {
	it := d.buf[d.head]
	d.buf[d.head] = Item{}
	d.head++
	if d.head == len(d.buf) {
		d.buf, d.head = d.buf[:0], 0
	} else if d.head > 1024 && d.head*2 > len(d.buf) {
		n := copy(d.buf, d.buf[d.head:])
		clear(d.buf[n:])
		d.buf, d.head = d.buf[:n], 0
	}
	return it
}

func (d *deque) pushFront(it Item) {
	if d.head > 0 {
		d.head--
		d.buf[d.head] = it
		return
	}
	// Make room at the front once for a run of pushes (a Nack of a batch).
	room := max(len(d.buf), 16)
	nb := make([]Item, room+len(d.buf))
	copy(nb[room:], d.buf)
	d.buf, d.head = nb, room-1
	d.buf[d.head] = it
}
