package config

import (
	"strconv"
	"strings"

	"github.com/palisade-sec/palisade/shared/model"
)

// Posture holds the settings of security posture management (assessposture,
// the posture API and `palisade posture`).
type Posture struct {
	// Subscriptions whose AKS clusters and container registries are assessed.
	Subscriptions []string
	// Kubeconfig, when set, assesses the one cluster it points at instead of
	// discovering clusters through ARM (local runs).
	Kubeconfig string
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
	// AllowedHostPaths are the host path prefixes hostPath volumes may mount.
	AllowedHostPaths []string
	// AllowedAppArmorProfiles are the AppArmor profiles containers may use
	// ("runtime/default", "localhost/NAME").
	AllowedAppArmorProfiles []string
	// AllowedSeccompProfiles are the seccomp profiles containers may use
	// (runtime/default, docker/default, unconfined, localhost/NAME,
	// localhost/*, *).
	AllowedSeccompProfiles []string
	// MaxCPULimit and MaxMemoryLimit bound container limits ("" = any limit,
	// as long as one is set).
	MaxCPULimit    string
	MaxMemoryLimit string
	// MinKubernetesVersion is the oldest Kubernetes version considered
	// supported ("" disables the check).
	MinKubernetesVersion string
	// ExcludedNamespaces are not assessed by workload checks (Azure Policy's
	// default exclusions).
	ExcludedNamespaces []string
	// VulnSeverity is the lowest vulnerability severity that fails the
	// "images should have vulnerabilities resolved" checks.
	VulnSeverity model.Severity
	// PolicyDir holds custom Rego policies (*.rego); "" = none.
	PolicyDir string
	// ExemptionsFile lists exemptions (YAML or JSON); "" = none.
	ExemptionsFile string
	// HistoryDays is how long score history and remediation records are
	// kept (per-item TTL); 0 keeps them forever.
	HistoryDays int
	// Remediate lists the check ids remediated automatically ("*" = every
	// check with a patch). Empty: remediation is only offered.
	Remediate []string
	// RemediateApply applies opted-in patches after a successful dry run;
	// false (the default) stops at the server-side dry run.
	RemediateApply bool
	// Schedule is the NCRONTAB schedule of assessposture (read by the host
	// through %PALISADE_POSTURE_SCHEDULE% in function.json).
	Schedule string
}

func postureSettings() []Setting {
	return []Setting{
		{Name: "PALISADE_SUBSCRIPTIONS", Default: "", Doc: "Comma-separated Azure subscription ids whose AKS clusters and registries assessposture assesses."},
		{Name: "PALISADE_KUBECONFIG", Default: "", Doc: "Kubeconfig file of one cluster to assess instead of discovering clusters through ARM (local runs)."},
		{Name: "PALISADE_TRUSTED_REGISTRIES", Default: "", Doc: "Comma-separated registries images may be deployed from: a host matched exactly (myacr.azurecr.io) or host/path prefix (docker.io/library). Empty: every image fails the trusted-registry check."},
		{Name: "PALISADE_ALLOWED_SERVICE_PORTS", Default: "80,443", Doc: "Comma-separated ports Kubernetes services may listen on."},
		{Name: "PALISADE_ALLOWED_HOST_PORTS", Default: "", Doc: "Comma-separated host ports containers may bind (ranges like 30000-30100 allowed). Empty: none."},
		{Name: "PALISADE_ALLOWED_CAPABILITIES", Default: "", Doc: "Comma-separated Linux capabilities containers may add (e.g. NET_BIND_SERVICE). Empty: none."},
		{Name: "PALISADE_ALLOWED_HOST_PATHS", Default: "", Doc: "Comma-separated host path prefixes hostPath volumes may mount; append :ro to require a read-only mount. Empty: none."},
		{Name: "PALISADE_ALLOWED_APPARMOR_PROFILES", Default: "runtime/default", Doc: "Comma-separated AppArmor profiles containers may use (runtime/default, localhost/NAME)."},
		{Name: "PALISADE_ALLOWED_SECCOMP_PROFILES", Default: "runtime/default,docker/default", Doc: "Comma-separated seccomp profiles containers may use: runtime/default, docker/default, unconfined, localhost/NAME, localhost/* (any Localhost profile) or *. The field forms RuntimeDefault, Localhost and Unconfined are accepted."},
		{Name: "PALISADE_MAX_CPU_LIMIT", Default: "", Doc: "Largest CPU limit a container may set (e.g. 2 or 500m). Empty: any, as long as one is set."},
		{Name: "PALISADE_MAX_MEMORY_LIMIT", Default: "", Doc: "Largest memory limit a container may set (e.g. 4Gi). Empty: any, as long as one is set."},
		{Name: "PALISADE_MIN_KUBERNETES_VERSION", Default: "1.30", Doc: "Oldest Kubernetes minor version considered supported. Empty disables the check."},
		{Name: "PALISADE_POSTURE_EXCLUDED_NAMESPACES", Default: "kube-system,gatekeeper-system,azure-arc,azure-extensions-usage-system", Doc: "Comma-separated namespaces the workload checks skip."},
		{Name: "PALISADE_POSTURE_VULN_SEVERITY", Default: "high", Doc: "Lowest vulnerability severity that fails the images-should-have-vulnerabilities-resolved checks."},
		{Name: "PALISADE_POLICY_DIR", Default: "", Doc: "Folder of custom Rego policies (*.rego, Gatekeeper-style violation[{\"msg\": msg}]). Empty: none."},
		{Name: "PALISADE_EXEMPTIONS_FILE", Default: "", Doc: "YAML or JSON file of posture exemptions (check, namespace, resource or labels; reason; expires). Empty: none."},
		{Name: "PALISADE_POSTURE_HISTORY_DAYS", Default: "90", Doc: "Days posture score history and remediation records are kept in the store (per-item TTL); 0 keeps them forever."},
		{Name: "PALISADE_REMEDIATE", Default: "", Doc: "Comma-separated check ids to remediate automatically with server-side apply (* = every check with a patch). Empty: remediation is only offered."},
		{Name: "PALISADE_REMEDIATE_APPLY", Default: "false", Doc: "true: apply opted-in patches after a successful server-side dry run. false: dry run only."},
		{Name: "PALISADE_POSTURE_SCHEDULE", Default: "0 0 * * * *", Doc: "NCRONTAB schedule of assessposture (hourly by default)."},
	}
}

