// Package settings maps the app settings (shared/config) onto the Options of
// each part of Palisade. The handler (functions/wire.go) and the pipeline
// CLIs (functions/cli) both map through it, so a setting means the same in
// both; nothing under shared/ but the store factory reads shared/config.
package settings

import (
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/acrauth"
	"github.com/palisade-sec/palisade/shared/audit"
	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/gate"
	"github.com/palisade-sec/palisade/shared/intel"
	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/posture"
	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/sentinel"
)

// Scanner maps the scan settings. cred (may be nil) is the process's Entra
// ID credential, used for *.azurecr.io when PALISADE_REGISTRY_ENTRA_ID is
// true. Registry credentials go only to the registries in
// PALISADE_REGISTRIES; others are pulled with the docker keychain (pipeline
// mode) or anonymously.
func Scanner(c config.Scan, cred azcore.TokenCredential, log zerolog.Logger) scanner.Options {
	var ex *acrauth.Exchanger
	if c.UseEntraID && cred != nil {
		ex = &acrauth.Exchanger{Credential: cred}
	}
	return scanner.Options{
		CacheDir:           c.CacheDir,
		DBRepositories:     c.DBRepositories,
		JavaDBRepositories: c.JavaDBRepositories,
		SkipDBUpdate:       c.SkipDBUpdate,
		DemoFallback:       c.DemoDBFallback,
		MaxBytes:           c.MaxBytes,
		Timeout:            c.Timeout,
		Logger:             log,
		Insecure:           func(r string) bool { return slices.Contains(c.InsecureRegistries, r) },
		Auth: func(registry string) authn.Authenticator {
			allowed := slices.Contains(c.Registries, registry)
			switch {
			case allowed && c.RegistryUsername != "":
				return authn.FromConfig(authn.AuthConfig{Username: c.RegistryUsername, Password: c.RegistryPassword})
			case allowed && ex != nil && acrauth.IsACR(registry):
				return ex.Authenticator(registry)
			}
			reg, err := name.NewRegistry(registry)
			if err != nil {
				return authn.Anonymous
			}
			a, err := authn.DefaultKeychain.Resolve(reg)
			if err != nil {
				return authn.Anonymous
			}
			return a
		},
	}
}

// MSRC maps the settings of the Windows advisory source. The clock and the
// HTTP client keep msrc's defaults.
func MSRC(c config.MSRC) msrc.Options {
	return msrc.Options{BaseURL: c.URL, Months: c.Months, MaxAge: c.MaxAge}
}

// Detection maps the settings of the runtime and audit rules.
func Detection(c config.Detect) detection.Options {
	return detection.Options{
		Window:           c.Window,
		MinFalcoPriority: c.MinFalcoPriority,
		FailedAuthBurst:  c.FailedAuthBurst,
		SecretReadBurst:  c.SecretReadBurst,
		ReconBurst:       c.ReconBurst,
		AlertTTL:         c.AlertTTL,
	}
}

// Identities maps the settings of the per-identity baselines of the audit
// function. The clock and the cache bound keep their defaults.
func Identities(c config.Detect) audit.IdentityOptions {
	return audit.IdentityOptions{Learning: c.BaselineLearning, HalfLife: c.IdentityHalfLife, MinActiveHours: c.IdentityMinActiveHours}
}

// Audit maps the settings of the audit rules: it reads the
// threat-intelligence file PALISADE_TI_LIST names and applies the changes to
// the built-in sensitive ports and names. An unreadable or malformed file is
// an error naming the setting and the file.
func Audit(c config.Detect) (audit.Options, error) {
	var o audit.Options
	if c.ThreatIntelList != "" {
		f, err := os.Open(c.ThreatIntelList)
		if err != nil {
			return o, fmt.Errorf("setting PALISADE_TI_LIST: %w", err)
		}
		defer f.Close()
		if o.ThreatIntel, err = audit.ParseThreatList(f); err != nil {
			return o, fmt.Errorf("setting PALISADE_TI_LIST: %s: %w", c.ThreatIntelList, err)
		}
	}
	if len(c.SensitivePorts) > 0 {
		o.SensitivePorts = maps.Clone(audit.DefaultSensitivePorts)
		for _, p := range c.SensitivePorts {
			switch {
			case p.Remove:
				delete(o.SensitivePorts, p.Port)
			case p.What != "":
				o.SensitivePorts[p.Port] = p.What
			case o.SensitivePorts[p.Port] == "":
				o.SensitivePorts[p.Port] = "sensitive port"
			}
		}
	}
	if len(c.SensitiveNames) > 0 {
		o.SensitiveNames = slices.Clone(audit.DefaultSensitiveNames)
		for _, n := range c.SensitiveNames {
			o.SensitiveNames = slices.DeleteFunc(o.SensitiveNames, func(s string) bool { return s == n.Name })
			if !n.Remove {
				o.SensitiveNames = append(o.SensitiveNames, n.Name)
			}
		}
	}
	return o, nil
}

// Posture maps the settings of the posture checks, policies and
// exemptions.
func Posture(c config.Posture) posture.Options {
	return posture.Options{
		TrustedRegistries:       c.TrustedRegistries,
		AllowedServicePorts:     c.AllowedServicePorts,
		AllowedHostPorts:        c.AllowedHostPorts,
		AllowedCapabilities:     c.AllowedCapabilities,
		AllowedHostPaths:        c.AllowedHostPaths,
		AllowedAppArmorProfiles: c.AllowedAppArmorProfiles,
		AllowedSeccompProfiles:  c.AllowedSeccompProfiles,
		MaxCPULimit:             c.MaxCPULimit,
		MaxMemoryLimit:          c.MaxMemoryLimit,
		MinKubernetesVersion:    c.MinKubernetesVersion,
		ExcludedNamespaces:      c.ExcludedNamespaces,
		VulnSeverity:            c.VulnSeverity,
		PolicyDir:               c.PolicyDir,
		ExemptionsFile:          c.ExemptionsFile,
		HistoryDays:             c.HistoryDays,
	}
}

// Sentinel maps the Logs Ingestion settings. PALISADE_SENTINEL_MAX_RETRIES
// of 0 means no retry (azcore reads 0 as its default).
func Sentinel(c config.Sentinel) sentinel.Options {
	retries := c.MaxRetries
	if retries == 0 {
		retries = -1
	}
	return sentinel.Options{DCE: c.DCE, DCRID: c.DCRID, Stream: c.Stream, FindingsStream: c.FindingsStream, PostureStream: c.PostureStream, MaxRetries: retries}
}

// Intel maps the exploitation feeds' settings; the refreshintel function
// takes its schedule (function.json) and MaxDuration itself.
func Intel(c config.Intel) intel.Options {
	return intel.Options{KEVURL: c.KEVURL, EPSSURL: c.EPSSURL, MaxAge: c.MaxAge}
}

// GateRules reads the gated-deployment rules file, or gives the default
// rule when none is set.
func GateRules(c config.Gate) (gate.Rules, error) {
	if c.RulesFile == "" {
		return gate.Default(), nil
	}
	b, err := os.ReadFile(c.RulesFile)
	if err != nil {
		return gate.Rules{}, fmt.Errorf("PALISADE_GATE_RULES: %w", err)
	}
	r, err := gate.Parse(b)
	if err != nil {
		return gate.Rules{}, fmt.Errorf("PALISADE_GATE_RULES %s: %w", c.RulesFile, err)
	}
	return r, nil
}
