package cosmos_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/store/cosmos"
	"github.com/palisade-sec/palisade/tests/testenv"
)

// throttler is a TLS reverse proxy in front of the loopback Cosmos DB
// server that answers the first n document requests with 429 and the given
// retry headers, as Cosmos DB does when a partition runs out of throughput.
type throttler struct {
	srv     *httptest.Server
	headers http.Header

	mu       sync.Mutex
	n        int         // 429s still to send
	attempts []time.Time // document requests seen, throttled or not
}

func newThrottler(t *testing.T, backend string, n int, headers http.Header) *throttler {
	t.Helper()
	target, err := url.Parse(backend)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // loopback test server
	th := &throttler{n: n, headers: headers}
	// The account document names the endpoints the client then talks to:
	// name the proxy there, or the client goes around it.
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path != "/" {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		body = bytes.ReplaceAll(body, []byte(target.Host), []byte(th.srv.Listener.Addr().String()))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	th.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/docs") {
			th.mu.Lock()
			th.attempts = append(th.attempts, time.Now())
			throttle := th.n > 0
			if throttle {
				th.n--
			}
			th.mu.Unlock()
			if throttle {
				for k, v := range th.headers {
					w.Header()[k] = v
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = w.Write([]byte(`{"code":"TooManyRequests","message":"Request rate is large."}`))
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(th.srv.Close)
	return th
}

func (th *throttler) seen() []time.Time {
	th.mu.Lock()
	defer th.mu.Unlock()
	return append([]time.Time(nil), th.attempts...)
}

func (th *throttler) open(t *testing.T, maxRetries int) *cosmos.Store {
	t.Helper()
	s, err := cosmos.New(t.Context(), cosmos.Options{
		Endpoint:            th.srv.URL + "/",
		Key:                 testenv.CosmosKey,
		Database:            "throttled",
		InsecureLoopbackTLS: true,
		MaxRetries:          maxRetries,
	})
	if err != nil {
		t.Fatalf("cosmos.New through the proxy: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestThrottling(t *testing.T) {
	backend := testenv.StartCosmos(t)
	item := map[string]any{"id": "x", "kind": "k"}

	t.Run("RetriesAfterTheAskedDelay", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			headers http.Header
			wait    time.Duration
		}{
			{"MsHeader", http.Header{"X-Ms-Retry-After-Ms": {"150"}}, 150 * time.Millisecond},
			{"RetryAfterSeconds", http.Header{"Retry-After": {"1"}}, time.Second},
		} {
			t.Run(tc.name, func(t *testing.T) {
				const throttled = 2
				th := newThrottler(t, backend, throttled, tc.headers)
				s := th.open(t, 0)
				if _, err := s.Put(t.Context(), store.State, "k", "x", item, store.Cond{}); err != nil {
					t.Fatalf("Put through %d throttled responses: %v", throttled, err)
				}
				seen := th.seen()
				if len(seen) != throttled+1 {
					t.Fatalf("proxy saw %d document requests, want %d throttled and 1 served", len(seen), throttled)
				}
				for i := 1; i < len(seen); i++ {
					if gap := seen[i].Sub(seen[i-1]); gap < tc.wait {
						t.Errorf("attempt %d came %s after a 429 asking for %s", i+1, gap, tc.wait)
					}
				}
				var got map[string]any
				if _, err := s.Get(t.Context(), store.State, "k", "x", &got); err != nil {
					t.Errorf("Get after throttled Put: %v", err)
				}
			})
		}
	})

	t.Run("GivesUpAfterMaxRetries", func(t *testing.T) {
		th := newThrottler(t, backend, 1000, http.Header{"X-Ms-Retry-After-Ms": {"10"}})
		s := th.open(t, 2)
		_, err := s.Put(t.Context(), store.State, "k", "y", map[string]any{"id": "y", "kind": "k"}, store.Cond{})
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("Put = %v, want the 429 after retries run out", err)
		}
		if n := len(th.seen()); n != 3 {
			t.Errorf("proxy saw %d attempts, want 3 (1 + MaxRetries 2)", n)
		}
	})

	t.Run("StopsAtContextDeadline", func(t *testing.T) {
		th := newThrottler(t, backend, 1000, http.Header{"X-Ms-Retry-After-Ms": {"20000"}})
		s := th.open(t, 0)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		_, err := s.Put(ctx, store.State, "k", "z", map[string]any{"id": "z", "kind": "k"}, store.Cond{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Put = %v, want context.DeadlineExceeded", err)
		}
		if n := len(th.seen()); n != 1 {
			t.Errorf("proxy saw %d attempts, want 1: the deadline ends the wait", n)
		}
	})
}
