// Package runningimages owns the running-image inventory of each monitored
// cluster (state kind running-images): which image digests run, and in
// which workloads. ingestinventory writes it from each agent's snapshots and
// changes, assessposture from the clusters it reads directly; rescanimages
// rescans the images in it and the API lists it.
//
// A cluster's set is chunked (at most Chunk images an item, far below the
// item size limit); chunk 0 holds the chunk count.
package runningimages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// Chunk bounds the images of one item.
const Chunk = 1000

// ID is the state id of chunk n of a cluster's set.
func ID(cluster string, n int) string {
	return model.HashID(model.KindRunningImages, cluster, strconv.Itoa(n))
}

// Write replaces a cluster's set with imgs, seen at at, and deletes chunks
// a larger earlier set left beyond the new count. It returns the writes
// and deletes it made.
func Write(ctx context.Context, st store.Store, cluster string, imgs []model.RunningImage, at time.Time) (int, error) {
	for i := range imgs {
		imgs[i].LastSeen = at
	}
	oldChunks, err := chunks(ctx, st, cluster)
	if err != nil {
		return 0, err
	}
	writes := 0
	n := (len(imgs) + Chunk - 1) / Chunk
	for c := 0; c < max(n, 1); c++ {
		lo, hi := c*Chunk, min((c+1)*Chunk, len(imgs))
		part := model.RunningImages{Cluster: cluster, Chunk: c, Chunks: n, At: at, Images: imgs[lo:hi]}
		if err := put(ctx, st, cluster, c, part); err != nil {
			return writes, err
		}
		writes++
	}
	for c := max(n, 1); c < oldChunks; c++ {
		if err := st.Delete(ctx, store.State, model.KindRunningImages, ID(cluster, c)); err != nil {
			return writes, fmt.Errorf("delete running images chunk %d of %s: %w", c, cluster, err)
		}
		writes++
	}
	return writes, nil
}

// Add merges imgs into a cluster's set: digests not in it are added with
// their workloads, so a newly running image is rescanned and listed at
// once. Digests already in it are left as they are, and nothing is removed:
// the next Write (of a whole snapshot, whose workloads are fully resolved)
// does that. It returns how many digests were new.
func Add(ctx context.Context, st store.Store, cluster string, imgs []model.RunningImage, at time.Time) (int, error) {
	if len(imgs) == 0 {
		return 0, nil
	}
	cur, err := Read(ctx, st, cluster)
	if err != nil {
		return 0, err
	}
	idx := make(map[string]int, len(cur))
	for i, ri := range cur {
		idx[ri.Digest] = i
	}
	added := 0
	for _, ri := range imgs {
		if _, ok := idx[ri.Digest]; !ok {
			idx[ri.Digest] = len(cur)
			cur = append(cur, ri)
			added++
		}
	}
	if added == 0 {
		return 0, nil
	}
	slices.SortFunc(cur, func(a, b model.RunningImage) int {
		if a.Digest < b.Digest {
			return -1
		}
		if a.Digest > b.Digest {
			return 1
		}
		return 0
	})
	_, err = Write(ctx, st, cluster, cur, at)
	return added, err
}

// Read returns a cluster's set, sorted by digest (empty when it has none).
func Read(ctx context.Context, st store.Store, cluster string) ([]model.RunningImage, error) {
	var first model.State
	if _, err := st.Get(ctx, store.State, model.KindRunningImages, ID(cluster, 0), &first); errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read running images of %s: %w", cluster, err)
	}
	var ri model.RunningImages
	if err := json.Unmarshal(first.Data, &ri); err != nil {
		return nil, fmt.Errorf("decode running images of %s: %w", cluster, err)
	}
	out := ri.Images
	for c := 1; c < ri.Chunks; c++ {
		var s model.State
		if _, err := st.Get(ctx, store.State, model.KindRunningImages, ID(cluster, c), &s); err != nil {
			return nil, fmt.Errorf("read running images chunk %d of %s: %w", c, cluster, err)
		}
		var part model.RunningImages
		if err := json.Unmarshal(s.Data, &part); err != nil {
			return nil, fmt.Errorf("decode running images chunk %d of %s: %w", c, cluster, err)
		}
		out = append(out, part.Images...)
	}
	return out, nil
}

// chunks returns the chunk count of a cluster's stored set (0: none).
func chunks(ctx context.Context, st store.Store, cluster string) (int, error) {
	var old model.State
	_, err := st.Get(ctx, store.State, model.KindRunningImages, ID(cluster, 0), &old)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read running images of %s: %w", cluster, err)
	}
	var ri model.RunningImages
	if err := json.Unmarshal(old.Data, &ri); err != nil {
		return 0, fmt.Errorf("decode running images of %s: %w", cluster, err)
	}
	return ri.Chunks, nil
}

func put(ctx context.Context, st store.Store, cluster string, n int, part model.RunningImages) error {
	raw, err := json.Marshal(part)
	if err != nil {
		return fmt.Errorf("encode running images of %s: %w", cluster, err)
	}
	id := ID(cluster, n)
	s := model.State{ID: id, Kind: model.KindRunningImages, UpdatedAt: part.At, Data: raw}
	if _, err := st.Put(ctx, store.State, model.KindRunningImages, id, s, store.Cond{}); err != nil {
		return fmt.Errorf("write running images of %s: %w", cluster, err)
	}
	return nil
}
