package msrc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// KindMSRC is the state kind (the partition) of the stored advisory data.
const KindMSRC = "msrc"

// StateStore keeps the stored form in the store's state container, one
// model.State of kind KindMSRC per item.
type StateStore struct {
	St  store.Store
	Now func() time.Time // nil means time.Now
}

var _ Store = StateStore{}

// Load reads an item.
func (s StateStore) Load(ctx context.Context, id string) ([]byte, bool, error) {
	var st model.State
	if _, err := s.St.Get(ctx, store.State, KindMSRC, id, &st); errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("read state %s/%s: %w", KindMSRC, id, err)
	}
	return st.Data, true, nil
}

// Save writes an item; data must be a JSON value.
func (s StateStore) Save(ctx context.Context, id string, data []byte) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	st := model.State{ID: id, Kind: KindMSRC, UpdatedAt: now().UTC(), Data: data}
	if _, err := s.St.Put(ctx, store.State, KindMSRC, id, st, store.Cond{}); err != nil {
		return fmt.Errorf("write state %s/%s: %w", KindMSRC, id, err)
	}
	return nil
}

// Delete removes an item.
func (s StateStore) Delete(ctx context.Context, id string) error {
	if err := s.St.Delete(ctx, store.State, KindMSRC, id); err != nil {
		return fmt.Errorf("delete state %s/%s: %w", KindMSRC, id, err)
	}
	return nil
}
