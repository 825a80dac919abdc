package msrc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Store keeps the stored form: JSON items by id, each at most a few hundred
// KB. In the pipeline it is the state container (one kind for all of these
// items); MemoryStore serves a one-off scan.
type Store interface {
	// Load returns the item, or ok false when there is none.
	Load(ctx context.Context, id string) (data []byte, ok bool, err error)
	// Save writes the item, replacing any with the same id.
	Save(ctx context.Context, id string, data []byte) error
	// Delete removes the item; a missing item is not an error.
	Delete(ctx context.Context, id string) error
}

// ManifestID is the id of the stored manifest: which months are held, in
// which chunks, and how their last refresh went.
const ManifestID = "msrc-manifest"

// Chunk sizes: chunks aim at DefaultChunkBytes, a tenth of Cosmos DB's item
// limit like inventory chunks; none may pass MaxChunkBytes.
const (
	DefaultChunkBytes = 256 << 10
	MaxChunkBytes     = 1 << 20
)

// manifest is the stored item ManifestID.
type manifest struct {
	Format int `json:"format"`
	// RefreshedAt is when the updates index was last read.
	RefreshedAt time.Time     `json:"refreshedAt,omitzero"`
	Months      []MonthStatus `json:"months"`
}

const manifestFormat = 1

// MonthStatus is the state of one month: the data held and how its last
// refresh went.
type MonthStatus struct {
	ID string `json:"id"`
	// Release is the updates index's CurrentReleaseDate of the data held:
	// a month is downloaded again only when it changes.
	Release   string    `json:"release,omitempty"`
	FetchedAt time.Time `json:"fetchedAt,omitzero"` // when the data held was downloaded
	Hash      string    `json:"hash,omitempty"`     // of the data held; "" when none is
	Chunks    []string  `json:"chunks,omitempty"`   // the stored chunks of the data held
	CVEs      int       `json:"cves"`               // vulnerabilities with a fix in a covered release
	Skipped   int       `json:"skipped,omitempty"`  // statements about covered releases that could not be used
	// LastAttempt and Problem tell how the last download went: Problem is
	// "" when it succeeded (or was not needed).
	LastAttempt time.Time `json:"lastAttempt,omitzero"`
	Problem     string    `json:"problem,omitempty"`
}

// Held reports whether data for the month is held.
func (s MonthStatus) Held() bool { return s.Hash != "" }

// chunk is one stored part of a month.
type chunk struct {
	Month string `json:"month"`
	Hash  string `json:"hash"`
	Index int    `json:"index"`
	Count int    `json:"count"`
	Head  *Month `json:"head,omitempty"` // chunk 0: the month without its vulnerabilities
	Vulns []Vuln `json:"vulns"`
}

