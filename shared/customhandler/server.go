package customhandler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/logging"
)

// Response is what a function returns to the host.
type Response struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// Handler runs one invocation. The context carries a logger with the
// function name and invocation id (logging.Ctx). A nil Response is sent as
// an empty one; an error fails the invocation so the platform's retry applies.
type Handler func(ctx context.Context, req *Request) (*Response, error)

// Header names the host sends.
const (
	HeaderInvocationID = "X-Azure-Functions-InvocationId"
	HeaderHostVersion  = "X-Azure-Functions-HostVersion"
)

// DefaultMaxBody bounds an invocation body: a full Event Hubs batch of 1 MB
// events fits with room to spare.
const DefaultMaxBody = 256 << 20

// Server routes the host's requests to functions.
type Server struct {
	log     zerolog.Logger
	mux     *http.ServeMux
	funcs   map[string]Handler
	maxBody int64
}

// NewServer returns a server answering the readiness probe on GET /.
func NewServer(log zerolog.Logger) *Server {
	s := &Server{log: log, mux: http.NewServeMux(), funcs: map[string]Handler{}, maxBody: DefaultMaxBody}
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "functions": len(s.funcs)})
	})
	s.mux.HandleFunc("POST /{function}", s.invoke)
	return s
}

// Handle registers a non-HTTP function under its folder name.
func (s *Server) Handle(function string, h Handler) { s.funcs[function] = h }

// HandleHTTP registers function's handler for forwarded HTTP-trigger
// requests, which arrive on their original path (e.g. "/api/"). The request
// context carries a logger with the function and invocation id.
func (s *Server) HandleHTTP(pattern, function string, h http.Handler) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := s.log.With().Str(logging.FieldFunction, function).Str(logging.FieldInvocationID, r.Header.Get(HeaderInvocationID)).Logger()
		start := time.Now()
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r.WithContext(logging.With(r.Context(), log)))
		log.Info().Str("method", r.Method).Str("path", r.URL.Path).Int("status", rec.status).Dur(logging.FieldDuration, time.Since(start)).Msg("request served")
	}))
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("function")
	id := r.Header.Get(HeaderInvocationID)
	log := s.log.With().Str(logging.FieldFunction, name).Str(logging.FieldInvocationID, id).Logger()
	h, ok := s.funcs[name]
	if !ok {
		log.Warn().Msg("invocation of an unknown function")
		writeError(w, http.StatusNotFound, fmt.Errorf("no function named %q", name))
		return
	}
	start := time.Now()
	resp, err := s.run(logging.With(r.Context(), log), r, name, id, h)
	status := http.StatusOK
	switch {
	case errors.Is(err, ErrBadRequest):
		status = http.StatusBadRequest
	case err != nil:
		status = http.StatusInternalServerError
	}
	ev := log.Info()
	if err != nil {
		ev = log.Error().Err(err)
	}
	ev.Int("status", status).Dur(logging.FieldDuration, time.Since(start)).Msg("invocation finished")
	if err != nil {
		writeError(w, status, err)
		return
	}
	writeJSON(w, status, resp)
}

func (s *Server) run(ctx context.Context, r *http.Request, name, id string, h Handler) (resp *Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("function %s panicked: %v", name, p)
		}
	}()
	body, err := readBody(r, s.maxBody)
	if err != nil {
		return nil, BadRequest("read invocation body: %v", err)
	}
	req, err := DecodeRequest(body)
	if err != nil {
		return nil, err
	}
	req.Function, req.InvocationID = name, id
	resp, err = h(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		resp = &Response{}
	}
	if resp.Outputs == nil {
		resp.Outputs = map[string]any{}
	}
	if resp.Logs == nil {
		resp.Logs = []string{}
	}
	return resp, nil
}

// readBody reads a request body of at most max bytes into a buffer sized
// by its Content-Length (an Event Hubs batch is megabytes: growing a buffer
// by doubling would copy it over and over).
func readBody(r *http.Request, max int64) ([]byte, error) {
	body := http.MaxBytesReader(nil, r.Body, max)
	n := r.ContentLength
	if n <= 0 || n > max {
		return io.ReadAll(body)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	// The server ends the body at its Content-Length; read on all the same.
	rest, err := io.ReadAll(body)
	return append(buf, rest...), err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// WriteJSON writes v as a JSON response (for forwarded HTTP handlers).
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// WriteError writes {"error": msg} with status (for forwarded HTTP handlers).
func WriteError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// Serve listens on addr ("127.0.0.1:PORT" or ":PORT") until ctx ends, then
// shuts down gracefully. ready, if not nil, receives the bound address.
func Serve(ctx context.Context, addr string, h http.Handler, ready func(net.Addr)) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if ready != nil {
		ready(l.Addr())
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", addr, err)
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}

// ListenAddr is the handler's listen address for the port the host gives in
// FUNCTIONS_CUSTOMHANDLER_PORT. The host always connects to 127.0.0.1.
func ListenAddr(port string) string {
	if strings.Contains(port, ":") {
		return port
	}
	return "127.0.0.1:" + port
}
