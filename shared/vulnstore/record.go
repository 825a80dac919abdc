// Package vulnstore records image scans in the store: the image summary, its
// package inventory in chunks, and its findings, keeping each finding's
// first-seen time and resolving findings that are gone. Scan on push and
// rescans both write through it, so the two agree on what a finding's
// history means. Every write is an upsert of a deterministic id: recording
// the same scan twice leaves the same data. A finding that a scan finds
// unchanged is not rewritten (its LastSeen stays at the last scan that
// changed it; the image's ScannedAt is when it was last confirmed).
package vulnstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
}

// Changes counts what recording a scan changed. They are counted against
// the scan's time (SeenAt), so recording a scan again after an attempt that
// was cut short reports the same changes.
type Changes struct {
	New      int // findings seen for the first time (or open again)
	Resolved int // open findings no longer present
	Open     int // open findings after the scan
	// NewIDs are the ids of the New findings, in the order given.
	NewIDs []string
}

// NewFindings returns the findings of a scan that c counted as new, first
// seen at the scan's time at, in the order given.
func (c Changes) NewFindings(findings []model.Finding, at time.Time) []model.Finding {
	var out []model.Finding
	for _, f := range findings {
		if slices.Contains(c.NewIDs, f.ID) {
			f.FirstSeen = at
			out = append(out, f)
		}
	}
	return out
}

// Record writes a scan: inventory first, then findings, and the image
// summary last, so a summary naming a DB version always has its findings
// stored (a crash in between is repaired by the redelivery).
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
	for _, f := range sc.Findings {
		current[f.ID] = true
		f.LastSeen = sc.SeenAt
		f.FirstSeen = sc.SeenAt
		f.Status, f.ResolvedAt = model.FindingOpen, time.Time{}
		if old, ok := existing[f.ID]; ok {
			f.FirstSeen = old.FirstSeen
			if old.Status != model.FindingOpen || old.FirstSeen.Equal(sc.SeenAt) {
				ch.New++
				ch.NewIDs = append(ch.NewIDs, f.ID)
			}
		} else {
			ch.New++
			ch.NewIDs = append(ch.NewIDs, f.ID)
		}
		ch.Open++
		if old, ok := existing[f.ID]; ok && sameButLastSeen(old, f) {
			continue
		}
		if _, err := st.Put(ctx, store.Findings, digest, f.ID, f, store.Cond{}); err != nil {
			return Changes{}, fmt.Errorf("store finding %s of %s: %w", f.VulnID, digest, err)
		}
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
		if _, err := st.Put(ctx, store.Findings, digest, id, old, store.Cond{}); err != nil {
			return Changes{}, fmt.Errorf("resolve finding %s of %s: %w", old.VulnID, digest, err)
		}
		ch.Resolved++
	}
	img := sc.Image
	img.ID = model.ImageID(digest)
	if prev, err := GetImage(ctx, st, digest); err == nil {
		img.Tags = mergeTags(prev.Tags, img.Tags)
	} else if !errors.Is(err, store.ErrNotFound) {
		return Changes{}, err
	}
	if _, err := st.Put(ctx, store.Images, digest, img.ID, img, store.Cond{}); err != nil {
		return Changes{}, fmt.Errorf("store image %s: %w", digest, err)
	}
	return ch, nil
}

// GetImage reads an image summary.
func GetImage(ctx context.Context, st store.Store, digest string) (model.Image, error) {
	var img model.Image
	if _, err := st.Get(ctx, store.Images, digest, model.ImageID(digest), &img); err != nil {
		return model.Image{}, fmt.Errorf("read image %s: %w", digest, err)
	}
	return img, nil
}

// AddTag records another tag of an already scanned image.
func AddTag(ctx context.Context, st store.Store, img model.Image, tag string) error {
	if tag == "" || slices.Contains(img.Tags, tag) {
		return nil
	}
	img.Tags = mergeTags(img.Tags, []string{tag})
	if _, err := st.Put(ctx, store.Images, img.Digest, img.ID, img, store.Cond{}); err != nil {
		return fmt.Errorf("store tag %s of %s: %w", tag, img.Digest, err)
	}
	return nil
}

// Findings reads every finding of an image, by id.
func Findings(ctx context.Context, st store.Store, digest string) (map[string]model.Finding, error) {
	out := map[string]model.Finding{}
	err := store.Each(ctx, st, store.Findings, store.Query{PartitionKey: digest, Limit: 500}, func(f model.Finding) error {
		out[f.ID] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read findings of %s: %w", digest, err)
	}
	return out, nil
}

// Inventory reads an image's stored inventory.
func Inventory(ctx context.Context, st store.Store, digest string) (model.Inventory, error) {
	var chunks []model.InventoryChunk
	err := store.Each(ctx, st, store.Inventory, store.Query{PartitionKey: digest}, func(c model.InventoryChunk) error {
		chunks = append(chunks, c)
		return nil
	})
	if err != nil {
		return model.Inventory{}, fmt.Errorf("read inventory of %s: %w", digest, err)
	}
	inv, err := model.AssembleInventory(chunks)
	if err != nil {
		return model.Inventory{}, fmt.Errorf("read inventory of %s: %w", digest, err)
	}
	return inv, nil
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
	img.Status, img.DeletedAt, img.Counts, img.MaxRank = model.ImageDeleted, at, model.Counts{}, 0
	if _, err := st.Put(ctx, store.Images, digest, img.ID, img, store.Cond{}); err != nil {
		return resolved, fmt.Errorf("store deleted image %s: %w", digest, err)
	}
	return resolved, nil
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
