// Package funchost plays the Azure Functions host's part against a custom
// handler, exactly as functions-host-protocol.md describes it: it reads
// host.json and each function.json, launches or attaches to the handler,
// waits for readiness, encodes trigger payloads with the host's quirks, and
// emulates each trigger's delivery semantics (Event Grid whole-batch
// redelivery and its webhook handshake, Event Hubs checkpoint-regardless
// with retry policies, NCRONTAB timers, forwarded HTTP). `palisade dev` and
// the end-to-end tests both use it.
package funchost

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
)

// HostJSON is the part of host.json the emulator reads.
type HostJSON struct {
	Version         string `json:"version"`
	FunctionTimeout string `json:"functionTimeout"`
	CustomHandler   *struct {
		Description struct {
			DefaultExecutablePath string   `json:"defaultExecutablePath"`
			Arguments             []string `json:"arguments"`
			WorkingDirectory      string   `json:"workingDirectory"`
		} `json:"description"`
		EnableForwardingHttpRequest bool `json:"enableForwardingHttpRequest"`
		EnableProxyingHttpRequest   bool `json:"enableProxyingHttpRequest"`
	} `json:"customHandler"`
	Retry *Retry `json:"retry"`
}

// Forwarding reports whether HTTP-only functions get the raw request. Both
// the older and the newer key are accepted.
func (h HostJSON) Forwarding() bool {
	return h.CustomHandler != nil && (h.CustomHandler.EnableForwardingHttpRequest || h.CustomHandler.EnableProxyingHttpRequest)
}

// Retry is a host- or function-level retry policy.
type Retry struct {
	Strategy        string `json:"strategy"` // fixedDelay | exponentialBackoff
	MaxRetryCount   int    `json:"maxRetryCount"`
	DelayInterval   string `json:"delayInterval"`
	MinimumInterval string `json:"minimumInterval"`
	MaximumInterval string `json:"maximumInterval"`
}

// Binding is one entry of function.json's bindings.
type Binding struct {
	Type          string   `json:"type"`
	Direction     string   `json:"direction"`
	Name          string   `json:"name"`
	DataType      string   `json:"dataType,omitempty"`
	Cardinality   string   `json:"cardinality,omitempty"`
	Schedule      string   `json:"schedule,omitempty"`
	RunOnStartup  bool     `json:"runOnStartup,omitempty"`
	UseMonitor    *bool    `json:"useMonitor,omitempty"`
	AuthLevel     string   `json:"authLevel,omitempty"`
	Methods       []string `json:"methods,omitempty"`
	Route         string   `json:"route,omitempty"`
	Connection    string   `json:"connection,omitempty"`
	EventHubName  string   `json:"eventHubName,omitempty"`
	ConsumerGroup string   `json:"consumerGroup,omitempty"`
}

// Function is one function folder.
type Function struct {
	Name     string    `json:"-"`
	Bindings []Binding `json:"bindings"`
	Retry    *Retry    `json:"retry,omitempty"`
	Disabled bool      `json:"disabled,omitempty"`
}

// Trigger returns the function's trigger binding.
func (f Function) Trigger() (Binding, bool) {
	for _, b := range f.Bindings {
		if strings.HasSuffix(b.Type, "Trigger") {
			return b, true
		}
	}
	return Binding{}, false
}

// HTTPOnly reports whether the function has exactly one input, an
// httpTrigger, and exactly one output, of type http: only such functions
// are forwarded.
func (f Function) HTTPOnly() bool {
	var in, out int
	var httpIn, httpOut bool
	for _, b := range f.Bindings {
		switch b.Direction {
		case "in":
			in++
			httpIn = b.Type == "httpTrigger"
		case "out":
			out++
			httpOut = b.Type == "http"
		}
	}
	return in == 1 && out == 1 && httpIn && httpOut
}

// App is a function app folder: host.json and one folder per function.
type App struct {
	Dir       string
	Host      HostJSON
	Functions map[string]Function
}

var functionName = regexp.MustCompile(`^[a-z][a-z0-9]*$`)

// LoadApp reads host.json and every <dir>/*/function.json, or, in a source
// checkout, <dir>/functions/*/function.json.
func LoadApp(dir string) (*App, error) {
	app, err := LoadAppFS(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("function app %s: %w", dir, err)
	}
	app.Dir = dir
	return app, nil
}

// LoadAppFS reads an app from fsys as LoadApp reads a folder (an app laid
// out by `make app`, or a source tree), e.g. the definitions embedded in the
// binary. The App's Dir is empty.
func LoadAppFS(fsys fs.FS) (*App, error) {
	b, err := fs.ReadFile(fsys, "host.json")
	if err != nil {
		return nil, fmt.Errorf("read host.json: %w", err)
	}
	app := &App{Functions: map[string]Function{}}
	if err := json.Unmarshal(b, &app.Host); err != nil {
		return nil, fmt.Errorf("host.json: %w", err)
	}
	paths, err := fs.Glob(fsys, "*/function.json")
	if err == nil && len(paths) == 0 {
		paths, err = fs.Glob(fsys, "functions/*/function.json")
	}
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		name := path.Base(path.Dir(p))
		if !functionName.MatchString(name) {
			return nil, fmt.Errorf("function folder %q: names are lower-case letters and digits", name)
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		var f Function
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if _, ok := f.Trigger(); !ok {
			return nil, fmt.Errorf("%s: no trigger binding", p)
		}
		f.Name = name
		app.Functions[name] = f
	}
	if len(app.Functions) == 0 {
		return nil, errors.New("no */function.json or functions/*/function.json")
	}
	return app, nil
}

// Names returns the function names, sorted.
func (a *App) Names() []string {
	names := make([]string, 0, len(a.Functions))
	for n := range a.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ExpandSetting resolves a %NAME% reference (as in a timer schedule) with
// getenv; other values are returned unchanged.
func ExpandSetting(v string, getenv func(string) string) (string, error) {
	if len(v) > 2 && strings.HasPrefix(v, "%") && strings.HasSuffix(v, "%") {
		name := v[1 : len(v)-1]
		if s := getenv(name); s != "" {
			return s, nil
		}
		return "", fmt.Errorf("app setting %s (referenced as %s) is not set", name, v)
	}
	return v, nil
}
