package funchost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/logging"
)

// Version is the host version the emulator reports in its headers.
const Version = "4.1037.0.0"

// Host invokes functions of an App on a running custom handler.
type Host struct {
	App     *App
	Handler string // http://127.0.0.1:PORT
	Log     zerolog.Logger
	Now     func() time.Time
	// RetryScale multiplies platform retry delays (Event Grid's schedule,
	// retry policies); tests set it small. 0 means real delays.
	RetryScale float64
	client     *http.Client
	proc       *exec.Cmd
	// seq numbers the events RunNow sends to each event hub, as a
	// partition numbers its events: detection tells a redelivered event by
	// its sequence number.
	seq atomic.Int64
}

// ErrInvocation is wrapped by every failed invocation.
var ErrInvocation = errors.New("invocation failed")

// Attach returns a host for a handler already listening at handlerURL.
func Attach(app *App, handlerURL string, log zerolog.Logger) *Host {
	timeout := 30 * time.Minute
	if d, err := parseTimeSpan(app.Host.FunctionTimeout); err == nil && d > 0 {
		timeout = d + time.Minute // the host lets the function timeout fire first
	}
	return &Host{App: app, Handler: handlerURL, Log: log, Now: time.Now, client: &http.Client{Timeout: timeout}}
}

// Launch starts the handler as the host does: the executable from
// host.json's customHandler description (or exe when not empty), in the app
// folder, with the host's environment variables and a free port; then waits
// until GET / answers.
func Launch(ctx context.Context, app *App, exe string, env []string, log zerolog.Logger) (*Host, error) {
	if app.Host.CustomHandler == nil {
		return nil, errors.New("host.json has no customHandler section")
	}
	desc := app.Host.CustomHandler.Description
	if exe == "" {
		exe = desc.DefaultExecutablePath
		if !isAbs(exe) {
			exe = app.Dir + "/" + exe
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := make([]string, len(desc.Arguments))
	for i, a := range desc.Arguments {
		args[i] = os.Expand(percentToDollar(a), os.Getenv)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = app.Dir
	if desc.WorkingDirectory != "" {
		cmd.Dir = app.Dir + "/" + desc.WorkingDirectory
	}
	id := uuid.NewString()
	p := strconv.Itoa(port)
	cmd.Env = append(append(os.Environ(), env...),
		"FUNCTIONS_CUSTOMHANDLER_PORT="+p, "FUNCTIONS_CUSTOMHANDLER_WORKER_ID="+id,
		"FUNCTIONS_HTTPWORKER_PORT="+p, "FUNCTIONS_HTTPWORKER_ID="+id,
		"FUNCTIONS_APP_ROOT_PATH="+app.Dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start custom handler %s: %w", exe, err)
	}
	h := Attach(app, "http://127.0.0.1:"+p, log)
	h.proc = cmd
	if err := h.WaitReady(ctx, 30*time.Second); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	return h, nil
}

// Stop ends a launched handler.
func (h *Host) Stop() {
	if h.proc != nil && h.proc.Process != nil {
		_ = h.proc.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = h.proc.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = h.proc.Process.Kill()
			<-done
		}
	}
}

// WaitReady polls GET / every 25 ms until any HTTP response arrives (a 404
// counts), as the host does; only connection errors mean "keep waiting".
func (h *Host) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.Handler+"/", nil)
		resp, err := h.client.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		var op *net.OpError
		if !errors.As(err, &op) {
			return nil // any other failure counts as ready, as in the host
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("initializing custom handler timed out after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Result is a successful invocation's response.
type Result struct {
	Outputs     map[string]json.RawMessage `json:"Outputs"`
	Logs        []string                   `json:"Logs"`
	ReturnValue json.RawMessage            `json:"ReturnValue"`
}

// Invoke posts p to /{function} and applies the host's response rules: a
// non-2xx status fails the invocation, a 2xx must be JSON with a JSON
// content type, and a null body would hang the real host (reported here as
// a failure).
func (h *Host) Invoke(ctx context.Context, function string, p Payload) (*Result, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	id := uuid.NewString()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.Handler+"/"+function, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("X-Azure-Functions-InvocationId", id)
	req.Header.Set("X-Azure-Functions-HostVersion", Version)
	req.Header.Set("User-Agent", "Azure-Functions-Host/"+Version)
	log := h.Log.With().Str(logging.FieldFunction, function).Str(logging.FieldInvocationID, id).Logger()
	start := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvocation, function, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: read response: %v", ErrInvocation, function, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		log.Warn().Int("status", resp.StatusCode).Bytes("body", truncate(out, 512)).Msg("invocation failed")
		return nil, fmt.Errorf("%w: %s: response status code does not indicate success: %d: %s", ErrInvocation, function, resp.StatusCode, truncate(out, 512))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return nil, fmt.Errorf("%w: %s: invalid HttpResponseMessage: content type %q is not JSON", ErrInvocation, function, resp.Header.Get("Content-Type"))
	}
	var r *Result
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: invalid HttpResponseMessage: %v", ErrInvocation, function, err)
	}
	if r == nil {
		return nil, fmt.Errorf("%w: %s: the response body is null: the host would wait until the function timeout", ErrInvocation, function)
	}
	for _, l := range r.Logs {
		log.Info().Str("handler_log", l).Msg("function log")
	}
	log.Debug().Dur(logging.FieldDuration, time.Since(start)).Msg("invocation succeeded")
	return r, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func isAbs(p string) bool { return len(p) > 0 && p[0] == '/' }

// percentToDollar turns the host's %VAR% references into $VAR for os.Expand.
func percentToDollar(s string) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if j := bytes.IndexByte([]byte(s[i+1:]), '%'); j > 0 {
				out = append(out, "${"+s[i+1:i+1+j]+"}"...)
				i += j + 1
				continue
			}
		}
		out = append(out, s[i])
	}
	return string(out)
}

// parseTimeSpan parses host.json's "hh:mm:ss" functionTimeout.
func parseTimeSpan(s string) (time.Duration, error) {
	var hh, mm, ss int
	if _, err := fmt.Sscanf(s, "%d:%d:%d", &hh, &mm, &ss); err != nil {
		return 0, fmt.Errorf("time span %q: want hh:mm:ss", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second, nil
}

func newID() string { return uuid.NewString() }
