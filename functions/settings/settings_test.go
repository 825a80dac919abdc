package settings

import (
	"reflect"
	"testing"

	"github.com/rs/zerolog"

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
	sc := Scanner(c.Scan, nil, zerolog.Nop())
	if sc.CacheDir != "/cache" || sc.MaxBytes != 1000 || sc.Timeout != c.Scan.Timeout || sc.Auth == nil || sc.Insecure == nil {
		t.Errorf("scanner options %+v", sc)
	}
}
