package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/sensor/sink"
)

// Config is every setting of the sensor, read once at start.
type Config struct {
	ClusterID string
	NodeName  string

	GRPCAddr                      string
	GRPCCert, GRPCKey, GRPCCA     string
	GRPCPollInterval              time.Duration
	HTTPAddr                      string
	HTTPMaxBodyBytes              int64
	OpsAddr                       string
	EventHubsConnectionString     string
	EventHubsNamespace            string
	EventHubName                  string
	BatchMaxBytes, BatchMaxEvents int
	FlushInterval, SendTimeout    time.Duration
	RetryMin, RetryMax            time.Duration
	BufferMaxEvents               int
	BufferMaxBytes                int64
	SpoolDir                      string
	SpoolMaxEvents                int
	SpoolMaxBytes                 int64
	ShutdownTimeout               time.Duration
	LogLevel                      string
	ReconnectMin, ReconnectMax    time.Duration
}

// setting is one row of the settings table: an environment variable, the
// flag that overrides it, its default and meaning.
type setting struct {
	Env, Flag, Default, Doc string
	Secret                  bool // never logged or printed
}

// settings is every setting the sensor reads. sensor/README.md documents
// each (a test checks it).
func settings() []setting {
	return []setting{
		{"PALISADE_SENSOR_CLUSTER_ID", "cluster-id", "", "Cluster identity put on every event (e.g. the AKS resource id). Required.", false},
		{"PALISADE_SENSOR_NODE_NAME", "node-name", "", "Node name put on every event and used as partition key; the host name when empty (the chart sets spec.nodeName).", false},
		{"PALISADE_SENSOR_GRPC_ADDR", "grpc-addr", "", "Falco gRPC outputs address: unix:///run/falco/falco.sock, or host:port (mTLS). Empty disables the gRPC input.", false},
		{"PALISADE_SENSOR_GRPC_CERT", "grpc-cert", "", "Client certificate (PEM) for a network gRPC address.", false},
		{"PALISADE_SENSOR_GRPC_KEY", "grpc-key", "", "Client key (PEM) for a network gRPC address.", false},
		{"PALISADE_SENSOR_GRPC_CA", "grpc-ca", "", "CA certificate (PEM) that signed Falco's gRPC server certificate.", false},
		{"PALISADE_SENSOR_GRPC_POLL_INTERVAL", "grpc-poll-interval", "100ms", "How long the gRPC stream may be idle before the sensor asks Falco again.", false},
		{"PALISADE_SENSOR_RECONNECT_MIN", "reconnect-min", "250ms", "First delay before reconnecting to Falco's gRPC server.", false},
		{"PALISADE_SENSOR_RECONNECT_MAX", "reconnect-max", "30s", "Longest delay between reconnections to Falco.", false},
		{"PALISADE_SENSOR_HTTP_ADDR", "http-addr", "127.0.0.1:2802", "Listen address for Falco's http_output JSON (POST). Empty disables the HTTP input.", false},
		{"PALISADE_SENSOR_HTTP_MAX_BODY_BYTES", "http-max-body-bytes", "1048576", "Largest http_output request body accepted.", false},
		{"PALISADE_SENSOR_OPS_ADDR", "ops-addr", ":9376", "Listen address for /healthz and /metrics. Empty disables them.", false},
		{"PALISADE_SENSOR_EVENTHUBS_CONNECTION_STRING", "eventhubs-connection-string", "", "Event Hubs connection string (may include EntityPath). Prefer Entra workload identity in Azure.", true},
		{"PALISADE_SENSOR_EVENTHUBS_NAMESPACE", "eventhubs-namespace", "", "Fully qualified Event Hubs namespace (NAME.servicebus.windows.net), used with Entra (workload identity, managed identity, or AZURE_* variables) when no connection string is set.", false},
		{"PALISADE_SENSOR_EVENTHUB_NAME", "eventhub-name", "runtime", "Event hub to send to (ignored when the connection string has EntityPath).", false},
		{"PALISADE_SENSOR_BATCH_MAX_BYTES", "batch-max-bytes", "1048576", "Largest batch, in bytes; at most 1048576 (1 MB, the Event Hubs limit).", false},
		{"PALISADE_SENSOR_BATCH_MAX_EVENTS", "batch-max-events", "5000", "Most events taken for one batch.", false},
		{"PALISADE_SENSOR_FLUSH_INTERVAL", "flush-interval", "1s", "Longest time an event waits for its batch to fill.", false},
		{"PALISADE_SENSOR_SEND_TIMEOUT", "send-timeout", "30s", "Time limit of one attempt to send a batch.", false},
		{"PALISADE_SENSOR_RETRY_MIN", "retry-min", "500ms", "First delay after a failed send.", false},
		{"PALISADE_SENSOR_RETRY_MAX", "retry-max", "30s", "Longest delay between failed sends.", false},
		{"PALISADE_SENSOR_BUFFER_MAX_EVENTS", "buffer-max-events", "50000", "Most events held in memory (without a spool).", false},
		{"PALISADE_SENSOR_BUFFER_MAX_BYTES", "buffer-max-bytes", "67108864", "Most bytes held in memory (without a spool).", false},
		{"PALISADE_SENSOR_SPOOL_DIR", "spool-dir", "", "Directory of the on-disk spool; when set, events are written there on arrival and survive outages and restarts.", false},
		{"PALISADE_SENSOR_SPOOL_MAX_EVENTS", "spool-max-events", "1000000", "Most events held in the spool.", false},
		{"PALISADE_SENSOR_SPOOL_MAX_BYTES", "spool-max-bytes", "1073741824", "Most bytes held in the spool.", false},
		{"PALISADE_SENSOR_SHUTDOWN_TIMEOUT", "shutdown-timeout", "20s", "Time allowed at shutdown to send what is buffered.", false},
		{"PALISADE_SENSOR_LOG_LEVEL", "log-level", "info", "Log level: debug, info, warn, error.", false},
	}
}

