package vex

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// KindVEX is the state kind of the stored documents and their manifest.
const KindVEX = "vex"

// manifestID names the manifest: the stored documents and their hashes,
// rewritten on every change, so that Load rereads documents only when it
// changed.
const manifestID = "vex-manifest"

// SourceAPI is the Source of documents posted to the API; those of the
// folder are "dir:" and their file name.
const SourceAPI = "api"

type manifest struct {
	// Docs maps a stored item's id to its document's hash.
	Docs map[string]string `json:"docs"`
}

// Store keeps VEX documents in the state container. It caches the set of
// statements until the stored manifest changes.
type Store struct {
	st  store.Store
	now func() time.Time

	mu     sync.Mutex
	cached []byte // the manifest the set was built from
	set    *Set
}

// NewStore returns the documents kept in st; now nil means time.Now.
func NewStore(st store.Store, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{st: st, now: now}
}

// itemID is the stored id of a document: one per (source, document id),
// so a new version of a document replaces the old one.
func itemID(d *Document) string {
	if strings.HasPrefix(d.Source, "dir:") {
		return model.HashID(KindVEX, d.Source)
	}
	return model.HashID(KindVEX, d.Source, d.ID)
}

// Change is what storing or removing documents changed: the vulnerability
// ids of the statements added, changed or withdrawn, for the update of
// stored findings.
type Change struct {
	Stored, Removed, Unchanged int
	Vulnerabilities            []string
}

func (c *Change) add(ids ...string) {
	c.Vulnerabilities = append(c.Vulnerabilities, ids...)
	slices.Sort(c.Vulnerabilities)
	c.Vulnerabilities = slices.Compact(c.Vulnerabilities)
}

// CVEs returns the CVE ids among the change's vulnerabilities, and whether
// some have no CVE id (findings of those are found by reading them all).
func (c Change) CVEs() (cves []string, others bool) {
	for _, v := range c.Vulnerabilities {
		if model.IsCVE(v) {
			cves = append(cves, v)
		} else {
			others = true
		}
	}
	return cves, others
}

// Put stores a document, replacing the one of the same source and id. The
// change names the vulnerabilities of both versions; storing the same
// document again changes nothing.
func (s *Store) Put(ctx context.Context, d *Document) (Change, error) {
	var ch Change
	id := itemID(d)
	old, found, err := s.get(ctx, id)
	if err != nil {
		return ch, err
	}
	if found && old.Hash == d.Hash {
		ch.Unchanged++
		return ch, s.updateManifest(ctx, func(m map[string]string) { m[id] = d.Hash })
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return ch, fmt.Errorf("encode VEX document %s: %w", d.ID, err)
	}
	item := model.State{ID: id, Kind: KindVEX, UpdatedAt: s.now().UTC(), Data: raw}
	if _, err := s.st.Put(ctx, store.State, KindVEX, id, item, store.Cond{}); err != nil {
		return ch, fmt.Errorf("store VEX document %s: %w", d.ID, err)
	}
	if err := s.updateManifest(ctx, func(m map[string]string) { m[id] = d.Hash }); err != nil {
		return ch, err
	}
	ch.Stored++
	ch.add(d.Vulnerabilities()...)
	if found {
		ch.add(old.Vulnerabilities()...)
	}
	return ch, nil
}

// Remove withdraws the stored document of source and document id; found is
// false when there is none.
func (s *Store) Remove(ctx context.Context, source, docID string) (Change, bool, error) {
	return s.remove(ctx, itemID(&Document{Source: source, ID: docID}))
}

func (s *Store) remove(ctx context.Context, id string) (Change, bool, error) {
	var ch Change
	old, found, err := s.get(ctx, id)
	if err != nil || !found {
		return ch, false, err
	}
	if err := s.updateManifest(ctx, func(m map[string]string) { delete(m, id) }); err != nil {
		return ch, true, err
	}
	if err := s.st.Delete(ctx, store.State, KindVEX, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return ch, true, fmt.Errorf("delete VEX document %s: %w", old.ID, err)
	}
	ch.Removed++
	ch.add(old.Vulnerabilities()...)
	return ch, true, nil
}

// List returns the stored documents, by source and id.
func (s *Store) List(ctx context.Context) ([]*Document, error) {
	m, _, err := s.manifest(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Document
	for _, id := range slices.Sorted(maps.Keys(m.Docs)) {
		d, found, err := s.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b *Document) int {
		return strings.Compare(a.Source+"\x00"+a.ID, b.Source+"\x00"+b.ID)
	})
	return out, nil
}

// Load returns the statements of every stored document. It returns the
// same *Set until the stored documents change, so a caller can tell
// whether they did.
func (s *Store) Load(ctx context.Context) (*Set, error) {
	m, raw, err := s.manifest(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.set != nil && bytes.Equal(raw, s.cached) {
		defer s.mu.Unlock()
		return s.set, nil
	}
	s.mu.Unlock()
	if len(m.Docs) == 0 {
		return s.keep(raw, NewSet()), nil
	}
	docs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	return s.keep(raw, NewSet(docs...)), nil
}

func (s *Store) keep(raw []byte, set *Set) *Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set != nil && bytes.Equal(raw, s.cached) {
		return s.set
	}
	s.cached, s.set = raw, set
	return set
}

