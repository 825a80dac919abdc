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
// id for those without a CVE) and whether the
// image ran when they were prioritised. Record and MarkDeleted keep it, in
// the same call that writes the findings; ApplyIntel reads it whole (a
// few dozen bytes a finding) and then only the findings it names.
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
// bytes each): far below the store's item limit.
const indexChunkRefs = 8000

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

// putIndex writes an image's index when it differs from the stored one, or
// deletes it when the image has no open finding.
func putIndex(ctx context.Context, st store.Store, digest string, running bool, open []model.Finding, now time.Time) error {
	stored, err := readIndex(ctx, st, digest)
	if err != nil {
		return err
	}
	var want []cveIndex
	if len(open) > 0 {
		want = buildIndex(digest, running, open)
	}
	if sameIndex(stored, want) {
		return nil
	}
	writes := make([]store.Write, len(want))
	for i, c := range want {
		item, err := indexItem(c, now)
		if err != nil {
			return err
		}
		writes[i] = store.Write{ID: item.ID, Value: item}
	}
	if err := store.PutBatch(ctx, st, store.State, model.KindCVEIndex, writes); err != nil {
		return fmt.Errorf("store CVE index of %s: %w", digest, err)
	}
	for i := len(want); i < len(stored); i++ {
		if err := st.Delete(ctx, store.State, model.KindCVEIndex, indexID(digest, i)); err != nil {
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
	for i := range stored {
		if err := st.Delete(ctx, store.State, model.KindCVEIndex, indexID(digest, i)); err != nil {
			return fmt.Errorf("drop CVE index of %s: %w", digest, err)
		}
	}
	return nil
}
