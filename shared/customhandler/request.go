// Package customhandler speaks the Azure Functions custom-handler protocol
// from the handler's side: the host posts {"Data":…,"Metadata":…} to
// /{function} and expects {"Outputs":…,"Logs":…,"ReturnValue":…} with a JSON
// content type, or forwards HTTP-trigger requests unchanged.
//
// The decoders here absorb the host's serialisation quirks (see
// functions-host-protocol.md §2.1): strings JSON-encoded twice, arrays sent as
// strings holding JSON, numbers in Metadata sent as strings, and trigger
// values that arrive either as an object or as a string holding the object.
package customhandler

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadRequest marks an invocation whose body cannot be decoded. The
// handler answers it with 400; the host treats any non-2xx as a failure.
var ErrBadRequest = errors.New("bad request")

// BadRequest returns an error wrapping ErrBadRequest.
func BadRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

// Request is one invocation as the host posts it.
type Request struct {
	Function     string                     `json:"-"`
	InvocationID string                     `json:"-"`
	Data         map[string]json.RawMessage `json:"Data"`
	Metadata     map[string]json.RawMessage `json:"Metadata"`
}

// RetryContext is present in Metadata when a retry policy is in effect.
type RetryContext struct {
	RetryCount    int             `json:"RetryCount"`
	MaxRetryCount int             `json:"MaxRetryCount"`
	Exception     json.RawMessage `json:"Exception,omitempty"`
}

// DecodeRequest parses an invocation body.
func DecodeRequest(body []byte) (*Request, error) {
	r, ok := scanRequest(body)
	if !ok {
		r = &Request{}
		if err := json.Unmarshal(body, r); err != nil {
			return nil, BadRequest("invocation body is not a JSON object with Data and Metadata: %v", err)
		}
	}
	if r.Data == nil {
		return nil, BadRequest(`invocation body has no "Data" object`)
	}
	return r, nil
}

// DataString returns input binding name as a string, undoing the host's
// double encoding. An object or array value is returned as its JSON text.
func (r *Request) DataString(name string) (string, error) {
	raw, err := r.data(name)
	if err != nil {
		return "", err
	}
	return text(raw), nil
}

// DataJSON decodes input binding name into v. The value may be a JSON object
// or array, or a string holding one (possibly encoded twice), as the host
// sends Event Grid events and JSON trigger values in either form.
func (r *Request) DataJSON(name string, v any) error {
	raw, err := r.data(name)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(text(raw)), v); err != nil {
		return BadRequest("Data.%s is not the expected JSON: %v", name, err)
	}
	return nil
}

// DataStrings returns the items of a cardinality "many" trigger. The host
// sends the array as a string holding JSON: of strings with dataType
// "string", of objects without a dataType. Each item comes back as text:
// a string item as its content, an object item as its JSON.
func (r *Request) DataStrings(name string) ([]string, error) {
	items, err := r.DataItems(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = string(it)
	}
	return out, nil
}

// dataStrings is DataStrings through encoding/json.
func (r *Request) dataStrings(name string) ([]string, error) {
	raw, err := r.data(name)
	if err != nil {
		return nil, err
	}
	arr := []byte(text(raw))
	var strs []string
	if json.Unmarshal(arr, &strs) == nil {
		return strs, nil // dataType "string": one pass
	}
	var items []json.RawMessage
	if err := json.Unmarshal(arr, &items); err != nil {
		return nil, BadRequest("Data.%s is not an array (or a string holding one): %v", name, err)
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = text(it)
	}
	return out, nil
}

// DataBinaries returns the items of a cardinality "many" trigger with
// dataType "binary": base64 strings in a string holding a JSON array.
func (r *Request) DataBinaries(name string) ([][]byte, error) {
	items, err := r.DataStrings(name)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(items))
	for i, s := range items {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, BadRequest("Data.%s[%d] is not base64: %v", name, i, err)
		}
		out[i] = b
	}
	return out, nil
}

// MetaString returns metadata key as a string (numbers and booleans arrive
// as strings; objects as their JSON). ok is false when the key is absent.
func (r *Request) MetaString(key string) (s string, ok bool) {
	raw, ok := r.Metadata[key]
	if !ok || string(raw) == "null" {
		return "", false
	}
	return text(raw), true
}

// MetaInt returns metadata key as an integer, accepting "42" and 42.
func (r *Request) MetaInt(key string) (int64, bool, error) {
	s, ok := r.MetaString(key)
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, true, BadRequest("Metadata.%s is not an integer: %q", key, s)
	}
	return n, true, nil
}

// MetaJSON decodes metadata key into v; arrays and objects may arrive as
// strings holding JSON.
func (r *Request) MetaJSON(key string, v any) (bool, error) {
	s, ok := r.MetaString(key)
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return true, BadRequest("Metadata.%s is not the expected JSON: %v", key, err)
	}
	return true, nil
}

// Retry returns the retry context, if the host sent one.
func (r *Request) Retry() (RetryContext, bool) {
	var rc RetryContext
	ok, err := r.MetaJSON("RetryContext", &rc)
	return rc, ok && err == nil
}

func (r *Request) data(name string) (json.RawMessage, error) {
	raw, ok := r.Data[name]
	if !ok || len(raw) == 0 || string(raw) == "null" {
		return nil, BadRequest("Data has no %q input binding", name)
	}
	return raw, nil
}

// text undoes the host's string encoding: a JSON string is decoded, and
// decoded once more when its content is itself a JSON string literal (the
// host's JsonConvert.SerializeObject of a string). Anything else is returned
// as its JSON text.
func text(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return string(raw)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return string(raw)
	}
	if t := strings.TrimSpace(s); len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' {
		var inner string
		if json.Unmarshal([]byte(t), &inner) == nil {
			return inner
		}
	}
	return s
}