func loadPosture(l *lookup) Posture {
	p := Posture{
		Subscriptions:           l.list("PALISADE_SUBSCRIPTIONS"),
		Kubeconfig:              l.str("PALISADE_KUBECONFIG"),
		TrustedRegistries:       l.list("PALISADE_TRUSTED_REGISTRIES"),
		AllowedServicePorts:     ports(l, "PALISADE_ALLOWED_SERVICE_PORTS"),
		AllowedHostPorts:        ports(l, "PALISADE_ALLOWED_HOST_PORTS"),
		AllowedCapabilities:     l.list("PALISADE_ALLOWED_CAPABILITIES"),
		AllowedHostPaths:        l.list("PALISADE_ALLOWED_HOST_PATHS"),
		AllowedAppArmorProfiles: l.list("PALISADE_ALLOWED_APPARMOR_PROFILES"),
		AllowedSeccompProfiles:  l.list("PALISADE_ALLOWED_SECCOMP_PROFILES"),
		MaxCPULimit:             l.str("PALISADE_MAX_CPU_LIMIT"),
		MaxMemoryLimit:          l.str("PALISADE_MAX_MEMORY_LIMIT"),
		MinKubernetesVersion:    l.str("PALISADE_MIN_KUBERNETES_VERSION"),
		ExcludedNamespaces:      l.list("PALISADE_POSTURE_EXCLUDED_NAMESPACES"),
		PolicyDir:               l.str("PALISADE_POLICY_DIR"),
		ExemptionsFile:          l.str("PALISADE_EXEMPTIONS_FILE"),
		HistoryDays:             l.int("PALISADE_POSTURE_HISTORY_DAYS"),
		Remediate:               l.list("PALISADE_REMEDIATE"),
		RemediateApply:          l.bool("PALISADE_REMEDIATE_APPLY"),
		Schedule:                l.str("PALISADE_POSTURE_SCHEDULE"),
	}
	if p.HistoryDays < 0 || p.HistoryDays > 24855 {
		l.fail("setting PALISADE_POSTURE_HISTORY_DAYS: %d is not between 0 and 24855 (a Cosmos DB ttl is at most 2^31-1 seconds)", p.HistoryDays)
	}
	for _, p := range p.AllowedSeccompProfiles {
		if !seccompProfile(p) {
			l.fail("setting PALISADE_ALLOWED_SECCOMP_PROFILES: %q is not a seccomp profile (runtime/default, docker/default, unconfined, localhost/NAME, localhost/* or *)", p)
		}
	}
	sev, err := model.ParseSeverity(l.str("PALISADE_POSTURE_VULN_SEVERITY"))
	if err != nil {
		l.fail("setting PALISADE_POSTURE_VULN_SEVERITY: %v", err)
	}
	p.VulnSeverity = sev
	if len(strings.Fields(p.Schedule)) != 6 {
		l.fail("setting PALISADE_POSTURE_SCHEDULE: %q is not a six-field NCRONTAB expression like \"0 0 * * * *\"", p.Schedule)
	}
	return p
}

// ports reads a list of ports and port ranges ("80,443,30000-30010"),
// expanding ranges up to 65535 entries.
func ports(l *lookup, name string) []int {
	var out []int
	for _, item := range l.list(name) {
		lo, hi, isRange := strings.Cut(item, "-")
		a, errA := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var errB error
		if isRange {
			b, errB = strconv.Atoi(strings.TrimSpace(hi))
		}
		if errA != nil || errB != nil || a < 1 || b > 65535 || a > b {
			l.fail("setting %s: %q is not a port (1-65535) or a port range like 30000-30010", name, item)
			continue
		}
		for p := a; p <= b; p++ {
			out = append(out, p)
		}
	}
	return out
}

// seccompProfile reports whether an entry of the seccomp allow-list has a
// known form (shared/posture normalises it).
func seccompProfile(p string) bool {
	switch p {
	case "runtime/default", "docker/default", "unconfined", "*", "localhost/*":
		return true
	}
	switch strings.ToLower(p) {
	case "runtimedefault", "localhost", "unconfined":
		return true
	}
	return strings.HasPrefix(p, "localhost/") && len(p) > len("localhost/")
}
