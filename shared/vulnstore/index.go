package vulnstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// Annotator sets a finding's exploitation data and priority (*intel.Feeds
// is the implementation): whether its image runs is part of the priority.
// It keeps what the finding holds where the feeds did not change it
// materially, so Record copies the stored finding's data in first.
type Annotator interface {
	Annotate(f *model.Finding, running bool)
}

// The CVE index is how a feed change finds the findings of the CVEs it
// changed without reading every finding: each image with open findings has
// one item (or more, for very many findings) in the state container, kind
// model.KindCVEIndex, listing its open findings by CVE (by vulnerability
// id for those without a CVE) and whether the image ran when they were
// prioritised. Record writes it in the same store batch as the findings, as
// the stage after them (the embedded store: one transaction), and
// MarkDeleted drops it; ApplyIntel reads it whole (a few dozen bytes a
// finding) and then only the findings it names.
type cveIndex struct {
	Digest  string `json:"digest"`
	Chunk   int    `json:"chunk"`
	Chunks  int    `json:"chunks"`
	Running bool   `json:"running"`
	// CVEs maps each CVE (or vulnerability id, see indexKey) to the ids of
	// the image's open findings of it.
	CVEs map[string][]string `json:"cves"`
}

// indexKey is the key a finding is indexed under: its CVE or, without
// one, its vulnerability id (a VEX statement may name a GHSA advisory).
func indexKey(f *model.Finding) string {
	if cve := f.CVE(); cve != "" {
		return cve
	}
	return f.VulnID
}

// indexChunkRefs bounds the finding ids one index item lists (about 50
// bytes each): far below the store's item limit. A variable for tests.
var indexChunkRefs = 8000

func indexID(digest string, chunk int) string {
	return model.HashID(model.KindCVEIndex, digest, strconv.Itoa(chunk))
}

// buildIndex makes the index items of an image's open findings.
func buildIndex(digest string, running bool, open []model.Finding) []cveIndex {
	byCVE := map[string][]string{}
	for i := range open {
		byCVE[indexKey(&open[i])] = append(byCVE[indexKey(&open[i])], open[i].ID)
	}
	cves := slices.Sorted(maps.Keys(byCVE))
	var out []cveIndex
	cur := cveIndex{Digest: digest, Running: running, CVEs: map[string][]string{}}
	n := 0
	for _, cve := range cves {
		ids := byCVE[cve]
		slices.Sort(ids)
		if n > 0 && n+len(ids) > indexChunkRefs {
			out = append(out, cur)
			cur = cveIndex{Digest: digest, Running: running, CVEs: map[string][]string{}}
			n = 0
		}
		cur.CVEs[cve] = ids
		n += len(ids)
	}
	out = append(out, cur)
	for i := range out {
		out[i].Chunk, out[i].Chunks = i, len(out)
	}
	return out
}

// indexWrites returns the writes that make an image's stored index that of
// its open findings (none when it is that already) and how many stored
// chunks past the new ones are to be deleted.
func indexWrites(ctx context.Context, st store.Store, digest string, running bool, open []model.Finding, now time.Time) (writes []store.Write, stale int, err error) {
	old, err := readIndex(ctx, st, digest)
	if err != nil {
		return nil, 0, err
	}
	var want []cveIndex
	if len(open) > 0 {
		want = buildIndex(digest, running, open)
	}
	if sameIndex(old, want) {
		return nil, 0, nil
	}
	writes = make([]store.Write, len(want))
	for i, c := range want {
		item, err := indexItem(c, now)
		if err != nil {
			return nil, 0, err
		}
		writes[i] = store.Write{Container: store.State, PK: model.KindCVEIndex, ID: item.ID, Value: item}
	}
	return writes, max(len(old)-len(want), 0), nil
}

// dropIndexChunks deletes n of an image's index chunks, from the first
// one given.
func dropIndexChunks(ctx context.Context, st store.Store, digest string, from, n int) error {
	for i := from; i < from+n; i++ {
		if err := st.Delete(ctx, store.State, model.KindCVEIndex, indexID(digest, i)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("drop CVE index chunk %d of %s: %w", i, digest, err)
		}
	}
	return nil
}

func indexItem(c cveIndex, now time.Time) (model.State, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return model.State{}, fmt.Errorf("encode CVE index of %s: %w", c.Digest, err)
	}
	return model.State{ID: indexID(c.Digest, c.Chunk), Kind: model.KindCVEIndex, UpdatedAt: now.UTC(), Data: raw}, nil
}

// readIndex reads an image's index items, in order; none when it has none.
// An item that cannot be decoded counts as absent, so it is rewritten.
func readIndex(ctx context.Context, st store.Store, digest string) ([]cveIndex, error) {
	var out []cveIndex
	for i := 0; i == 0 || i < out[0].Chunks; i++ {
		var item model.State
		_, err := st.Get(ctx, store.State, model.KindCVEIndex, indexID(digest, i), &item)
		if errors.Is(err, store.ErrNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read CVE index of %s: %w", digest, err)
		}
		var c cveIndex
		if json.Unmarshal(item.Data, &c) != nil || c.Chunk != i || c.Chunks < 1 || c.Chunks > 1<<16 {
			return out, nil
		}
		out = append(out, c)
	}
	return out, nil
}

func sameIndex(a, b []cveIndex) bool {
	return slices.EqualFunc(a, b, func(x, y cveIndex) bool {
		return x.Digest == y.Digest && x.Chunk == y.Chunk && x.Chunks == y.Chunks && x.Running == y.Running &&
			maps.EqualFunc(x.CVEs, y.CVEs, slices.Equal)
	})
}

// deleteIndex removes an image's index.
func deleteIndex(ctx context.Context, st store.Store, digest string) error {
	stored, err := readIndex(ctx, st, digest)
	if err != nil {
		return err
	}
	return dropIndexChunks(ctx, st, digest, 0, len(stored))
}

// writeAll writes the stages in one store batch (a stage only when the one
// before it was written); the first write that fails (the store's error
// names its item) fails the call.
func writeAll(ctx context.Context, st store.Store, stages ...[]store.Write) error {
	if !slices.ContainsFunc(stages, func(s []store.Write) bool { return len(s) > 0 }) {
		return nil
	}
	res, err := store.WriteBatch(ctx, st, stages...)
	if err != nil {
		return err
	}
	for _, rs := range res {
		for _, r := range rs {
			if r.Err != nil {
				return r.Err
			}
		}
	}
	return nil
}
