package backend_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/backend"
	"github.com/palisade-sec/palisade/shared/store/cosmos"
	"github.com/palisade-sec/palisade/shared/store/embedded"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// noCredential fails the test when called: a store that does not need
// Entra ID must not make the process's credential.
func noCredential(t *testing.T) func() (azcore.TokenCredential, error) {
	return func() (azcore.TokenCredential, error) {
		t.Error("the Entra ID credential was asked for")
		return nil, errors.New("no credential here")
	}
}

func TestOpen(t *testing.T) {
	endpoint := testenv.StartCosmos(t)
	tests := []struct {
		name    string
		cfg     config.Store
		backend string
		check   func(t *testing.T, s store.Store)
	}{
		{
			name:    "Embedded",
			cfg:     config.Store{Path: filepath.Join(t.TempDir(), "sub", "palisade.db")},
			backend: "embedded",
			check: func(t *testing.T, s store.Store) {
				if _, ok := s.(*embedded.Store); !ok {
					t.Errorf("got a %T, want *embedded.Store", s)
				}
			},
		},
		{
			name:    "Cosmos",
			cfg:     config.Store{Path: "unused.db", CosmosEndpoint: endpoint, CosmosKey: testenv.CosmosKey, CosmosDatabase: "factory"},
			backend: "cosmos",
			check: func(t *testing.T, s store.Store) {
				if _, ok := s.(*cosmos.Store); !ok {
					t.Errorf("got a %T, want *cosmos.Store", s)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			s, err := backend.Open(t.Context(), tc.cfg, noCredential(t), zerolog.New(&logs))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			tc.check(t, s)
			if _, err := s.Put(t.Context(), store.State, "k", "x", map[string]any{"id": "x", "kind": "k"}, store.Cond{}); err != nil {
				t.Errorf("Put: %v", err)
			}
			var line struct{ Backend, Component string }
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("log %q: %v", logs.String(), err)
			}
			if line.Backend != tc.backend || line.Component != "store" {
				t.Errorf("logged %+v, want backend %q, component store", line, tc.backend)
			}
			if tc.cfg.CosmosKey != "" && strings.Contains(logs.String(), tc.cfg.CosmosKey) {
				t.Errorf("the account key is in the log: %s", logs.String())
			}
		})
	}
}

func TestOpenEmbeddedInUse(t *testing.T) {
	cfg := config.Store{Path: filepath.Join(t.TempDir(), "palisade.db")}
	first, err := backend.Open(t.Context(), cfg, noCredential(t), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := backend.Open(t.Context(), cfg, noCredential(t), zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second Open = %v, want an in-use error", err)
	}
}

// TestOpenCosmosWithoutKeyUsesTheCredential: without an account key the
// store asks for the process's credential, and says so when there is none.
func TestOpenCosmosWithoutKeyUsesTheCredential(t *testing.T) {
	cfg := config.Store{CosmosEndpoint: "https://127.0.0.1:1/", CosmosDatabase: "x"}
	asked := 0
	_, err := backend.Open(t.Context(), cfg, func() (azcore.TokenCredential, error) {
		asked++
		return nil, errors.New("no managed identity")
	}, zerolog.Nop())
	if asked != 1 || err == nil || !strings.Contains(err.Error(), "no managed identity") {
		t.Errorf("asked %d times, err %v; want one request and its error", asked, err)
	}
}
