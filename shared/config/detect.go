package config

import (
	"strconv"
	"strings"
	"time"
)

// Detect holds the settings of runtime detection (detectruntime) and
// Kubernetes audit analysis (analyzeaudit).
type Detect struct {
	// Window is the de-duplication window: one alert per (cluster, type,
	// entity) per window.
	Window time.Duration
	// BaselineLearning is how long a workload's outbound destinations are
	// learned before connections outside them raise an alert.
	BaselineLearning time.Duration
	// BaselineMaxDestinations bounds one workload's learned destinations.
	BaselineMaxDestinations int
	// AlertTTL is how long alerts are kept in the store (0: forever).
	AlertTTL time.Duration
	// MinFalcoPriority is the lowest priority of a Falco rule without a
	// mapped alert type that still raises a generic alert.
	MinFalcoPriority string
	// FailedAuthBurst is how many failed or anonymous requests from one
	// source within a window make a burst alert.
	FailedAuthBurst int
	// SecretReadBurst is how many secret reads by one user within a window
	// make a secret-enumeration alert.
	SecretReadBurst int
	// ReconBurst is how many reconnaissance commands in one workload within
	// a window make a burst alert.
	ReconBurst int
	// Retries is how many times a store or Sentinel failure is retried
	// inside one invocation before the invocation fails.
	Retries int
	// RetryDelay is the first delay between those retries; it doubles.
	RetryDelay time.Duration
	// ThreatIntelList is a file of malicious or anonymising source
	// addresses, one address or CIDR range a line with an optional category
	// (audit.ParseThreatList); "" = none.
	ThreatIntelList string
	// SensitivePorts changes the built-in list of service ports whose public
	// exposure is an alert: "PORT" or "PORT:WHAT" adds a port, "-PORT"
	// removes a built-in one.
	SensitivePorts []PortChange
	// SensitiveNames changes the built-in list of words that mark a
	// sensitive workload: "word" adds one, "-word" removes a built-in one.
	SensitiveNames []NameChange
	// EventHubConnection, RuntimeHub, AuditHub and ConsumerGroup are read by
	// the Functions host through function.json (%NAME%); declared here so
	// that they are documented with every other setting.
	EventHubConnection string
	RuntimeHub         string
	AuditHub           string
	ConsumerGroup      string
}

func detectSettings() []Setting {
	return []Setting{
		{Name: "PALISADE_ALERT_WINDOW", Default: "1h", Doc: "De-duplication window: one alert per cluster, alert type and workload (or user) per window, with a count and first/last seen."},
		{Name: "PALISADE_BASELINE_HOURS", Default: "24", Doc: "Hours during which each workload's outbound destinations are learned; afterwards a connection outside the baseline raises an alert."},
		{Name: "PALISADE_BASELINE_MAX_DESTINATIONS", Default: "2000", Doc: "Most destinations kept in one workload's network baseline."},
		{Name: "PALISADE_ALERT_TTL_DAYS", Default: "90", Doc: "Days alerts are kept in the store (per-item TTL); 0 keeps them forever."},
		{Name: "PALISADE_FALCO_MIN_PRIORITY", Default: "warning", Doc: "Lowest priority of a Falco rule with no mapped alert type that still raises a generic FalcoRule alert (emergency … debug)."},
		{Name: "PALISADE_FAILED_AUTH_BURST", Default: "10", Doc: "Failed or anonymous API requests from one source address within a window that make a burst alert."},
		{Name: "PALISADE_SECRET_READ_BURST", Default: "20", Doc: "Secret reads by one user within a window that make a secret-enumeration alert."},
		{Name: "PALISADE_RECON_BURST", Default: "5", Doc: "Reconnaissance commands in one workload within a window that make a burst alert."},
		{Name: "PALISADE_DETECT_RETRIES", Default: "4", Doc: "Retries of a failed store or Sentinel write inside one detectruntime/analyzeaudit invocation before it fails (and the function.json retry policy applies)."},
		{Name: "PALISADE_DETECT_RETRY_DELAY", Default: "1s", Doc: "First delay between those retries; it doubles each time."},
		{Name: "PALISADE_TI_LIST", Default: "", Doc: "File of malicious or anonymising source addresses for analyzeaudit: one address or CIDR range a line, optionally followed by a category (tor, proxy, vpn, malicious). Empty: none."},
		{Name: "PALISADE_EXPOSURE_SENSITIVE_PORTS", Default: "", Doc: "Comma-separated changes to the built-in sensitive service ports (databases, kubelet/etcd, admin consoles) whose exposure on a public load balancer is an alert: PORT or PORT:what-listens adds a port, -PORT removes one. Empty: the built-in list."},
		{Name: "PALISADE_EXPOSURE_SENSITIVE_NAMES", Default: "", Doc: "Comma-separated changes to the built-in words that mark a sensitive workload by its service name or app labels (dashboard, jupyter, postgres, …): word adds one, -word removes one. Empty: the built-in list."},
		{Name: "PALISADE_EVENTHUB_CONNECTION", Default: "", Doc: "Event Hubs connection string (or identity-based prefix) the Functions host uses for the runtime and audit triggers.", Secret: true},
		{Name: "PALISADE_RUNTIME_HUB", Default: "runtime", Doc: "Event hub carrying sensor envelopes (detectruntime trigger)."},
		{Name: "PALISADE_AUDIT_HUB", Default: "audit", Doc: "Event hub carrying AKS kube-audit diagnostic records (analyzeaudit trigger)."},
		{Name: "PALISADE_EVENTHUB_CONSUMER_GROUP", Default: "$Default", Doc: "Consumer group of the detectruntime and analyzeaudit triggers."},
	}
}

