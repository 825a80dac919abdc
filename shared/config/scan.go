package config

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Scan holds the settings of scan on push (scanimage) and of `palisade scan`.
type Scan struct {
	// Registries is the allowlist of registry login servers (host or
	// host:port, lower case) that scanimage may pull from.
	Registries []string
	// CacheDir holds Trivy's layer-analysis cache and, under db/, the
	// vulnerability DB.
	CacheDir string
	// DBRepositories are OCI repositories to download the DB from; empty
	// means Trivy's defaults.
	DBRepositories []string
	// SkipDBUpdate never downloads the DB (offline); the DB in CacheDir/db,
	// or the built-in demo DB, is used as it is.
	SkipDBUpdate bool
	// DemoDBFallback allows the built-in demo DB when no DB is present and
	// none can be downloaded.
	DemoDBFallback bool
	// MaxBytes bounds the compressed plus uncompressed bytes one scan reads.
	MaxBytes int64
	// Timeout bounds one scan; it must stay under the Functions timeout.
	Timeout time.Duration
	// RegistryUsername and RegistryPassword are basic-auth credentials for
	// every allowed registry; empty means anonymous, or Entra ID for
	// *.azurecr.io when UseEntraID is set.
	RegistryUsername string
	RegistryPassword string
	// UseEntraID exchanges an Entra ID token (DefaultAzureCredential) for an
	// ACR refresh token when pulling from *.azurecr.io.
	UseEntraID bool
	// InsecureRegistries are allowed registries reached over plain HTTP
	// (local development registries).
	InsecureRegistries []string
}

func scanSettings() []Setting {
	return []Setting{
		{Name: "PALISADE_REGISTRIES", Default: "", Doc: "Comma-separated registry login servers scanimage may pull from (e.g. contoso.azurecr.io,localhost:5000). An event naming any other host is refused."},
		{Name: "PALISADE_TRIVY_CACHE_DIR", Default: "/tmp/palisade/trivy", Doc: "Directory for Trivy's layer-analysis cache (by layer digest) and the vulnerability DB (in db/)."},
		{Name: "PALISADE_TRIVY_DB_REPOSITORY", Default: "", Doc: "Comma-separated OCI repositories of the Trivy vulnerability DB (e.g. an ACR mirror). Empty: Trivy's default repositories."},
		{Name: "PALISADE_TRIVY_SKIP_DB_UPDATE", Default: "false", Doc: "true: never download the vulnerability DB (offline); use the DB already in the cache directory."},
		{Name: "PALISADE_TRIVY_DEMO_DB", Default: "true", Doc: "true: when no vulnerability DB is present and none can be downloaded, scan against a small built-in demo DB (results are marked demoData)."},
		{Name: "PALISADE_SCAN_MAX_BYTES", Default: "12884901888", Doc: "Most bytes (compressed plus uncompressed layer bytes) one scan may read; a larger image fails with a clear error."},
		{Name: "PALISADE_SCAN_TIMEOUT", Default: "8m", Doc: "Time limit of one image scan; keep it under the Functions timeout (host.json functionTimeout)."},
		{Name: "PALISADE_REGISTRY_USERNAME", Default: "", Doc: "Basic-auth user name for the allowed registries. Empty: anonymous, or Entra ID for *.azurecr.io."},
		{Name: "PALISADE_REGISTRY_PASSWORD", Default: "", Doc: "Basic-auth password or token for the allowed registries.", Secret: true},
		{Name: "PALISADE_REGISTRY_ENTRA_ID", Default: "true", Doc: "true: pull from *.azurecr.io with an Entra ID token (managed identity or DefaultAzureCredential) exchanged for an ACR refresh token."},
		{Name: "PALISADE_REGISTRY_INSECURE", Default: "", Doc: "Comma-separated allowed registries reached over plain HTTP (local development only)."},
	}
}

func loadScan(l *lookup) Scan {
	s := Scan{
		Registries:         lowerAll(l.list("PALISADE_REGISTRIES")),
		CacheDir:           l.str("PALISADE_TRIVY_CACHE_DIR"),
		DBRepositories:     l.list("PALISADE_TRIVY_DB_REPOSITORY"),
		SkipDBUpdate:       l.bool("PALISADE_TRIVY_SKIP_DB_UPDATE"),
		DemoDBFallback:     l.bool("PALISADE_TRIVY_DEMO_DB"),
		MaxBytes:           int64(l.int("PALISADE_SCAN_MAX_BYTES")),
		Timeout:            l.duration("PALISADE_SCAN_TIMEOUT"),
		RegistryUsername:   l.str("PALISADE_REGISTRY_USERNAME"),
		RegistryPassword:   l.str("PALISADE_REGISTRY_PASSWORD"),
		UseEntraID:         l.bool("PALISADE_REGISTRY_ENTRA_ID"),
		InsecureRegistries: lowerAll(l.list("PALISADE_REGISTRY_INSECURE")),
	}
	for _, r := range append(append([]string(nil), s.Registries...), s.InsecureRegistries...) {
		if err := checkLoginServer(r); err != nil {
			l.fail("setting PALISADE_REGISTRIES/PALISADE_REGISTRY_INSECURE: %v", err)
		}
	}
	if s.MaxBytes <= 0 {
		l.fail("setting PALISADE_SCAN_MAX_BYTES: must be a positive number of bytes")
	}
	if s.Timeout <= 0 {
		l.fail("setting PALISADE_SCAN_TIMEOUT: must be a positive duration")
	}
	if s.CacheDir == "" {
		l.fail("setting PALISADE_TRIVY_CACHE_DIR: must not be empty")
	}
	return s
}

// checkLoginServer accepts "host" or "host:port" with no scheme or path.
func checkLoginServer(s string) error {
	if strings.ContainsAny(s, "/@ ") {
		return fmt.Errorf("%q is not a registry login server (want host or host:port, no scheme or path)", s)
	}
	host := s
	if h, _, err := net.SplitHostPort(s); err == nil {
		host = h
	}
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	return nil
}

func lowerAll(in []string) []string {
	for i, s := range in {
		in[i] = strings.ToLower(s)
	}
	return in
}
