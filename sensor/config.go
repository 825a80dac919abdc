package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/palisade-sec/palisade/shared/ehsink"
	"github.com/palisade-sec/palisade/shared/envflag"
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

// settings is every setting the sensor reads. sensor/README.md documents
// each (a test checks it).
func settings() []envflag.Setting {
	return []envflag.Setting{
		{Env: "PALISADE_SENSOR_CLUSTER_ID", Flag: "cluster-id", Default: "", Doc: "Cluster identity put on every event (e.g. the AKS resource id). Required."},
		{Env: "PALISADE_SENSOR_NODE_NAME", Flag: "node-name", Default: "", Doc: "Node name put on every event and used as partition key; the host name when empty (the chart sets spec.nodeName)."},
		{Env: "PALISADE_SENSOR_GRPC_ADDR", Flag: "grpc-addr", Default: "", Doc: "Falco gRPC outputs address: unix:///run/falco/falco.sock, or host:port (mTLS). Empty disables the gRPC input."},
		{Env: "PALISADE_SENSOR_GRPC_CERT", Flag: "grpc-cert", Default: "", Doc: "Client certificate (PEM) for a network gRPC address."},
		{Env: "PALISADE_SENSOR_GRPC_KEY", Flag: "grpc-key", Default: "", Doc: "Client key (PEM) for a network gRPC address."},
		{Env: "PALISADE_SENSOR_GRPC_CA", Flag: "grpc-ca", Default: "", Doc: "CA certificate (PEM) that signed Falco's gRPC server certificate."},
		{Env: "PALISADE_SENSOR_GRPC_POLL_INTERVAL", Flag: "grpc-poll-interval", Default: "100ms", Doc: "How long the gRPC stream may be idle before the sensor asks Falco again."},
		{Env: "PALISADE_SENSOR_RECONNECT_MIN", Flag: "reconnect-min", Default: "250ms", Doc: "First delay before reconnecting to Falco's gRPC server."},
		{Env: "PALISADE_SENSOR_RECONNECT_MAX", Flag: "reconnect-max", Default: "30s", Doc: "Longest delay between reconnections to Falco."},
		{Env: "PALISADE_SENSOR_HTTP_ADDR", Flag: "http-addr", Default: "127.0.0.1:2802", Doc: "Listen address for Falco's http_output JSON (POST). Empty disables the HTTP input."},
		{Env: "PALISADE_SENSOR_HTTP_MAX_BODY_BYTES", Flag: "http-max-body-bytes", Default: "1048576", Doc: "Largest http_output request body accepted."},
		{Env: "PALISADE_SENSOR_OPS_ADDR", Flag: "ops-addr", Default: ":9376", Doc: "Listen address for /healthz and /metrics. Empty disables them."},
		{Env: "PALISADE_SENSOR_EVENTHUBS_CONNECTION_STRING", Flag: "eventhubs-connection-string", Default: "", Doc: "Event Hubs connection string (may include EntityPath). Prefer Entra workload identity in Azure.", Secret: true},
		{Env: "PALISADE_SENSOR_EVENTHUBS_NAMESPACE", Flag: "eventhubs-namespace", Default: "", Doc: "Fully qualified Event Hubs namespace (NAME.servicebus.windows.net), used with Entra (workload identity, managed identity, or AZURE_* variables) when no connection string is set."},
		{Env: "PALISADE_SENSOR_EVENTHUB_NAME", Flag: "eventhub-name", Default: "runtime", Doc: "Event hub to send to (ignored when the connection string has EntityPath)."},
		{Env: "PALISADE_SENSOR_BATCH_MAX_BYTES", Flag: "batch-max-bytes", Default: "1048576", Doc: "Largest batch, in bytes; at most 1048576 (1 MB, the Event Hubs limit)."},
		{Env: "PALISADE_SENSOR_BATCH_MAX_EVENTS", Flag: "batch-max-events", Default: "5000", Doc: "Most events taken for one batch."},
		{Env: "PALISADE_SENSOR_FLUSH_INTERVAL", Flag: "flush-interval", Default: "1s", Doc: "Longest time an event waits for its batch to fill."},
		{Env: "PALISADE_SENSOR_SEND_TIMEOUT", Flag: "send-timeout", Default: "30s", Doc: "Time limit of one attempt to send a batch."},
		{Env: "PALISADE_SENSOR_RETRY_MIN", Flag: "retry-min", Default: "500ms", Doc: "First delay after a failed send."},
		{Env: "PALISADE_SENSOR_RETRY_MAX", Flag: "retry-max", Default: "30s", Doc: "Longest delay between failed sends."},
		{Env: "PALISADE_SENSOR_BUFFER_MAX_EVENTS", Flag: "buffer-max-events", Default: "50000", Doc: "Most events held in memory (without a spool)."},
		{Env: "PALISADE_SENSOR_BUFFER_MAX_BYTES", Flag: "buffer-max-bytes", Default: "67108864", Doc: "Most bytes held in memory (without a spool)."},
		{Env: "PALISADE_SENSOR_SPOOL_DIR", Flag: "spool-dir", Default: "", Doc: "Directory of the on-disk spool; when set, events are written there on arrival and survive outages and restarts."},
		{Env: "PALISADE_SENSOR_SPOOL_MAX_EVENTS", Flag: "spool-max-events", Default: "1000000", Doc: "Most events held in the spool."},
		{Env: "PALISADE_SENSOR_SPOOL_MAX_BYTES", Flag: "spool-max-bytes", Default: "1073741824", Doc: "Most bytes held in the spool."},
		{Env: "PALISADE_SENSOR_SHUTDOWN_TIMEOUT", Flag: "shutdown-timeout", Default: "20s", Doc: "Time allowed at shutdown to send what is buffered."},
		{Env: "PALISADE_SENSOR_LOG_LEVEL", Flag: "log-level", Default: "info", Doc: "Log level: debug, info, warn, error."},
	}
}

