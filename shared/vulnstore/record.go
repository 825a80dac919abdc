// Package vulnstore owns the images, inventory and findings containers: it
// is the only code that reads or writes them. Scan on push and rescans record
// through it (the image summary, its package inventory in chunks, and its
// findings, keeping each finding's first-seen time and resolving findings
// that are gone), so the two agree on what a finding's history means; the
// query API, detection (enrichment of alerts) and posture (vulnerability
// checks) read through it.
//
// Every write is an upsert of a deterministic id: recording the same scan
// twice leaves the same data. A finding that a scan finds unchanged is not
// rewritten (its LastSeen stays at the last scan that changed it; the
// image's ScannedAt is when it was last confirmed).
//
// Each image's open vulnerabilities are also kept as one small summary
// (model.ImageVulns, in the state container), rewritten by every write of
// its findings (Record, MarkDeleted, ApplyIntel; a new write path of
// findings must keep it too), so that views across images read one item
// per image instead of every finding.
//
// Writing: Record, RecordFailed, MarkDeleted, AddTag, RebuildSummary, and ApplyIntel (the
// exploitation data, VEX suppression and priority of the findings of
// changed CVEs, found through the CVE index that Record keeps). A finding a
// VEX statement suppresses stays stored but is left out of its image's
// counts and of OpenFindings. Reading one image: Lookup,
// GetImage, Findings, Inventory, InventoryChunks, OpenFindings. Lists:
// ListImages and ListFindings (a page at a time, for the API; findings of
// one image or of all), ActiveImages (pages of the rescan's window),
// EachImage, ResolveTag. EachSummary. ReadRunning reads which images run where.
package vulnstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// Scan is one scan (or re-match) of an image to record.
type Scan struct {
	Image     model.Image
	Inventory *model.Inventory // nil: keep the stored inventory (rescans)
	Findings  []model.Finding
	// SeenAt stamps first/last seen and resolution times; scan on push uses
	// the push time so a redelivered event writes identical data.
	SeenAt time.Time
	// Stored is the image summary as the caller already read it with
	// Lookup; nil makes Record read it.
	Stored *Stored
	// Intel, when set, annotates each finding with its exploitation data
	// and priority; Running says whether the image runs in a monitored
	// cluster (the priority depends on it). Without Intel a finding keeps
	// the exploitation data and priority stored with it.
	Intel   Annotator
	Running bool
}

// Stored is what the store held of an image summary when Lookup read it.
// Writes based on it are conditional on it being unchanged: a concurrent
// push of the same digest under another tag makes the write read the
// summary again and merge, so no tag is lost.
type Stored struct {
	Image model.Image
	Found bool   // false: the digest had no summary
	etag  string // of the summary read
}

// maxConflicts bounds the re-reads when concurrent writers update the same
// image summary.
const maxConflicts = 8

// Changes is what recording a scan changed. It is counted against the
// scan's time (SeenAt), so recording a scan again after an attempt that was
// cut short reports the same changes.
type Changes struct {
	New      int // findings seen for the first time (or open again)
	Resolved int // open findings no longer present
	Open     int // open findings after the scan
	// NewFindings are the New findings, in the order given, each with
	// FirstSeen at the scan's time: when it appeared (or appeared again).
	NewFindings []model.Finding
	// Image is the summary as written (its tags merged with those stored)
	// and Vulns its open vulnerabilities, one per id.
	Image model.Image
	Vulns []model.VulnRef
}