// loadConfig reads the settings from the environment (getenv) and then the
// command line (args), which wins, and returns every problem at once.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	fs := flag.NewFlagSet("palisade-sensor", flag.ContinueOnError)
	fs.SetOutput(usage)
	vals := map[string]*string{}
	for _, s := range settings() {
		def := s.Default
		if v := strings.TrimSpace(getenv(s.Env)); v != "" {
			def = v
		}
		shown := def
		if s.Secret {
			shown = ""
		}
		v := new(string)
		*v = def
		fs.Func(s.Flag, fmt.Sprintf("%s (env %s, default %q)", s.Doc, s.Env, shown), func(x string) error {
			*v = x
			return nil
		})
		vals[s.Env] = v
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	r := reader{vals: vals}
	c := Config{
		ClusterID:                 r.str("PALISADE_SENSOR_CLUSTER_ID"),
		NodeName:                  r.str("PALISADE_SENSOR_NODE_NAME"),
		GRPCAddr:                  r.str("PALISADE_SENSOR_GRPC_ADDR"),
		GRPCCert:                  r.str("PALISADE_SENSOR_GRPC_CERT"),
		GRPCKey:                   r.str("PALISADE_SENSOR_GRPC_KEY"),
		GRPCCA:                    r.str("PALISADE_SENSOR_GRPC_CA"),
		GRPCPollInterval:          r.dur("PALISADE_SENSOR_GRPC_POLL_INTERVAL"),
		ReconnectMin:              r.dur("PALISADE_SENSOR_RECONNECT_MIN"),
		ReconnectMax:              r.dur("PALISADE_SENSOR_RECONNECT_MAX"),
		HTTPAddr:                  r.str("PALISADE_SENSOR_HTTP_ADDR"),
		HTTPMaxBodyBytes:          int64(r.num("PALISADE_SENSOR_HTTP_MAX_BODY_BYTES")),
		OpsAddr:                   r.str("PALISADE_SENSOR_OPS_ADDR"),
		EventHubsConnectionString: r.str("PALISADE_SENSOR_EVENTHUBS_CONNECTION_STRING"),
		EventHubsNamespace:        r.str("PALISADE_SENSOR_EVENTHUBS_NAMESPACE"),
		EventHubName:              r.str("PALISADE_SENSOR_EVENTHUB_NAME"),
		BatchMaxBytes:             r.num("PALISADE_SENSOR_BATCH_MAX_BYTES"),
		BatchMaxEvents:            r.num("PALISADE_SENSOR_BATCH_MAX_EVENTS"),
		FlushInterval:             r.dur("PALISADE_SENSOR_FLUSH_INTERVAL"),
		SendTimeout:               r.dur("PALISADE_SENSOR_SEND_TIMEOUT"),
		RetryMin:                  r.dur("PALISADE_SENSOR_RETRY_MIN"),
		RetryMax:                  r.dur("PALISADE_SENSOR_RETRY_MAX"),
		BufferMaxEvents:           r.num("PALISADE_SENSOR_BUFFER_MAX_EVENTS"),
		BufferMaxBytes:            int64(r.num("PALISADE_SENSOR_BUFFER_MAX_BYTES")),
		SpoolDir:                  r.str("PALISADE_SENSOR_SPOOL_DIR"),
		SpoolMaxEvents:            r.num("PALISADE_SENSOR_SPOOL_MAX_EVENTS"),
		SpoolMaxBytes:             int64(r.num("PALISADE_SENSOR_SPOOL_MAX_BYTES")),
		ShutdownTimeout:           r.dur("PALISADE_SENSOR_SHUTDOWN_TIMEOUT"),
		LogLevel:                  r.str("PALISADE_SENSOR_LOG_LEVEL"),
	}
	return c, errors.Join(r.errs...)
}

