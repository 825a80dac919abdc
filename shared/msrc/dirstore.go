package msrc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DirStore keeps the stored form as files in a directory, one file per item
// (ID.json), so that `palisade scan` in CI reuses what an earlier run
// downloaded from a cache directory.
type DirStore struct {
	Dir string
}

var _ Store = DirStore{}

// path is the file of an item. Ids are made by this package (letters,
// digits and dashes); anything else is refused rather than joined into a
// path.
func (s DirStore) path(id string) (string, error) {
	if id == "" || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
		return "", fmt.Errorf("item id %q is not a plain name", id)
	}
	return filepath.Join(s.Dir, id+".json"), nil
}

// Load reads an item.
func (s DirStore) Load(_ context.Context, id string) ([]byte, bool, error) {
	p, err := s.path(id)
	if err != nil {
		return nil, false, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", p, err)
	}
	return b, true, nil
}

// Save writes an item through a temporary file renamed into place, so a
// run cut short never leaves half an item.
func (s DirStore) Save(_ context.Context, id string, data []byte) error {
	p, err := s.path(id)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.Dir, err)
	}
	f, err := os.CreateTemp(s.Dir, id+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// Delete removes an item; a missing item is not an error.
func (s DirStore) Delete(_ context.Context, id string) error {
	p, err := s.path(id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	return nil
}
