package falco

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/falcoevent"
	"github.com/palisade-sec/palisade/shared/logging"
)

// HTTPOptions configures the http_output input.
type HTTPOptions struct {
	// MaxBodyBytes bounds one request body.
	MaxBodyBytes int64
}

func (o *HTTPOptions) defaults() {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
}

// HTTPInput receives Falco's http_output: a POST whose body is one JSON alert,
// or several, one per line (json_output lines).
type HTTPInput struct {
	opts HTTPOptions
	recv Receiver
	log  zerolog.Logger
}

// NewHTTPInput returns an input for opts (defaults applied).
func NewHTTPInput(opts HTTPOptions, recv Receiver, log zerolog.Logger) *HTTPInput {
	opts.defaults()
	return &HTTPInput{opts: opts, recv: recv, log: log.With().Str(logging.FieldComponent, "http-input").Logger()}
}

// ServeHTTP implements http.Handler.
func (h *HTTPInput) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST Falco JSON alerts here", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		h.recv.Invalid("http", fmt.Errorf("%w: read body: %w", falcoevent.ErrInvalid, err))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	accepted, invalid := 0, 0
	var firstErr error
	if one := bytes.TrimSpace(body); len(one) > 0 && bytes.IndexByte(one, '\n') < 0 {
		// One alert per request, as http_output posts: decode it once.
		ev, err := falcoevent.DecodeJSON(one)
		if err != nil {
			h.recv.Invalid("http", err)
			http.Error(w, fmt.Sprintf("0 accepted, 1 invalid: %v", err), http.StatusBadRequest)
			return
		}
		h.recv.Receive(ev, "http")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{\"accepted\":1}\n") // the event is already taken; a lost reply changes nothing
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The rest of the body cannot be framed: count it as one.
			invalid++
			firstErr = cmpErr(firstErr, fmt.Errorf("%w: %w", falcoevent.ErrInvalid, err))
			h.recv.Invalid("http", err)
			break
		}
		ev, err := falcoevent.DecodeJSON(raw)
		if err != nil {
			invalid++
			firstErr = cmpErr(firstErr, err)
			h.recv.Invalid("http", err)
			continue
		}
		accepted++
		h.recv.Receive(ev, "http")
	}
	if accepted == 0 && invalid == 0 {
		h.recv.Invalid("http", fmt.Errorf("%w: empty body", falcoevent.ErrInvalid))
		http.Error(w, "empty body", http.StatusBadRequest)
		return
	}
	if invalid > 0 {
		h.log.Debug().Err(firstErr).Int(logging.FieldCount, invalid).Msg("invalid falco json")
		http.Error(w, fmt.Sprintf("%d accepted, %d invalid: %v", accepted, invalid, firstErr), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"accepted\":%d}\n", accepted)
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
