package funchost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"

	"github.com/palisade-sec/palisade/shared/logging"
)

// ServeMux returns the host's own HTTP surface, as Core Tools serves it:
//
//	POST /runtime/webhooks/eventgrid?functionName=NAME   Event Grid deliveries
//	POST /admin/functions/{name}  {"input": "..."}       run a non-HTTP function now
//	GET  /admin/host/status                              host status
//	/api/...                                             HTTP-triggered functions
func (h *Host) ServeMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /runtime/webhooks/eventgrid", h.serveEventGrid)
	mux.HandleFunc("POST /admin/functions/{name}", h.serveAdmin)
	mux.HandleFunc("GET /admin/host/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"state": "Running", "version": Version, "functions": h.App.Names()})
	})
	mux.HandleFunc("/api/", h.serveHTTPTrigger)
	return mux
}

// serveEventGrid is the Event Grid extension's webhook: it answers the
// subscription-validation handshake itself, and turns a notification into
// one invocation per event; any failure answers 500 so that Event Grid
// sends the whole batch again.
func (h *Host) serveEventGrid(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("functionName")
	if _, ok := h.App.Functions[name]; !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no function named %q", name)})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	events, err := splitEvents(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	switch r.Header.Get("aeg-event-type") {
	case "SubscriptionValidation":
		code, err := validationCode(events)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"validationResponse": code})
	case "Notification":
		if err := h.DeliverEventGrid(r.Context(), name, events, false); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		w.WriteHeader(http.StatusAccepted)
	case "Unsubscribe":
		w.WriteHeader(http.StatusAccepted)
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "missing or unknown aeg-event-type header"})
	}
}

// splitEvents accepts an array of events (Event Grid schema or a CloudEvents
// batch) or one structured CloudEvent object.
func splitEvents(body []byte) ([]json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	var events []json.RawMessage
	if len(body) > 0 && body[0] == '{' {
		if !json.Valid(body) {
			return nil, fmt.Errorf("event grid body is not valid JSON")
		}
		return []json.RawMessage{body}, nil
	}
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, fmt.Errorf("event grid body is neither an array of events nor one event: %v", err)
	}
	return events, nil
}

// validationCode reads the handshake code: data.validationCode of the first
// event, where CloudEvents carry data encoded as a string.
func validationCode(events []json.RawMessage) (string, error) {
	if len(events) == 0 {
		return "", fmt.Errorf("subscription validation with no event")
	}
	var ev struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(events[0], &ev); err != nil {
		return "", fmt.Errorf("subscription validation event: %v", err)
	}
	data := ev.Data
	var s string
	if json.Unmarshal(data, &s) == nil {
		data = json.RawMessage(s)
	}
	var v struct {
		ValidationCode string `json:"validationCode"`
	}
	if err := json.Unmarshal(data, &v); err != nil || v.ValidationCode == "" {
		return "", fmt.Errorf("subscription validation event has no data.validationCode")
	}
	return v.ValidationCode, nil
}