func loadDetect(l *lookup) Detect {
	d := Detect{
		Window:                  l.duration("PALISADE_ALERT_WINDOW"),
		BaselineLearning:        time.Duration(l.int("PALISADE_BASELINE_HOURS")) * time.Hour,
		BaselineMaxDestinations: l.int("PALISADE_BASELINE_MAX_DESTINATIONS"),
		AlertTTL:                time.Duration(l.int("PALISADE_ALERT_TTL_DAYS")) * 24 * time.Hour,
		MinFalcoPriority:        l.str("PALISADE_FALCO_MIN_PRIORITY"),
		FailedAuthBurst:         l.int("PALISADE_FAILED_AUTH_BURST"),
		SecretReadBurst:         l.int("PALISADE_SECRET_READ_BURST"),
		ReconBurst:              l.int("PALISADE_RECON_BURST"),
		Retries:                 l.int("PALISADE_DETECT_RETRIES"),
		RetryDelay:              l.duration("PALISADE_DETECT_RETRY_DELAY"),
		ThreatIntelList:         l.str("PALISADE_TI_LIST"),
		SensitivePorts:          portChanges(l, "PALISADE_EXPOSURE_SENSITIVE_PORTS"),
		SensitiveNames:          nameChanges(l, "PALISADE_EXPOSURE_SENSITIVE_NAMES"),
		EventHubConnection:      l.str("PALISADE_EVENTHUB_CONNECTION"),
		RuntimeHub:              l.str("PALISADE_RUNTIME_HUB"),
		AuditHub:                l.str("PALISADE_AUDIT_HUB"),
		ConsumerGroup:           l.str("PALISADE_EVENTHUB_CONSUMER_GROUP"),
	}
	if d.Window < time.Minute || d.Window > 7*24*time.Hour {
		l.fail("setting PALISADE_ALERT_WINDOW: %s is outside 1m … 7d", d.Window)
	}
	if d.BaselineLearning < 0 {
		l.fail("setting PALISADE_BASELINE_HOURS: must not be negative")
	}
	if d.BaselineMaxDestinations < 1 {
		l.fail("setting PALISADE_BASELINE_MAX_DESTINATIONS: must be at least 1")
	}
	if d.AlertTTL < 0 {
		l.fail("setting PALISADE_ALERT_TTL_DAYS: must not be negative")
	}
	switch d.MinFalcoPriority {
	case "emergency", "alert", "critical", "error", "warning", "notice", "informational", "info", "debug":
	default:
		l.fail("setting PALISADE_FALCO_MIN_PRIORITY: %q is not a Falco priority (emergency, alert, critical, error, warning, notice, informational, debug)", d.MinFalcoPriority)
	}
	for name, v := range map[string]int{"PALISADE_FAILED_AUTH_BURST": d.FailedAuthBurst, "PALISADE_SECRET_READ_BURST": d.SecretReadBurst, "PALISADE_RECON_BURST": d.ReconBurst} {
		if v < 1 {
			l.fail("setting %s: must be at least 1", name)
		}
	}
	if d.Retries < 0 {
		l.fail("setting PALISADE_DETECT_RETRIES: must not be negative")
	}
	return d
}

// PortChange adds a sensitive port (with what usually listens there) or
// removes a built-in one.
type PortChange struct {
	Port   int
	What   string // "" when not given
	Remove bool
}

// NameChange adds a sensitive-workload word or removes a built-in one.
type NameChange struct {
	Name   string
	Remove bool
}

// portChanges reads "PORT", "PORT:WHAT" and "-PORT" entries.
func portChanges(l *lookup, name string) []PortChange {
	var out []PortChange
	for _, item := range l.list(name) {
		var c PortChange
		rest, removed := strings.CutPrefix(item, "-")
		port, what, _ := strings.Cut(rest, ":")
		n, err := strconv.Atoi(strings.TrimSpace(port))
		c.Port, c.What, c.Remove = n, strings.TrimSpace(what), removed
		switch {
		case err != nil || n < 1 || n > 65535:
			l.fail("setting %s: %q is not a port (1-65535), PORT:WHAT or -PORT", name, item)
			continue
		case removed && c.What != "":
			l.fail("setting %s: %q removes a port, which takes no description", name, item)
			continue
		}
		out = append(out, c)
	}
	return out
}

// nameChanges reads "word" and "-word" entries; a word may join several
// with '-' ("argo-server"), but holds no spaces.
func nameChanges(l *lookup, name string) []NameChange {
	var out []NameChange
	for _, item := range l.list(name) {
		word, removed := strings.CutPrefix(item, "-")
		word = strings.ToLower(word)
		if word == "" || strings.ContainsAny(word, " \t") || strings.HasPrefix(word, "-") || strings.HasSuffix(word, "-") {
			l.fail("setting %s: %q is not a word (letters and digits, parts joined by '-') or -word", name, item)
			continue
		}
		out = append(out, NameChange{Name: word, Remove: removed})
	}
	return out
}
