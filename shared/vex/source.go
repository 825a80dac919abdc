package vex

import (
	"context"
	"sync"

	"github.com/palisade-sec/palisade/shared/intel"
)

// Source is an *intel.Source whose feeds carry the stored VEX statements:
// what scans, rescans and refreshintel annotate findings with. Load returns
// the same *intel.Feeds until the feeds or the statements change.
type Source struct {
	*intel.Source
	docs *Store

	mu   sync.Mutex
	base *intel.Feeds
	set  *Set
	out  *intel.Feeds
}

// NewSource attaches the statements of docs to the feeds of src.
func NewSource(src *intel.Source, docs *Store) *Source {
	return &Source{Source: src, docs: docs}
}

// Store returns the VEX documents.
func (s *Source) Store() *Store { return s.docs }

// Load loads the feeds and the statements.
func (s *Source) Load(ctx context.Context) (*intel.Feeds, intel.Status, error) {
	feeds, status, err := s.Source.Load(ctx)
	if err != nil {
		return nil, status, err
	}
	set, err := s.docs.Load(ctx)
	if err != nil {
		return nil, status, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out != nil && s.base == feeds && s.set == set {
		return s.out, status, nil
	}
	out := &intel.Feeds{VEX: set}
	if feeds != nil {
		out.KEV, out.EPSS = feeds.KEV, feeds.EPSS
	}
	s.base, s.set, s.out = feeds, set, out
	return out, status, nil
}