// Record writes a scan: inventory first, then findings, then the image's
// vulnerability summary (state image-vulns), and the image summary last,
// so a summary naming a DB version always has its findings stored (a crash
// in between is repaired by the redelivery). The summary's tags are those
// stored plus the scan's.
func Record(ctx context.Context, st store.Store, sc Scan) (Changes, error) {
	digest := sc.Image.Digest
	if err := model.CheckDigest(digest); err != nil {
		return Changes{}, err
	}
	if sc.Inventory != nil {
		if err := putInventory(ctx, st, digest, *sc.Inventory); err != nil {
			return Changes{}, err
		}
	}
	existing, err := Findings(ctx, st, digest)
	if err != nil {
		return Changes{}, err
	}
	var ch Changes
	current := map[string]bool{}
	var writes []store.Write
	open := make([]model.Finding, 0, len(sc.Findings))
	for _, f := range sc.Findings {
		current[f.ID] = true
		f.LastSeen = sc.SeenAt
		f.FirstSeen = sc.SeenAt
		f.Status, f.ResolvedAt = model.FindingOpen, time.Time{}
		old, had := existing[f.ID]
		if had {
			f.FirstSeen = old.FirstSeen
			keepIntel(&f, old)
		}
		if sc.Intel != nil {
			sc.Intel.Annotate(&f, sc.Running)
		}
		if !had || old.Status != model.FindingOpen || old.FirstSeen.Equal(sc.SeenAt) {
			ch.New++
			added := f
			added.FirstSeen = sc.SeenAt
			ch.NewFindings = append(ch.NewFindings, added)
		}
		ch.Open++
		open = append(open, f)
		if had && sameButLastSeen(old, f) {
			continue
		}
		writes = append(writes, store.Write{Container: store.Findings, PK: digest, ID: f.ID, Value: f})
	}
	for id, old := range existing {
		if current[id] {
			continue
		}
		if old.Status != model.FindingOpen {
			if old.ResolvedAt.Equal(sc.SeenAt) {
				ch.Resolved++ // by an attempt of this scan that was cut short
			}
			continue
		}
		old.Status, old.ResolvedAt = model.FindingResolved, sc.SeenAt
		writes = append(writes, store.Write{Container: store.Findings, PK: digest, ID: id, Value: old})
		ch.Resolved++
	}
	// The findings, then the index of the open ones, in one batch.
	index, stale, err := indexWrites(ctx, st, digest, sc.Running, open, sc.SeenAt)
	if err != nil {
		return Changes{}, err
	}
	if err := writeAll(ctx, st, writes, index); err != nil {
		return Changes{}, fmt.Errorf("store %d findings of %s and their CVE index: %w", len(writes), digest, err)
	}
	if err := dropIndexChunks(ctx, st, digest, len(index), stale); err != nil {
		return Changes{}, err
	}
	sum := Summarize(digest, sc.Findings)
	if err := putSummary(ctx, st, sum, sc.SeenAt); err != nil {
		return Changes{}, err
	}
	ch.Vulns = sum.Vulns
	img := sc.Image
	img.ID = model.ImageID(digest)
	uncount(&img, open)
	err = putImage(ctx, st, sc.Stored, digest, func(prev Stored) model.Image {
		next := img
		if prev.Found {
			next.Tags = mergeTags(prev.Image.Tags, img.Tags)
		}
		ch.Image = next
		return next
	})
	if err != nil {
		return Changes{}, err
	}
	return ch, nil
}

// putImage writes the summary next makes of the stored one (prev, or read
// when nil), conditional on the stored one being unchanged; a conflict
// reads it again and retries.
func putImage(ctx context.Context, st store.Store, prev *Stored, digest string, next func(Stored) model.Image) error {
	for range maxConflicts {
		if prev == nil {
			p, err := Lookup(ctx, st, digest)
			if err != nil {
				return err
			}
			prev = &p
		}
		img := next(*prev)
		cond := store.Cond{IfMatch: prev.etag, IfNoneMatch: !prev.Found}
		_, err := st.Put(ctx, store.Images, digest, img.ID, img, cond)
		if errors.Is(err, store.ErrPrecondition) {
			prev = nil
			continue
		}
		if err != nil {
			return fmt.Errorf("store image %s: %w", digest, err)
		}
		return nil
	}
	return fmt.Errorf("store image %s: %d concurrent updates in a row: %w", digest, maxConflicts, store.ErrPrecondition)
}

// Failure is a scan that failed for good (a hostile or broken image, a
// timeout): what the trigger knows of the image and why.
type Failure struct {
	Digest, Registry, Repository, MediaType string
	Tag                                     string // "" when pushed by digest
	Err                                     error
	DBVersion                               string
	PushedAt, ScannedAt                     time.Time
	EventID                                 string
	Stored                                  *Stored // as in Scan
}

// RecordFailed stores an image whose scan failed: status failed with the
// error, no findings (open ones of an earlier scan are resolved at the push
// time), so that the image is listed and not mistaken for clean.
func RecordFailed(ctx context.Context, st store.Store, f Failure) (Changes, error) {
	img := model.Image{
		ID: model.ImageID(f.Digest), Digest: f.Digest, Registry: f.Registry, Repository: f.Repository,
		MediaType: f.MediaType, Status: model.ImageFailed, DBVersion: f.DBVersion, Counts: model.Counts{},
		PushedAt: f.PushedAt, PushedUnix: f.PushedAt.Unix(), LastEventID: f.EventID,
		ScannedAt: f.ScannedAt.UTC(), ScannedUnix: f.ScannedAt.Unix(),
	}
	if f.Err != nil {
		img.Error = f.Err.Error()
	}
	if f.Tag != "" {
		img.Tags = []string{f.Tag}
	}
	return Record(ctx, st, Scan{Image: img, SeenAt: f.PushedAt, Stored: f.Stored})
}

