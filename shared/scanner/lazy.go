package scanner

import (
	"context"
	"sync"

	"github.com/palisade-sec/palisade/shared/model"
)

// Lazy opens a Scanner on first use instead of at start-up, so that the
// handler answers the host's readiness probe (30 s) while a vulnerability
// DB download may still take minutes. A failed open is tried again on the
// next use.
type Lazy struct {
	opts Options
	mu   sync.Mutex
	s    *Scanner
}

// NewLazy returns a Lazy that will open a Scanner with o.
func NewLazy(o Options) *Lazy { return &Lazy{opts: o} }

// Get returns the Scanner, opening it if needed.
func (l *Lazy) Get(ctx context.Context) (*Scanner, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		return l.s, nil
	}
	s, err := New(ctx, l.opts)
	if err != nil {
		return nil, err
	}
	l.s = s
	return s, nil
}

// Scan opens the Scanner if needed and scans t.
func (l *Lazy) Scan(ctx context.Context, t Target) (*Result, error) {
	s, err := l.Get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Scan(ctx, t)
}

// CurrentDB opens the Scanner if needed and describes its DB.
func (l *Lazy) CurrentDB(ctx context.Context) (DBInfo, error) {
	s, err := l.Get(ctx)
	if err != nil {
		return DBInfo{}, err
	}
	return s.CurrentDB(ctx)
}

// Match opens the Scanner if needed and matches inv against the DB.
func (l *Lazy) Match(ctx context.Context, img model.Image, inv model.Inventory) (*Match, error) {
	s, err := l.Get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Match(ctx, img, inv)
}

// RefreshDB opens the Scanner if needed (which prepares a fresh DB) and
// refreshes its DB.
func (l *Lazy) RefreshDB(ctx context.Context) (DBInfo, error) {
	s, err := l.Get(ctx)
	if err != nil {
		return DBInfo{}, err
	}
	return s.RefreshDB(ctx)
}

// Close closes the Scanner if it was opened.
func (l *Lazy) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s == nil {
		return nil
	}
	return l.s.Close()
}