// loadConfig reads the settings from the environment (getenv) and then the
// command line (args), which wins, and returns every problem at once.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	r, err := envflag.Parse("palisade-sensor", settings(), args, getenv, usage)
	if err != nil {
		return Config{}, err
	}
	c := Config{
		ClusterID:                 r.Str("PALISADE_SENSOR_CLUSTER_ID"),
		NodeName:                  r.Str("PALISADE_SENSOR_NODE_NAME"),
		GRPCAddr:                  r.Str("PALISADE_SENSOR_GRPC_ADDR"),
		GRPCCert:                  r.Str("PALISADE_SENSOR_GRPC_CERT"),
		GRPCKey:                   r.Str("PALISADE_SENSOR_GRPC_KEY"),
		GRPCCA:                    r.Str("PALISADE_SENSOR_GRPC_CA"),
		GRPCPollInterval:          r.Dur("PALISADE_SENSOR_GRPC_POLL_INTERVAL"),
		ReconnectMin:              r.Dur("PALISADE_SENSOR_RECONNECT_MIN"),
		ReconnectMax:              r.Dur("PALISADE_SENSOR_RECONNECT_MAX"),
		HTTPAddr:                  r.Str("PALISADE_SENSOR_HTTP_ADDR"),
		HTTPMaxBodyBytes:          int64(r.Num("PALISADE_SENSOR_HTTP_MAX_BODY_BYTES")),
		OpsAddr:                   r.Str("PALISADE_SENSOR_OPS_ADDR"),
		EventHubsConnectionString: r.Str("PALISADE_SENSOR_EVENTHUBS_CONNECTION_STRING"),
		EventHubsNamespace:        r.Str("PALISADE_SENSOR_EVENTHUBS_NAMESPACE"),
		EventHubName:              r.Str("PALISADE_SENSOR_EVENTHUB_NAME"),
		BatchMaxBytes:             r.Num("PALISADE_SENSOR_BATCH_MAX_BYTES"),
		BatchMaxEvents:            r.Num("PALISADE_SENSOR_BATCH_MAX_EVENTS"),
		FlushInterval:             r.Dur("PALISADE_SENSOR_FLUSH_INTERVAL"),
		SendTimeout:               r.Dur("PALISADE_SENSOR_SEND_TIMEOUT"),
		RetryMin:                  r.Dur("PALISADE_SENSOR_RETRY_MIN"),
		RetryMax:                  r.Dur("PALISADE_SENSOR_RETRY_MAX"),
		BufferMaxEvents:           r.Num("PALISADE_SENSOR_BUFFER_MAX_EVENTS"),
		BufferMaxBytes:            int64(r.Num("PALISADE_SENSOR_BUFFER_MAX_BYTES")),
		SpoolDir:                  r.Str("PALISADE_SENSOR_SPOOL_DIR"),
		SpoolMaxEvents:            r.Num("PALISADE_SENSOR_SPOOL_MAX_EVENTS"),
		SpoolMaxBytes:             int64(r.Num("PALISADE_SENSOR_SPOOL_MAX_BYTES")),
		ShutdownTimeout:           r.Dur("PALISADE_SENSOR_SHUTDOWN_TIMEOUT"),
		LogLevel:                  r.Str("PALISADE_SENSOR_LOG_LEVEL"),
	}
	return c, r.Err()
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
	if c.BatchMaxBytes < 1024 || c.BatchMaxBytes > ehsink.MaxBatchBytes {
		errs = append(errs, fmt.Errorf("PALISADE_SENSOR_BATCH_MAX_BYTES must be between 1024 and %d", ehsink.MaxBatchBytes))
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
