package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/palisade-sec/palisade/shared/envflag"
	"github.com/palisade-sec/palisade/shared/inventory"
)

// Config is every setting of the agent, read once at start.
type Config struct {
	ClusterID                 string
	Name, Namespace           string
	Kubeconfig                string
	EventHubsConnectionString string
	EventHubsNamespace        string
	EventHubName              string
	Resync, FlushInterval     time.Duration
	Heartbeat                 time.Duration
	MaxMessageBytes           int
	BufferMaxBytes            int64
	SendTimeout               time.Duration
	RetryMin, RetryMax        time.Duration
	LeaderElection            bool
	LeaseName                 string
	OpsAddr                   string
	APIURL, APIKey            string
	Remediation               bool
	RemediationInterval       time.Duration
	ShutdownTimeout           time.Duration
	LogLevel                  string
	Gate                      GateConfig
}

// settings is every setting the agent reads. agent/README.md documents
// each (a test checks it).
func settings() []envflag.Setting {
	return append([]envflag.Setting{
		{Env: "PALISADE_AGENT_CLUSTER_ID", Flag: "cluster-id", Doc: "Cluster identity put on every message (the AKS resource id, as ARM and the sensor name it). Required."},
		{Env: "PALISADE_AGENT_NAME", Flag: "name", Doc: "Name of this instance (the chart sets the pod name); the host name when empty."},
		{Env: "PALISADE_AGENT_NAMESPACE", Flag: "namespace", Default: "palisade", Doc: "Namespace of the leader-election Lease (the chart sets the pod's namespace)."},
		{Env: "PALISADE_AGENT_KUBECONFIG", Flag: "kubeconfig", Doc: "Kubeconfig file of the cluster. Empty: the in-cluster service account."},
		{Env: "PALISADE_AGENT_EVENTHUBS_CONNECTION_STRING", Flag: "eventhubs-connection-string", Doc: "Event Hubs connection string (may include EntityPath). Prefer Entra workload identity in Azure.", Secret: true},
		{Env: "PALISADE_AGENT_EVENTHUBS_NAMESPACE", Flag: "eventhubs-namespace", Doc: "Fully qualified Event Hubs namespace (NAME.servicebus.windows.net), used with Entra (workload identity, managed identity, or AZURE_* variables) when no connection string is set."},
		{Env: "PALISADE_AGENT_EVENTHUB_NAME", Flag: "eventhub-name", Default: "inventory", Doc: "Event hub to send to (ignored when the connection string has EntityPath)."},
		{Env: "PALISADE_AGENT_RESYNC", Flag: "resync", Default: "1h", Doc: "Time between full snapshots (one is also sent at start and on taking the lead)."},
		{Env: "PALISADE_AGENT_FLUSH_INTERVAL", Flag: "flush-interval", Default: "5s", Doc: "Time between changes messages: an object changed several times in between is sent once, as it is then."},
		{Env: "PALISADE_AGENT_HEARTBEAT", Flag: "heartbeat", Default: "5m", Doc: "Longest time without a message: a heartbeat is sent when nothing else was (keep it well under the function app's PALISADE_AGENT_STALE_AFTER)."},
		{Env: "PALISADE_AGENT_MAX_MESSAGE_BYTES", Flag: "max-message-bytes", Default: "960000", Doc: "Largest message (compressed), under Event Hubs' 1 MB; snapshots are cut into parts of at most this."},
		{Env: "PALISADE_AGENT_BUFFER_MAX_BYTES", Flag: "buffer-max-bytes", Default: "67108864", Doc: "Most bytes of messages held while Event Hubs cannot be reached; past it the oldest are dropped and a new snapshot follows."},
		{Env: "PALISADE_AGENT_SEND_TIMEOUT", Flag: "send-timeout", Default: "30s", Doc: "Time limit of one attempt to send a batch."},
		{Env: "PALISADE_AGENT_RETRY_MIN", Flag: "retry-min", Default: "500ms", Doc: "First delay after a failed send."},
		{Env: "PALISADE_AGENT_RETRY_MAX", Flag: "retry-max", Default: "30s", Doc: "Longest delay between failed sends."},
		{Env: "PALISADE_AGENT_LEADER_ELECTION", Flag: "leader-election", Default: "true", Doc: "true: of several replicas only the holder of the Lease sends and remediates (the others keep their cache warm to take over). false: send alone (one replica only)."},
		{Env: "PALISADE_AGENT_LEASE_NAME", Flag: "lease-name", Default: "palisade-agent", Doc: "Name of the coordination.k8s.io Lease used for leader election."},
		{Env: "PALISADE_AGENT_OPS_ADDR", Flag: "ops-addr", Default: ":9377", Doc: "Listen address for /healthz and /metrics. Empty disables them."},
		{Env: "PALISADE_AGENT_API_URL", Flag: "api-url", Doc: "Base URL of the Palisade API (https://APP.azurewebsites.net), for remediation instructions."},
		{Env: "PALISADE_AGENT_API_KEY", Flag: "api-key", Doc: "Function key sent to the Palisade API (x-functions-key).", Secret: true},
		{Env: "PALISADE_AGENT_REMEDIATION", Flag: "remediation", Default: "false", Doc: "true: fetch remediation instructions from the API and apply them with server-side apply (needs the chart's remediation RBAC and PALISADE_AGENT_API_URL)."},
		{Env: "PALISADE_AGENT_REMEDIATION_INTERVAL", Flag: "remediation-interval", Default: "10m", Doc: "Time between requests for remediation instructions."},
		{Env: "PALISADE_AGENT_SHUTDOWN_TIMEOUT", Flag: "shutdown-timeout", Default: "20s", Doc: "Time allowed at shutdown to send what is queued."},
		{Env: "PALISADE_AGENT_LOG_LEVEL", Flag: "log-level", Default: "info", Doc: "Log level: debug, info, warn, error."},
	}, gateSettings()...)
}