// monthHash identifies a month's content.
func monthHash(m Month) string {
	if m.Vulns == nil {
		m.Vulns = []Vuln{}
	}
	if m.Builds == nil {
		m.Builds = []int{}
	}
	b, _ := json.Marshal(m) // a Month always encodes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// chunkID names chunk i of a month's content: content-addressed, so a new
// version of a month never overwrites the chunks the manifest still names.
func chunkID(month, hash string, i int) string {
	return "msrc-" + month + "-" + hash + "-" + strconv.Itoa(i)
}

// chunkMonth splits m into encoded chunks of about maxBytes.
func chunkMonth(m Month, maxBytes int) (hash string, ids []string, items [][]byte, err error) {
	hash = monthHash(m)
	head := m
	head.Vulns = nil
	var parts [][]Vuln
	var cur []Vuln
	size := 0
	for _, v := range m.Vulns {
		b, _ := json.Marshal(v)
		if size+len(b) > maxBytes && len(cur) > 0 {
			parts, cur, size = append(parts, cur), nil, 0
		}
		cur = append(cur, v)
		size += len(b) + 1
	}
	parts = append(parts, cur)
	for i, p := range parts {
		c := chunk{Month: m.ID, Hash: hash, Index: i, Count: len(parts), Vulns: p}
		if c.Vulns == nil {
			c.Vulns = []Vuln{}
		}
		if i == 0 {
			c.Head = &head
		}
		b, err := json.Marshal(c)
		if err != nil {
			return "", nil, nil, fmt.Errorf("encode %s chunk %d: %w", m.ID, i, err)
		}
		if len(b) > MaxChunkBytes {
			return "", nil, nil, fmt.Errorf("%s chunk %d is %d bytes, above the %d-byte limit", m.ID, i, len(b), MaxChunkBytes)
		}
		ids = append(ids, chunkID(m.ID, hash, i))
		items = append(items, b)
	}
	return hash, ids, items, nil
}

// assembleMonth joins a month's chunks, in order, and checks that they are
// all there and add up to the content the manifest names.
func assembleMonth(st MonthStatus, items [][]byte) (Month, error) {
	var m Month
	for i, b := range items {
		var c chunk
		if err := json.Unmarshal(b, &c); err != nil {
			return Month{}, fmt.Errorf("chunk %d of %s: %w", i, st.ID, err)
		}
		if c.Month != st.ID || c.Hash != st.Hash || c.Index != i || c.Count != len(items) {
			return Month{}, fmt.Errorf("chunk %d of %s is out of place (month %q, hash %q, %d of %d)", i, st.ID, c.Month, c.Hash, c.Index, c.Count)
		}
		if i == 0 {
			if c.Head == nil {
				return Month{}, fmt.Errorf("chunk 0 of %s has no head", st.ID)
			}
			m = *c.Head
			m.Vulns = []Vuln{}
		}
		m.Vulns = append(m.Vulns, c.Vulns...)
	}
	if got := monthHash(m); got != st.Hash {
		return Month{}, fmt.Errorf("the chunks of %s add up to content %s, not %s", st.ID, got, st.Hash)
	}
	return m, nil
}

// saveMonth stores m's chunks and returns its status with Hash and Chunks set.
func saveMonth(ctx context.Context, store Store, st MonthStatus, m Month, maxBytes int) (MonthStatus, error) {
	hash, ids, items, err := chunkMonth(m, maxBytes)
	if err != nil {
		return st, err
	}
	for i, id := range ids {
		if err := store.Save(ctx, id, items[i]); err != nil {
			return st, fmt.Errorf("save %s: %w", id, err)
		}
	}
	st.Hash, st.Chunks = hash, ids
	return st, nil
}

// loadMonth reads the data st names.
func loadMonth(ctx context.Context, store Store, st MonthStatus) (Month, error) {
	if len(st.Chunks) == 0 {
		return Month{}, fmt.Errorf("%s names no chunks", st.ID)
	}
	items := make([][]byte, len(st.Chunks))
	for i, id := range st.Chunks {
		b, ok, err := store.Load(ctx, id)
		if err != nil {
			return Month{}, fmt.Errorf("load %s: %w", id, err)
		}
		if !ok {
			return Month{}, fmt.Errorf("chunk %s of %s is missing", id, st.ID)
		}
		items[i] = b
	}
	return assembleMonth(st, items)
}

// MemoryStore is a Store in memory, for a one-off scan and for tests.
type MemoryStore struct {
	mu    sync.Mutex
	items map[string][]byte
}

var _ Store = (*MemoryStore)(nil)

// Load returns a copy of the item.
func (s *MemoryStore) Load(_ context.Context, id string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.items[id]
	return slices.Clone(b), ok, nil
}

// Save keeps a copy of data.
func (s *MemoryStore) Save(_ context.Context, id string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.items == nil {
		s.items = map[string][]byte{}
	}
	s.items[id] = slices.Clone(data)
	return nil
}

// Delete removes the item.
func (s *MemoryStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, id)
	return nil
}

// IDs lists the items held, sorted.
func (s *MemoryStore) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.items))
	for id := range s.items {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