// reader parses settings, collecting errors that name the setting.
type reader struct {
	vals map[string]*string
	errs []error
}

func (r *reader) str(env string) string {
	v, ok := r.vals[env]
	if !ok {
		r.errs = append(r.errs, fmt.Errorf("setting %s is read but not declared", env))
		return ""
	}
	return strings.TrimSpace(*v)
}

func (r *reader) num(env string) int {
	s := r.str(env)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a non-negative whole number", env, s))
	}
	return n
}

func (r *reader) dur(env string) time.Duration {
	s := r.str(env)
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a positive duration such as 500ms or 2s", env, s))
	}
	return d
}

// validate checks what no single setting can.
func (c Config) validate() error {
	var errs []error
	if c.ClusterID == "" {
		errs = append(errs, errors.New("PALISADE_SENSOR_CLUSTER_ID is required"))
	}
	if c.NodeName == "" {
		errs = append(errs, errors.New("PALISADE_SENSOR_NODE_NAME is empty and the host name is unknown"))
	}
	if c.GRPCAddr == "" && c.HTTPAddr == "" {
		errs = append(errs, errors.New("no input: set PALISADE_SENSOR_GRPC_ADDR, PALISADE_SENSOR_HTTP_ADDR or both"))
	}
	if c.EventHubsConnectionString == "" && c.EventHubsNamespace == "" {
		errs = append(errs, errors.New("no Event Hubs: set PALISADE_SENSOR_EVENTHUBS_CONNECTION_STRING, or PALISADE_SENSOR_EVENTHUBS_NAMESPACE with Entra credentials"))
	}
	if c.EventHubsConnectionString == "" && c.EventHubName == "" {
		errs = append(errs, errors.New("PALISADE_SENSOR_EVENTHUB_NAME is required with a namespace"))
	}
	if c.BatchMaxBytes < 1024 || c.BatchMaxBytes > sink.MaxBatchBytes {
		errs = append(errs, fmt.Errorf("PALISADE_SENSOR_BATCH_MAX_BYTES must be between 1024 and %d", sink.MaxBatchBytes))
	}
	for name, v := range map[string]int{
		"PALISADE_SENSOR_BATCH_MAX_EVENTS": c.BatchMaxEvents, "PALISADE_SENSOR_BUFFER_MAX_EVENTS": c.BufferMaxEvents,
		"PALISADE_SENSOR_SPOOL_MAX_EVENTS": c.SpoolMaxEvents,
	} {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1", name))
		}
	}
	if c.RetryMax < c.RetryMin {
		errs = append(errs, errors.New("PALISADE_SENSOR_RETRY_MAX is below PALISADE_SENSOR_RETRY_MIN"))
	}
	if c.ReconnectMax < c.ReconnectMin {
		errs = append(errs, errors.New("PALISADE_SENSOR_RECONNECT_MAX is below PALISADE_SENSOR_RECONNECT_MIN"))
	}
	return errors.Join(errs...)
}
