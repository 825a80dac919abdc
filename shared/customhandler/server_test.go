package customhandler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/logging"
)

func newTestServer(logs *bytes.Buffer) *Server {
	s := NewServer(zerolog.New(logs))
	s.Handle("echo", func(ctx context.Context, r *Request) (*Response, error) {
		logging.Ctx(ctx).Info().Msg("inside")
		v, err := r.DataString("msg")
		if err != nil {
			return nil, err
		}
		return &Response{ReturnValue: v}, nil
	})
	s.Handle("empty", func(context.Context, *Request) (*Response, error) { return nil, nil })
	s.Handle("fails", func(context.Context, *Request) (*Response, error) {
		return nil, errors.New("store unavailable")
	})
	s.Handle("panics", func(context.Context, *Request) (*Response, error) { panic("boom") })
	return s
}

func TestServer(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantBody                 string // substring
	}{
		{"readiness probe", "GET", "/", "", 200, `"status":"ready"`},
		{"invocation", "POST", "/echo", `{"Data":{"msg":"\"hi\""},"Metadata":{}}`, 200, `{"Outputs":{},"Logs":[],"ReturnValue":"hi"}`},
		{"nil response is never an empty body", "POST", "/empty", `{"Data":{},"Metadata":{}}`, 200, `{"Outputs":{},"Logs":[],"ReturnValue":null}`},
		{"unknown function", "POST", "/nosuch", `{"Data":{}}`, 404, `no function named \"nosuch\"`},
		{"malformed body", "POST", "/echo", `{"Data":`, 400, "not a JSON object"},
		{"missing binding", "POST", "/echo", `{"Data":{}}`, 400, `no \"msg\" input binding`},
		{"function error", "POST", "/fails", `{"Data":{}}`, 500, "store unavailable"},
		{"panic", "POST", "/panics", `{"Data":{}}`, 500, "panicked: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := newTestServer(&logs)
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.Header.Set(HeaderInvocationID, "3f0c1a2e-0000-4000-8000-000000000001")
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if !json.Valid(rec.Body.Bytes()) || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body = %s, want JSON containing %s", rec.Body, tt.wantBody)
			}
			if tt.method == "POST" && tt.wantStatus != 404 {
				for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
					if !strings.Contains(line, `"invocation_id":"3f0c1a2e-0000-4000-8000-000000000001"`) {
						t.Errorf("log line without the invocation id: %s", line)
					}
				}
			}
		})
	}
}

// BenchmarkInvocation measures the handler's own overhead per invocation
// (decode, route, encode) for a 10 KB Event Hubs batch.
func BenchmarkInvocation(b *testing.B) {
	s := NewServer(zerolog.Nop())
	s.Handle("batch", func(_ context.Context, r *Request) (*Response, error) {
		items, err := r.DataStrings("events")
		if err != nil {
			return nil, err
		}
		return &Response{ReturnValue: len(items)}, nil
	})
	event := `{"v":1,"rule":"Terminal shell in container","output":"` + strings.Repeat("x", 180) + `"}`
	var items []string
	for len(strings.Join(items, ",")) < 10*1024 {
		items = append(items, event)
	}
	inner, _ := json.Marshal(items)
	outer, _ := json.Marshal(string(inner))
	body := []byte(`{"Data":{"events":` + string(outer) + `},"Metadata":{"sys":{"MethodName":"detectruntime"}}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/batch", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/invocation")
}