func (s *Store) get(ctx context.Context, id string) (*Document, bool, error) {
	var item model.State
	_, err := s.st.Get(ctx, store.State, KindVEX, id, &item)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read VEX document %s: %w", id, err)
	}
	var d Document
	if err := json.Unmarshal(item.Data, &d); err != nil {
		return nil, false, fmt.Errorf("decode stored VEX document %s: %w", id, err)
	}
	return &d, true, nil
}

func (s *Store) manifest(ctx context.Context) (manifest, []byte, error) {
	m, _, err := s.readManifest(ctx)
	if err != nil {
		return m, nil, err
	}
	raw, _ := json.Marshal(m.Docs) // map keys sorted: equal manifests encode equally
	return m, raw, nil
}

func (s *Store) readManifest(ctx context.Context) (manifest, string, error) {
	m := manifest{Docs: map[string]string{}}
	var item model.State
	etag, err := s.st.Get(ctx, store.State, KindVEX, manifestID, &item)
	if errors.Is(err, store.ErrNotFound) {
		return m, "", nil
	}
	if err != nil {
		return m, "", fmt.Errorf("read VEX manifest: %w", err)
	}
	if err := json.Unmarshal(item.Data, &m); err != nil || m.Docs == nil {
		return manifest{Docs: map[string]string{}}, etag, fmt.Errorf("decode VEX manifest: %v", err)
	}
	return m, etag, nil
}

// updateManifest applies edit to the stored manifest, conditional on it
// being unchanged since it was read.
func (s *Store) updateManifest(ctx context.Context, edit func(map[string]string)) error {
	for range 8 {
		m, etag, err := s.readManifest(ctx)
		if err != nil {
			return err
		}
		before := maps.Clone(m.Docs)
		edit(m.Docs)
		if etag != "" && maps.Equal(before, m.Docs) {
			return nil
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode VEX manifest: %w", err)
		}
		item := model.State{ID: manifestID, Kind: KindVEX, UpdatedAt: s.now().UTC(), Data: raw}
		_, err = s.st.Put(ctx, store.State, KindVEX, manifestID, item, store.Cond{IfMatch: etag, IfNoneMatch: etag == ""})
		if errors.Is(err, store.ErrPrecondition) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store VEX manifest: %w", err)
		}
		return nil
	}
	return fmt.Errorf("store VEX manifest: 8 concurrent changes in a row: %w", store.ErrPrecondition)
}

// DirResult is what SyncDir did.
type DirResult struct {
	Change
	// Bad are the files that are not valid VEX documents, with why; the
	// documents stored from them before are kept.
	Bad []string
}

// SyncDir makes the stored documents of the folder dir (source "dir:NAME",
// *.json files, not in subfolders) those of its files: new and changed
// files are stored, documents of files gone are withdrawn. A file that
// cannot be read or is not a valid VEX document is reported in Bad and its
// stored document kept, so a bad edit withdraws nothing. A folder that
// cannot be listed is an error (nothing is withdrawn).
func (s *Store) SyncDir(ctx context.Context, dir string) (DirResult, error) {
	var res DirResult
	entries, err := os.ReadDir(dir)
	if err != nil {
		return res, fmt.Errorf("read the VEX folder: %w", err)
	}
	present := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() || !strings.EqualFold(filepath.Ext(e.Name()), ".json") {
			continue
		}
		source := "dir:" + e.Name()
		present[itemID(&Document{Source: source})] = true
		data, err := readFile(filepath.Join(dir, e.Name()))
		if err == nil {
			var d *Document
			if d, err = Parse(data, source); err == nil {
				var ch Change
				if ch, err = s.Put(ctx, d); err != nil {
					return res, err
				}
				res.Stored, res.Unchanged = res.Stored+ch.Stored, res.Unchanged+ch.Unchanged
				res.add(ch.Vulnerabilities...)
				continue
			}
		}
		res.Bad = append(res.Bad, e.Name()+": "+err.Error())
	}
	docs, err := s.List(ctx)
	if err != nil {
		return res, err
	}
	for _, d := range docs {
		id := itemID(d)
		if !strings.HasPrefix(d.Source, "dir:") || present[id] {
			continue
		}
		ch, _, err := s.remove(ctx, id)
		if err != nil {
			return res, err
		}
		res.Removed += ch.Removed
		res.add(ch.Vulnerabilities...)
	}
	return res, nil
}

// ReadFile reads and parses a VEX file (the CLI's --vex).
func ReadFile(path string) (*Document, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	d, err := Parse(data, "file:"+filepath.Base(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, MaxDocumentBytes+1)); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b.Bytes(), nil
}
