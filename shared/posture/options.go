package posture

import "github.com/palisade-sec/palisade/shared/model"

// Options are what the checks and the engine are configured with. An empty
// list allows nothing (no capability, no host port, ...); the app settings'
// defaults live with the settings (shared/config), mapped onto these by the
// edge.
type Options struct {
	// TrustedRegistries are the registries images may come from: a host
	// ("myacr.azurecr.io", matched exactly) or a host and path prefix
	// ("docker.io/library").
	TrustedRegistries []string
	// AllowedServicePorts are the ports services may listen on.
	AllowedServicePorts []int
	// AllowedHostPorts are the host ports containers may bind.
	AllowedHostPorts []int
	// AllowedCapabilities are the Linux capabilities containers may add.
	AllowedCapabilities []string
	// AllowedHostPaths are the host path prefixes hostPath volumes may
	// mount; a ":ro" suffix requires a read-only mount.
	AllowedHostPaths []string
	// AllowedAppArmorProfiles are the AppArmor profiles containers may use
	// ("runtime/default", "localhost/NAME").
	AllowedAppArmorProfiles []string
	// AllowedSeccompProfiles are the seccomp profiles containers may use:
	// "runtime/default", "docker/default", "unconfined", "localhost/NAME",
	// "localhost/*" (any Localhost profile) or "*"; the field forms
	// RuntimeDefault, Localhost and Unconfined are accepted too.
	AllowedSeccompProfiles []string
	// MaxCPULimit and MaxMemoryLimit bound container limits (Kubernetes
	// quantities; "" = any limit, as long as one is set).
	MaxCPULimit    string
	MaxMemoryLimit string
	// MinKubernetesVersion is the oldest Kubernetes version considered
	// supported ("" disables the check).
	MinKubernetesVersion string
	// ExcludedNamespaces are not assessed by workload checks.
	ExcludedNamespaces []string
	// VulnSeverity is the lowest vulnerability severity that fails the
	// "images should have vulnerabilities resolved" checks; default high.
	VulnSeverity model.Severity
	// PolicyDir holds custom Rego policies (*.rego); "" = none.
	PolicyDir string
	// ExemptionsFile lists exemptions (YAML or JSON); "" = none.
	ExemptionsFile string
	// HistoryDays is how long score history and remediation records are
	// kept (Recorder.HistoryDays, Remediator.HistoryDays); 0 = forever.
	HistoryDays int
}

func (o *Options) defaults() {
	if o.VulnSeverity == "" {
		o.VulnSeverity = model.SeverityHigh
	}
}
