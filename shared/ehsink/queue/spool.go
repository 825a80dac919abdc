package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The spool is a directory of segment files. A segment "seg-<first seq>.log"
// holds records appended as events arrive:
//
//	uint32 length of data | uint32 CRC-32C of (seq, priority, data) | uint64 seq | uint8 priority | data
//
// (little endian). Beside it, "seg-<first seq>.done" lists, as uint64s, the
// seqs that were sent or dropped. A segment whose records are all done is
// deleted. A torn record at the end of a segment (a crash in mid-write) ends
// that segment. Each run writes to new segments only.

const recordHeader = 4 + 4 + 8 + 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type segment struct {
	name string // path without extension
	log  *os.File
	done *os.File
	size int64
	live int // records neither sent nor dropped
	full bool
}

type spool struct {
	dir      string
	segBytes int64
	active   *segment
	segs     map[*segment]struct{}
	maxSeq   uint64
	buf      []byte
}

// openSpool opens dir, creating it, and returns the events earlier runs left.
func openSpool(dir string, segBytes int64) (*spool, []Item, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("spool dir: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if err != nil {
		return nil, nil, fmt.Errorf("spool dir: %w", err)
	}
	// Names hold zero-padded hex seqs, so text order is seq order.
	slices.Sort(names)
	sp := &spool{dir: dir, segBytes: segBytes, segs: map[*segment]struct{}{}}
	var items []Item
	for _, n := range names {
		seg, its, err := sp.load(strings.TrimSuffix(n, ".log"))
		if err != nil {
			_ = sp.close() // the load error is the one to report
			return nil, nil, err
		}
		if seg != nil {
			items = append(items, its...)
		}
	}
	return sp, items, nil
}

// load reads one segment left by an earlier run.
func (sp *spool) load(name string) (*segment, []Item, error) {
	done := map[uint64]bool{}
	if b, err := os.ReadFile(name + ".done"); err == nil {
		for i := 0; i+8 <= len(b); i += 8 {
			done[binary.LittleEndian.Uint64(b[i:])] = true
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("spool %s: %w", name, err)
	}
	f, err := os.Open(name + ".log")
	if err != nil {
		return nil, nil, fmt.Errorf("spool %s: %w", name, err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("spool %s: %w", name, err)
	}
	seg := &segment{name: name, log: f, full: true, size: int64(len(b))}
	var items []Item
	for off := 0; off+recordHeader <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		end := off + recordHeader + n
		if n < 0 || end > len(b) || crc32.Checksum(b[off+8:end], castagnoli) != binary.LittleEndian.Uint32(b[off+4:]) {
			break // torn or damaged tail: nothing after it can be trusted
		}
		seq := binary.LittleEndian.Uint64(b[off+8:])
		prio := min(b[off+16], Levels-1)
		sp.maxSeq = max(sp.maxSeq, seq)
		if !done[seq] {
			items = append(items, Item{Seq: seq, Priority: prio, size: n, seg: seg, off: int64(off)})
		}
		off = end
	}
	if len(items) == 0 {
		f.Close()
		sp.remove(seg)
		return nil, nil, nil
	}
	seg.done, err = os.OpenFile(name+".done", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("spool %s: %w", name, err)
	}
	seg.live = len(items)
	sp.segs[seg] = struct{}{}
	return seg, items, nil
}

// append writes one record to the active segment, starting one if needed.
func (sp *spool) append(seq uint64, prio uint8, data []byte) (*segment, int64, error) {
	if sp.active == nil || sp.active.size >= sp.segBytes {
		if err := sp.roll(seq); err != nil {
			return nil, 0, err
		}
	}
	seg := sp.active
	need := recordHeader + len(data)
	if cap(sp.buf) < need {
		sp.buf = make([]byte, need)
	}
	b := sp.buf[:need]
	binary.LittleEndian.PutUint32(b, uint32(len(data)))
	binary.LittleEndian.PutUint64(b[8:], seq)
	b[16] = prio
	copy(b[recordHeader:], data)
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:], castagnoli))
	off := seg.size
	if _, err := seg.log.Write(b); err != nil {
		// A partial write leaves a torn record: start afresh next time.
		seg.full = true
		sp.active = nil
		sp.release(seg)
		return nil, 0, fmt.Errorf("spool write: %w", err)
	}
	seg.size += int64(need)
	seg.live++
	sp.maxSeq = max(sp.maxSeq, seq)
	return seg, off, nil
}

// roll closes the active segment for writing and starts a new one.
func (sp *spool) roll(seq uint64) error {
	if old := sp.active; old != nil {
		old.full = true
		sp.active = nil
		sp.release(old)
	}
	name := filepath.Join(sp.dir, "seg-"+fmt.Sprintf("%016x", seq))
	f, err := os.OpenFile(name+".log", os.O_CREATE|os.O_RDWR|os.O_APPEND|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("spool segment: %w", err)
	}
	d, err := os.OpenFile(name+".done", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		f.Close()
		os.Remove(name + ".log")
		return fmt.Errorf("spool segment: %w", err)
	}
	seg := &segment{name: name, log: f, done: d}
	sp.active = seg
	sp.segs[seg] = struct{}{}
	return nil
}

// read fills in the data of items that are on disk.
func (sp *spool) read(items []Item) error {
	for i := range items {
		it := &items[i]
		if it.seg == nil || it.Data != nil {
			continue
		}
		b := make([]byte, recordHeader+it.size)
		if _, err := it.seg.log.ReadAt(b, it.off); err != nil {
			return fmt.Errorf("spool read %s: %w", it.seg.name, err)
		}
		if crc32.Checksum(b[8:], castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
			return fmt.Errorf("spool read %s at %d: checksum mismatch", it.seg.name, it.off)
		}
		it.Data = b[recordHeader:]
	}
	return nil
}

// done records items as sent or dropped and deletes segments left empty.
// A failed write only means the events may be sent again after a restart.
func (sp *spool) done(items []Item) {
	bySeg := map[*segment][]byte{}
	for _, it := range items {
		bySeg[it.seg] = binary.LittleEndian.AppendUint64(bySeg[it.seg], it.Seq)
		it.seg.live--
	}
	for seg, b := range bySeg {
		if seg.live == 0 && seg.full {
			sp.remove(seg)
			continue
		}
		_, _ = seg.done.Write(b)
	}
}

// release deletes a full segment once nothing in it is live.
func (sp *spool) release(seg *segment) {
	if seg.live == 0 {
		sp.remove(seg)
	}
}

func (sp *spool) remove(seg *segment) {
	if seg.log != nil {
		seg.log.Close()
	}
	if seg.done != nil {
		seg.done.Close()
	}
	os.Remove(seg.name + ".log")
	os.Remove(seg.name + ".done")
	delete(sp.segs, seg)
}

// sync flushes the spool to stable storage.
func (sp *spool) sync() error {
	var errs []error
	for seg := range sp.segs {
		if err := seg.log.Sync(); err != nil {
			errs = append(errs, err)
		}
		if err := seg.done.Sync(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (sp *spool) close() error {
	err := sp.sync()
	for seg := range sp.segs {
		seg.log.Close()
		seg.done.Close()
	}
	sp.segs = nil
	return err
}
