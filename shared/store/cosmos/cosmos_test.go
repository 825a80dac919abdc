package cosmos_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/cosmos"
	"github.com/palisade-sec/palisade/shared/store/storetest"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// dbSeq makes database names unique within the test binary, so tests that
// share a server (every contract subtest does) never see each other's items.
var dbSeq atomic.Int64

func newStore(t testing.TB, endpoint string) *cosmos.Store {
	t.Helper()
	s, err := cosmos.New(t.Context(), cosmos.Options{
		Endpoint:            endpoint,
		Key:                 testenv.CosmosKey,
		Database:            fmt.Sprintf("test%d", dbSeq.Add(1)),
		InsecureLoopbackTLS: true,
	})
	if err != nil {
		t.Fatalf("cosmos.New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	endpoint := testenv.StartCosmos(t)
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, endpoint) })
}

func TestNewIsIdempotent(t *testing.T) {
	endpoint := testenv.StartCosmos(t)
	opts := cosmos.Options{Endpoint: endpoint, Key: testenv.CosmosKey, Database: "again", InsecureLoopbackTLS: true}
	for i := range 2 {
		s, err := cosmos.New(t.Context(), opts)
		if err != nil {
			t.Fatalf("New #%d over an existing database: %v", i+1, err)
		}
		if _, err := s.Put(t.Context(), store.State, "k", "x", map[string]any{"id": "x", "kind": "k"}, store.Cond{}); err != nil {
			t.Fatalf("Put after New #%d: %v", i+1, err)
		}
		s.Close()
	}
}

func TestInsecureTLSOnlyOnLoopback(t *testing.T) {
	tests := []struct {
		endpoint string
		refused  bool
	}{
		{"https://palisade.documents.azure.com:443/", true},
		{"https://10.0.0.4:8081/", true},
		{"https://localhost.example.com:8081/", true},
		{"https://127.0.0.1.nip.io:8081/", true},
	}
	for _, tc := range tests {
		t.Run(tc.endpoint, func(t *testing.T) {
			_, err := cosmos.New(t.Context(), cosmos.Options{Endpoint: tc.endpoint, Key: testenv.CosmosKey, InsecureLoopbackTLS: true})
			if err == nil || !strings.Contains(err.Error(), "refusing to skip TLS verification") {
				t.Errorf("New = %v, want a refusal to skip TLS verification", err)
			}
		})
	}
}

func TestBadEndpoint(t *testing.T) {
	for _, ep := range []string{"", "ftp://x", "not a url"} {
		if _, err := cosmos.New(t.Context(), cosmos.Options{Endpoint: ep, Key: testenv.CosmosKey}); err == nil {
			t.Errorf("New(%q) succeeded", ep)
		}
	}
}

func BenchmarkPut(b *testing.B)   { storetest.BenchPut(b, newStore(b, testenv.StartCosmos(b))) }
func BenchmarkGet(b *testing.B)   { storetest.BenchGet(b, newStore(b, testenv.StartCosmos(b))) }
func BenchmarkQuery(b *testing.B) { storetest.BenchQuery(b, newStore(b, testenv.StartCosmos(b))) }