// AddTag records another tag of an already scanned image, as Lookup read
// it.
func AddTag(ctx context.Context, st store.Store, stored Stored, tag string) error {
	if tag == "" || slices.Contains(stored.Image.Tags, tag) {
		return nil
	}
	if !stored.Found {
		return fmt.Errorf("tag %s of %s: %w", tag, stored.Image.Digest, store.ErrNotFound)
	}
	err := putImage(ctx, st, &stored, stored.Image.Digest, func(prev Stored) model.Image {
		img := prev.Image
		img.Tags = mergeTags(img.Tags, []string{tag})
		return img
	})
	if err != nil {
		return fmt.Errorf("tag %s: %w", tag, err)
	}
	return nil
}

func putInventory(ctx context.Context, st store.Store, digest string, inv model.Inventory) error {
	chunks := inv.Chunk(digest, 0)
	prev := 0
	var first model.InventoryChunk
	if _, err := st.Get(ctx, store.Inventory, digest, model.InventoryChunkID(digest, 0), &first); err == nil {
		prev = first.Chunks
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read inventory of %s: %w", digest, err)
	}
	for _, c := range chunks {
		if _, err := st.Put(ctx, store.Inventory, digest, c.ID, c, store.Cond{}); err != nil {
			return fmt.Errorf("store inventory chunk %d of %s: %w", c.Index, digest, err)
		}
	}
	for i := len(chunks); i < prev; i++ {
		if err := st.Delete(ctx, store.Inventory, digest, model.InventoryChunkID(digest, i)); err != nil {
			return fmt.Errorf("drop stale inventory chunk %d of %s: %w", i, digest, err)
		}
	}
	return nil
}

// MarkDeleted records that an image left the registry: its summary becomes
// deleted (created as a tombstone when it was never scanned) and its open
// findings are resolved at the deletion time. Repeating it changes nothing.
func MarkDeleted(ctx context.Context, st store.Store, img model.Image, at time.Time) (resolved int, err error) {
	digest := img.Digest
	prev, err := GetImage(ctx, st, digest)
	switch {
	case err == nil:
		if prev.Status == model.ImageDeleted {
			at = prev.DeletedAt
		}
		img = prev
	case errors.Is(err, store.ErrNotFound):
		img.ID = model.ImageID(digest)
		img.Counts = model.Counts{}
	default:
		return 0, err
	}
	existing, err := Findings(ctx, st, digest)
	if err != nil {
		return 0, err
	}
	for id, f := range existing {
		if f.Status != model.FindingOpen {
			continue
		}
		f.Status, f.ResolvedAt = model.FindingResolved, at
		if _, err := st.Put(ctx, store.Findings, digest, id, f, store.Cond{}); err != nil {
			return resolved, fmt.Errorf("resolve finding %s of %s: %w", f.VulnID, digest, err)
		}
		resolved++
	}
	if err := deleteIndex(ctx, st, digest); err != nil {
		return resolved, err
	}
	if err := st.Delete(ctx, store.State, model.KindImageVulns, digest); err != nil {
		return resolved, fmt.Errorf("drop the vulnerability summary of %s: %w", digest, err)
	}
	img.Status, img.DeletedAt, img.Counts, img.MaxRank = model.ImageDeleted, at, model.Counts{}, 0
	if _, err := st.Put(ctx, store.Images, digest, img.ID, img, store.Cond{}); err != nil {
		return resolved, fmt.Errorf("store deleted image %s: %w", digest, err)
	}
	return resolved, nil
}

// uncount leaves the suppressed findings out of the image's counts.
func uncount(img *model.Image, open []model.Finding) {
	var c model.Counts
	for _, f := range open {
		if f.Suppressed != nil && img.Counts[f.Severity] > 0 {
			if c == nil {
				c = maps.Clone(img.Counts)
			}
			c[f.Severity]--
		}
	}
	if c != nil {
		img.SetCounts(c)
	}
}

// keepIntel copies what a stored finding holds beyond the scan's own data:
// its exploitation data and priority (which the annotator refreshes, or
// which stay as they are without one) and its suppression, which the
// source of the statement sets and withdraws.
func keepIntel(f *model.Finding, old model.Finding) {
	f.KEV, f.EPSS, f.KnownExploited = old.KEV, old.EPSS, old.KnownExploited
	f.Priority, f.PriorityRank, f.MissingFeeds = old.Priority, old.PriorityRank, old.MissingFeeds
	f.Suppressed = old.Suppressed
}

// sameButLastSeen reports whether a stored finding equals a new one except
// for LastSeen. Such a finding is not rewritten: a daily rescan of an
// unchanged image then costs one write (its summary), and the image's
// ScannedAt says when its open findings were last confirmed.
func sameButLastSeen(old, f model.Finding) bool {
	old.LastSeen, f.LastSeen = time.Time{}, time.Time{}
	a, errA := json.Marshal(old)
	b, errB := json.Marshal(f)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

func mergeTags(a, b []string) []string {
	out := slices.Clone(a)
	for _, t := range b {
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}
