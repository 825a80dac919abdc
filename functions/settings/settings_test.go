package settings

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/audit"
	"github.com/palisade-sec/palisade/shared/config"
)

// sameFields checks that every field of opts equals the field of the same
// name in cfg: a field added to an Options and to the settings but not
// mapped fails here.
func sameFields(t *testing.T, opts, cfg any) {
	t.Helper()
	o, c := reflect.ValueOf(opts), reflect.ValueOf(cfg)
	for i := range o.NumField() {
		name := o.Type().Field(i).Name
		cf := c.FieldByName(name)
		if !cf.IsValid() {
			t.Errorf("%s.%s has no setting of that name in %s", o.Type(), name, c.Type())
			continue
		}
		if !reflect.DeepEqual(o.Field(i).Interface(), cf.Interface()) {
			t.Errorf("%s.%s = %v, the setting is %v", o.Type(), name, o.Field(i).Interface(), cf.Interface())
		}
	}
}

func TestMapping(t *testing.T) {
	env := map[string]string{
		"PALISADE_TRUSTED_REGISTRIES": "myacr.azurecr.io", "PALISADE_ALLOWED_HOST_PORTS": "30000-30002",
		"PALISADE_POLICY_DIR": "policies", "PALISADE_ALERT_WINDOW": "2h", "PALISADE_RECON_BURST": "7",
		"PALISADE_SENTINEL_DCE": "https://dce.example", "PALISADE_SENTINEL_DCR_ID": "dcr-1", "PALISADE_SENTINEL_MAX_RETRIES": "0",
		"PALISADE_TRIVY_CACHE_DIR": "/cache", "PALISADE_SCAN_MAX_BYTES": "1000",
		"PALISADE_KEV_URL": "https://mirror.example/kev.json", "PALISADE_EPSS_URL": "/var/feeds/epss.csv.gz", "PALISADE_INTEL_MAX_AGE": "3d",
		"PALISADE_MSRC_URL": "http://127.0.0.1:9/cvrf/v3.0", "PALISADE_MSRC_MONTHS": "3", "PALISADE_MSRC_MAX_AGE": "6h",
	}
	c, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	sameFields(t, Posture(c.Posture), c.Posture)
	sameFields(t, Detection(c.Detect), c.Detect)
	s := Sentinel(c.Sentinel)
	if s.DCE != "https://dce.example" || s.DCRID != "dcr-1" || s.Stream != "Custom-PalisadeAlerts_CL" || s.MaxRetries >= 0 ||
		s.FindingsStream != "Custom-PalisadeFindings_CL" || s.PostureStream != "Custom-PalisadePosture_CL" {
		t.Errorf("sentinel %+v: want the endpoint, rule, stream and no retry for 0", s)
	}
	in := Intel(c.Intel)
	if in.KEVURL != "https://mirror.example/kev.json" || in.EPSSURL != "/var/feeds/epss.csv.gz" || in.MaxAge != 72*time.Hour {
		t.Errorf("intel options %+v", in)
	}
	if m := MSRC(c.MSRC); m.BaseURL != "http://127.0.0.1:9/cvrf/v3.0" || m.Months != 3 || m.MaxAge != 6*time.Hour {
		t.Errorf("msrc options %+v", m)
	}
	sc := Scanner(c.Scan, nil, zerolog.Nop())
	if sc.CacheDir != "/cache" || sc.MaxBytes != 1000 || sc.Timeout != c.Scan.Timeout || sc.Auth == nil || sc.Insecure == nil {
		t.Errorf("scanner options %+v", sc)
	}
}

func TestAudit(t *testing.T) {
	ti := filepath.Join(t.TempDir(), "ti.txt")
	if err := os.WriteFile(ti, []byte("# feed\n185.220.101.0/24 tor\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(func(k string) string {
		return map[string]string{
			"PALISADE_TI_LIST":                  ti,
			"PALISADE_EXPOSURE_SENSITIVE_PORTS": "8080:internal-api,5432,-22",
			"PALISADE_EXPOSURE_SENSITIVE_NAMES": "storefront,-admin",
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	o, err := Audit(c.Detect)
	if err != nil {
		t.Fatal(err)
	}
	if cat, ok := o.ThreatIntel.Lookup(netip.MustParseAddr("185.220.101.9")); !ok || cat != "tor" {
		t.Errorf("threat list lookup = %q, %v", cat, ok)
	}
	if o.SensitivePorts[8080] != "internal-api" || o.SensitivePorts[5432] != "postgres" || o.SensitivePorts[3306] != "mysql" {
		t.Errorf("added or kept ports missing: %v", o.SensitivePorts)
	}
	if _, ok := o.SensitivePorts[22]; ok {
		t.Error("port 22 not removed")
	}
	if !slices.Contains(o.SensitiveNames, "storefront") || slices.Contains(o.SensitiveNames, "admin") || !slices.Contains(o.SensitiveNames, "grafana") {
		t.Errorf("names %v: want storefront added, admin removed, the rest kept", o.SensitiveNames)
	}
	if _, err := audit.New(o); err != nil {
		t.Errorf("audit.New refuses the mapped options: %v", err)
	}
	if audit.DefaultSensitivePorts[22] == "" || !slices.Contains(audit.DefaultSensitiveNames, "admin") {
		t.Error("the built-in lists were changed")
	}

	if o, err := Audit(config.Detect{}); err != nil || o.ThreatIntel != nil || o.SensitivePorts != nil || o.SensitiveNames != nil {
		t.Errorf("no settings: %+v, %v; want the zero Options (built-in lists)", o, err)
	}
	for file, want := range map[string]string{
		filepath.Join(t.TempDir(), "missing.txt"): "setting PALISADE_TI_LIST: open",
		writeFile(t, "not-an-address tor\n"):      "line 1",
	} {
		if _, err := Audit(config.Detect{ThreatIntelList: file}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Audit(%s): %v, want an error with %q", file, err, want)
		}
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIdentities(t *testing.T) {
	c, err := config.Load(func(k string) string {
		return map[string]string{"PALISADE_BASELINE_HOURS": "48", "PALISADE_IDENTITY_BASELINE_HALF_LIFE_HOURS": "72", "PALISADE_IDENTITY_BASELINE_MIN_ACTIVE_HOURS": "5"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	want := audit.IdentityOptions{Learning: 48 * time.Hour, HalfLife: 72 * time.Hour, MinActiveHours: 5}
	if got := Identities(c.Detect); !reflect.DeepEqual(got, want) {
		t.Errorf("Identities = %+v, want %+v", got, want)
	}
	def, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if got := Identities(def.Detect); got.Learning != 24*time.Hour || got.HalfLife != 168*time.Hour || got.MinActiveHours != 3 {
		t.Errorf("defaults %+v", got)
	}
	for k, v := range map[string]string{"PALISADE_IDENTITY_BASELINE_HALF_LIFE_HOURS": "0", "PALISADE_IDENTITY_BASELINE_MIN_ACTIVE_HOURS": "0"} {
		if _, err := config.Load(func(n string) string { return map[string]string{k: v}[n] }); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v, want an error naming the setting", k, v, err)
		}
	}
}
