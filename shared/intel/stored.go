package intel

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// Stored items, all in the state container under kind model.KindIntel.
const (
	// ManifestID names the manifest: which copy of each feed is held, in
	// which chunks, and how its last download went.
	ManifestID = "intel-manifest"
	// PendingID names the changes not yet applied to stored findings.
	PendingID = "intel-pending"
)

// ChunkBytes is the most compressed feed bytes one stored chunk holds;
// base64 makes it about 1 MB, half of Cosmos DB's 2 MB item limit.
const ChunkBytes = 768 << 10

// FeedState is how one feed stands in the store: the copy held and the
// last download.
type FeedState struct {
	Feed string `json:"feed"` // model.FeedKEV or model.FeedEPSS
	// URL is where the copy held came from.
	URL string `json:"url,omitempty"`
	// Version is the KEV catalogVersion or the EPSS model version; Date
	// the KEV release time or the EPSS score date.
	Version string    `json:"version,omitempty"`
	Date    time.Time `json:"date,omitzero"`
	Entries int       `json:"entries"`
	// Hash identifies the content held, "" when none is; Chunks are its
	// stored chunks.
	Hash   string   `json:"hash,omitempty"`
	Chunks []string `json:"chunks,omitempty"`
	// FetchedAt is when the copy held was downloaded; CheckedAt when a
	// download last succeeded (so the copy held was current then).
	FetchedAt time.Time `json:"fetchedAt,omitzero"`
	CheckedAt time.Time `json:"checkedAt,omitzero"`
	// LastAttempt and Problem tell how the last download went: Problem is
	// "" when it succeeded.
	LastAttempt time.Time `json:"lastAttempt,omitzero"`
	Problem     string    `json:"problem,omitempty"`
}

// Held reports whether a copy of the feed is held.
func (s FeedState) Held() bool { return s.Hash != "" }

type manifest struct {
	Format int       `json:"format"`
	KEV    FeedState `json:"kev"`
	EPSS   FeedState `json:"epss"`
}

const manifestFormat = 1

// chunk is one stored part of a feed's compressed canonical form.
type chunk struct {
	Feed  string `json:"feed"`
	Hash  string `json:"hash"`
	Index int    `json:"index"`
	Count int    `json:"count"`
	Data  []byte `json:"data"` // base64 in JSON
}

// kevContent and epssContent are the canonical forms stored: the KEV
// catalogue as JSON, the EPSS scores as the published CSV, sorted.
func kevContent(k *KEV) ([]byte, error) { return json.Marshal(k) }

func epssContent(e *EPSS) ([]byte, error) {
	var b bytes.Buffer
	err := e.writeCSV(&b)
	return b.Bytes(), err
}

func contentHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// stateStore keeps the feeds in the state container.
type stateStore struct {
	st  store.Store
	now func() time.Time
}

func (s stateStore) get(ctx context.Context, id string, v any) (etag string, ok bool, err error) {
	var item model.State
	etag, err = s.st.Get(ctx, store.State, model.KindIntel, id, &item)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read state %s/%s: %w", model.KindIntel, id, err)
	}
	if err := json.Unmarshal(item.Data, v); err != nil {
		return etag, true, fmt.Errorf("decode state %s/%s: %w", model.KindIntel, id, err)
	}
	return etag, true, nil
}

func (s stateStore) put(ctx context.Context, id string, v any, cond store.Cond) (string, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode state %s/%s: %w", model.KindIntel, id, err)
	}
	item := model.State{ID: id, Kind: model.KindIntel, UpdatedAt: s.now().UTC(), Data: raw}
	etag, err := s.st.Put(ctx, store.State, model.KindIntel, id, item, cond)
	if err != nil {
		return "", fmt.Errorf("write state %s/%s: %w", model.KindIntel, id, err)
	}
	return etag, nil
}

func (s stateStore) delete(ctx context.Context, id string) error {
	if err := s.st.Delete(ctx, store.State, model.KindIntel, id); err != nil {
		return fmt.Errorf("delete state %s/%s: %w", model.KindIntel, id, err)
	}
	return nil
}

// save stores content compressed in chunks under content-addressed ids,
// so that a new copy never overwrites the chunks the manifest still
// names, and returns the hash and the chunk ids.
func (s stateStore) save(ctx context.Context, feed string, content []byte) (string, []string, error) {
	hash := contentHash(content)
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	if _, err := zw.Write(content); err != nil {
		return "", nil, err
	}
	if err := zw.Close(); err != nil {
		return "", nil, err
	}
	data := z.Bytes()
	count := max(1, (len(data)+ChunkBytes-1)/ChunkBytes)
	ids := make([]string, count)
	for i := range count {
		part := data[i*ChunkBytes : min((i+1)*ChunkBytes, len(data))]
		ids[i] = "intel-" + feed + "-" + hash + "-" + strconv.Itoa(i)
		if _, err := s.put(ctx, ids[i], chunk{Feed: feed, Hash: hash, Index: i, Count: count, Data: part}, store.Cond{}); err != nil {
			return "", nil, err
		}
	}
	return hash, ids, nil
}

// load reads the content a feed state names and checks that its chunks
// are all there and add up to it.
func (s stateStore) load(ctx context.Context, fs FeedState, maxBytes int64) ([]byte, error) {
	if len(fs.Chunks) == 0 {
		return nil, fmt.Errorf("the %s copy names no chunks", fs.Feed)
	}
	var z bytes.Buffer
	for i, id := range fs.Chunks {
		var c chunk
		_, ok, err := s.get(ctx, id, &c)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("chunk %s of the %s copy is missing", id, fs.Feed)
		}
		if c.Feed != fs.Feed || c.Hash != fs.Hash || c.Index != i || c.Count != len(fs.Chunks) {
			return nil, fmt.Errorf("chunk %s is out of place (%s %s, %d of %d)", id, c.Feed, c.Hash, c.Index, c.Count)
		}
		z.Write(c.Data)
	}
	zr, err := gzip.NewReader(&z)
	if err != nil {
		return nil, fmt.Errorf("the %s copy: %w", fs.Feed, err)
	}
	content, err := readBounded(zr, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("the %s copy: %w", fs.Feed, err)
	}
	if got := contentHash(content); got != fs.Hash {
		return nil, fmt.Errorf("the chunks of the %s copy add up to content %s, not %s", fs.Feed, got, fs.Hash)
	}
	return content, nil
}

// decodeKEVContent reads the stored form of a catalogue.
func decodeKEVContent(b []byte) (*KEV, error) {
	var k KEV
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("stored KEV catalogue: %w", err)
	}
	k.index()
	return &k, nil
}

func decodeEPSSContent(b []byte) (*EPSS, error) {
	return DecodeEPSS(io.Reader(bytes.NewReader(b)), 0)
}