// loadConfig reads the settings from the environment (getenv) and then the
// command line (args), which wins, and returns every problem at once.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	r, err := envflag.Parse("palisade-agent", settings(), args, getenv, usage)
	if err != nil {
		return Config{}, err
	}
	c := Config{
		ClusterID:                 r.Str("PALISADE_AGENT_CLUSTER_ID"),
		Name:                      r.Str("PALISADE_AGENT_NAME"),
		Namespace:                 r.Str("PALISADE_AGENT_NAMESPACE"),
		Kubeconfig:                r.Str("PALISADE_AGENT_KUBECONFIG"),
		EventHubsConnectionString: r.Str("PALISADE_AGENT_EVENTHUBS_CONNECTION_STRING"),
		EventHubsNamespace:        r.Str("PALISADE_AGENT_EVENTHUBS_NAMESPACE"),
		EventHubName:              r.Str("PALISADE_AGENT_EVENTHUB_NAME"),
		Resync:                    r.Dur("PALISADE_AGENT_RESYNC"),
		FlushInterval:             r.Dur("PALISADE_AGENT_FLUSH_INTERVAL"),
		Heartbeat:                 r.Dur("PALISADE_AGENT_HEARTBEAT"),
		MaxMessageBytes:           r.Num("PALISADE_AGENT_MAX_MESSAGE_BYTES"),
		BufferMaxBytes:            int64(r.Num("PALISADE_AGENT_BUFFER_MAX_BYTES")),
		SendTimeout:               r.Dur("PALISADE_AGENT_SEND_TIMEOUT"),
		RetryMin:                  r.Dur("PALISADE_AGENT_RETRY_MIN"),
		RetryMax:                  r.Dur("PALISADE_AGENT_RETRY_MAX"),
		LeaderElection:            r.Bool("PALISADE_AGENT_LEADER_ELECTION"),
		LeaseName:                 r.Str("PALISADE_AGENT_LEASE_NAME"),
		OpsAddr:                   r.Str("PALISADE_AGENT_OPS_ADDR"),
		APIURL:                    r.Str("PALISADE_AGENT_API_URL"),
		APIKey:                    r.Str("PALISADE_AGENT_API_KEY"),
		Remediation:               r.Bool("PALISADE_AGENT_REMEDIATION"),
		RemediationInterval:       r.Dur("PALISADE_AGENT_REMEDIATION_INTERVAL"),
		ShutdownTimeout:           r.Dur("PALISADE_AGENT_SHUTDOWN_TIMEOUT"),
		LogLevel:                  r.Str("PALISADE_AGENT_LOG_LEVEL"),
		Gate:                      readGate(r),
	}
	return c, r.Err()
}

// validate checks what no single setting can.
func (c Config) validate() error {
	var errs []error
	if c.ClusterID == "" {
		errs = append(errs, errors.New("PALISADE_AGENT_CLUSTER_ID is required"))
	}
	if c.Name == "" {
		errs = append(errs, errors.New("PALISADE_AGENT_NAME is empty and the host name is unknown"))
	}
	if c.EventHubsConnectionString == "" && c.EventHubsNamespace == "" {
		errs = append(errs, errors.New("no Event Hubs: set PALISADE_AGENT_EVENTHUBS_CONNECTION_STRING, or PALISADE_AGENT_EVENTHUBS_NAMESPACE with Entra credentials"))
	}
	if c.EventHubsConnectionString == "" && c.EventHubName == "" {
		errs = append(errs, errors.New("PALISADE_AGENT_EVENTHUB_NAME is required with a namespace"))
	}
	if c.MaxMessageBytes < 4096 || c.MaxMessageBytes > inventory.MaxMessageBytes-16*1024 {
		errs = append(errs, fmt.Errorf("PALISADE_AGENT_MAX_MESSAGE_BYTES must be between 4096 and %d", inventory.MaxMessageBytes-16*1024))
	}
	if c.BufferMaxBytes < int64(c.MaxMessageBytes) {
		errs = append(errs, errors.New("PALISADE_AGENT_BUFFER_MAX_BYTES is below PALISADE_AGENT_MAX_MESSAGE_BYTES"))
	}
	if c.LeaderElection && (c.Namespace == "" || c.LeaseName == "") {
		errs = append(errs, errors.New("leader election needs PALISADE_AGENT_NAMESPACE and PALISADE_AGENT_LEASE_NAME"))
	}
	if c.Remediation && c.APIURL == "" {
		errs = append(errs, errors.New("PALISADE_AGENT_REMEDIATION needs PALISADE_AGENT_API_URL"))
	}
	if c.Gate.Addr != "" && c.APIURL == "" {
		errs = append(errs, errors.New("PALISADE_GATE_ADDR needs PALISADE_AGENT_API_URL (the scan results)"))
	}
	if c.RetryMax < c.RetryMin {
		errs = append(errs, errors.New("PALISADE_AGENT_RETRY_MAX is below PALISADE_AGENT_RETRY_MIN"))
	}
	if c.Heartbeat < c.FlushInterval {
		errs = append(errs, errors.New("PALISADE_AGENT_HEARTBEAT is below PALISADE_AGENT_FLUSH_INTERVAL"))
	}
	return errors.Join(errs...)
}