// serveAdmin runs a non-HTTP function now with {"input": "..."}: a timer
// fires, an Event Grid function takes the input as one event, an Event Hubs
// function as one event body. Unlike Core Tools, which answers 202 at once,
// it waits for the invocation so the caller sees failures.
func (h *Host) serveAdmin(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f, ok := h.App.Functions[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no function named %q", name)})
		return
	}
	var in struct {
		Input string `json:"input"`
	}
	if b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20)); len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &in); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be {"input": "<string>"}: ` + err.Error()})
			return
		}
	}
	err := h.RunNow(r.Context(), f, in.Input)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"function": name, "status": "succeeded"})
}

// RunNow invokes f once with input, encoded for its trigger type.
func (h *Host) RunNow(ctx context.Context, f Function, input string) error {
	trig, _ := f.Trigger()
	switch trig.Type {
	case "timerTrigger":
		return h.FireTimer(ctx, f.Name)
	case "eventGridTrigger":
		events, err := splitEvents([]byte(input))
		if err != nil {
			return err
		}
		return h.DeliverEventGrid(ctx, f.Name, events, false)
	case "eventHubTrigger":
		// One partition for every hub, its events numbered in order, as a
		// partition numbers them (a restart numbers from 1 again, with
		// later enqueued times, as a recreated event hub would).
		seq := h.seq.Add(1)
		_, err := h.DeliverEventHubs(ctx, f.Name, PartitionContext{EventHubName: trig.EventHubName, ConsumerGroup: "$Default", PartitionID: "0"},
			[]EventHubEvent{{Body: []byte(input), SequenceNumber: seq, Offset: seq, EnqueuedTime: h.Now()}})
		return err
	case "httpTrigger":
		return fmt.Errorf("function %s is HTTP-triggered: call its route instead", f.Name)
	}
	_, err := h.Invoke(ctx, f.Name, StringPayload(trig.Name, f.Name, input, h.Now()))
	return err
}

// serveHTTPTrigger routes /api/... to the first HTTP-triggered function, in
// name order, whose route and methods match, as the Functions host does: it
// registers the routes in that order, each with its methods as a route
// constraint, so a request whose method a matching route does not take
// goes on to the next route (the api function's catch-all GET route does
// not swallow POST /api/console/login). HTTP-only functions are forwarded
// unchanged when host.json enables it; others get the request as Data and
// answer through their http output binding.
func (h *Host) serveHTTPTrigger(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/api/")
	pathMatched := false
	for _, name := range h.App.Names() {
		f := h.App.Functions[name]
		trig, _ := f.Trigger()
		if trig.Type != "httpTrigger" {
			continue
		}
		route := trig.Route
		if route == "" {
			route = name
		}
		params, ok := matchRoute(route, path)
		if !ok {
			continue
		}
		if len(trig.Methods) > 0 && !slices.ContainsFunc(trig.Methods, func(m string) bool { return strings.EqualFold(m, r.Method) }) {
			pathMatched = true
			continue
		}
		if h.App.Host.Forwarding() && f.HTTPOnly() {
			h.forward(w, r)
			return
		}
		h.invokeHTTP(w, r, f, trig, params)
		return
	}
	if pathMatched {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": r.Method + " is not allowed"})
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "no HTTP function matches " + r.URL.Path})
}

func (h *Host) forward(w http.ResponseWriter, r *http.Request) {
	target, _ := url.Parse(h.Handler)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = r.Host
			pr.Out.Header.Set("X-Azure-Functions-HostVersion", Version)
			pr.Out.Header.Set("X-Azure-Functions-InvocationId", newID())
		},
	}
	proxy.ServeHTTP(w, r)
}

func (h *Host) invokeHTTP(w http.ResponseWriter, r *http.Request, f Function, trig Binding, params map[string]string) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	query := map[string]string{}
	for k, v := range r.URL.Query() {
		query[k] = strings.Join(v, ",")
	}
	req := map[string]any{"Url": "http://" + r.Host + r.URL.RequestURI(), "Method": r.Method, "Query": query, "Headers": r.Header, "Params": params}
	if len(body) > 0 {
		req["Body"] = string(body)
	}
	raw, _ := json.Marshal(req)
	res, err := h.Invoke(r.Context(), f.Name, Payload{Data: map[string]json.RawMessage{trig.Name: raw}, Metadata: map[string]json.RawMessage{"sys": sys(f.Name, h.Now())}})
	if err != nil {
		h.Log.Error().Err(err).Str(logging.FieldFunction, f.Name).Msg("http invocation failed")
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "function failed"})
		return
	}
	var out struct {
		StatusCode json.Number       `json:"statusCode"`
		Status     json.Number       `json:"status"`
		Body       json.RawMessage   `json:"body"`
		Headers    map[string]string `json:"headers"`
	}
	for _, b := range f.Bindings {
		if b.Direction == "out" && b.Type == "http" {
			if raw, ok := res.Outputs[b.Name]; ok {
				if err := json.Unmarshal(raw, &out); err != nil {
					writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "failed while trying to deserialize to httpOutputBindingResponse"})
					return
				}
			}
		}
	}
	status := http.StatusOK
	if n, err := out.StatusCode.Int64(); err == nil {
		status = int(n)
	} else if n, err := out.Status.Int64(); err == nil {
		status = int(n)
	}
	for k, v := range out.Headers {
		w.Header().Set(k, v)
	}
	var s string
	if json.Unmarshal(out.Body, &s) == nil {
		out.Body = json.RawMessage(s)
	}
	w.WriteHeader(status)
	_, _ = w.Write(out.Body)
}

// matchRoute matches a route template ("images/{digest}", "{*path}") against
// a path relative to /api/.
func matchRoute(route, path string) (map[string]string, bool) {
	rs := strings.Split(strings.Trim(route, "/"), "/")
	ps := strings.Split(strings.Trim(path, "/"), "/")
	params := map[string]string{}
	for i, seg := range rs {
		if strings.HasPrefix(seg, "{*") && strings.HasSuffix(seg, "}") {
			params[seg[2:len(seg)-1]] = strings.Join(ps[min(i, len(ps)):], "/")
			return params, true
		}
		if i >= len(ps) {
			return nil, false
		}
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			name, _, _ := strings.Cut(seg[1:len(seg)-1], ":")
			name = strings.TrimSuffix(name, "?")
			params[name] = ps[i]
			continue
		}
		if !strings.EqualFold(seg, ps[i]) {
			return nil, false
		}
	}
	return params, len(rs) == len(ps)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
