package infra

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/config"
)

const repoRoot = ".."

// TestEverySettingIsProvided: each setting shared/config declares is either
// set by the Terraform app settings or listed, with a reason, as not set in
// Azure.
func TestEverySettingIsProvided(t *testing.T) {
	app := loadModule(t)
	for _, problem := range settingProblems(config.Settings(), app) {
		t.Error(problem)
	}
}

// TestFunctionBindingsResolve: every connection and %SETTING% a
// functions/*/function.json refers to is provided by the app settings.
func TestFunctionBindingsResolve(t *testing.T) {
	app := loadModule(t)
	files, err := filepath.Glob(filepath.Join(repoRoot, "functions", "*", "function.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no functions/*/function.json found (%v)", err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		problems, err := bindingProblems(src, app)
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", f, p)
		}
	}
}

// TestTerraformValuesLoad: the values the Terraform gives settings (those
// known before deployment) are accepted by config.Load.
func TestTerraformValuesLoad(t *testing.T) {
	app := loadModule(t)
	if len(app.Values) == 0 {
		t.Fatal("no app setting value could be evaluated from the Terraform")
	}
	if problems := loadProblems(configLoad, app.Values); len(problems) > 0 {
		t.Errorf("config.Load rejects values the Terraform sets (%s/settings.tf):\n%s", ModuleDir, strings.Join(problems, "\n"))
	}
}

// TestCheckers runs the checks on small inputs, so a check that stops
// finding problems is noticed.
func TestCheckers(t *testing.T) {
	app := AppSettings{
		Set: map[string]bool{
			"PALISADE_A": true, "PALISADE_CONN__fullyQualifiedNamespace": true,
			"AzureWebJobsStorage": true, "PALISADE_HUB": true,
		},
		NotInAzure: map[string]string{"PALISADE_DEV": "local only", "PALISADE_A": "contradiction"},
	}
	t.Run("settings", func(t *testing.T) {
		declared := []config.Setting{{Name: "PALISADE_A"}, {Name: "PALISADE_CONN"}, {Name: "PALISADE_DEV"}, {Name: "PALISADE_MISSING"}}
		got := settingProblems(declared, app)
		want := []string{
			"setting PALISADE_A is both set in local.palisade_settings and listed in local.settings_not_in_azure",
			"setting PALISADE_MISSING is declared in shared/config but infra/terraform/modules/palisade/settings.tf neither sets it (local.palisade_settings) nor says why not (local.settings_not_in_azure)",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	})
	tests := []struct {
		name, json string
		want       []string
	}{
		{"resolved", `{"bindings":[{"type":"eventHubTrigger","name":"events","connection":"PALISADE_CONN","eventHubName":"%PALISADE_HUB%"}]}`, nil},
		{"missing connection", `{"bindings":[{"type":"eventHubTrigger","connection":"OTHER_CONN","eventHubName":"x"}]}`,
			[]string{`binding "eventHubTrigger" uses connection OTHER_CONN, which the Terraform app settings do not provide (OTHER_CONN or OTHER_CONN__*)`}},
		{"missing reference", `{"bindings":[{"type":"timerTrigger","schedule":"%PALISADE_SCHEDULE%"}]}`,
			[]string{`binding "timerTrigger" refers to %PALISADE_SCHEDULE%, which the Terraform app settings do not set`}},
		{"reference to a setting kept out of Azure", `{"bindings":[{"type":"timerTrigger","schedule":"%PALISADE_DEV%"}]}`,
			[]string{`binding "timerTrigger" refers to %PALISADE_DEV%, which the Terraform app settings do not set`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bindingProblems([]byte(tt.json), app)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("storage needed by non-HTTP triggers", func(t *testing.T) {
		noStorage := AppSettings{Set: map[string]bool{}}
		got, err := bindingProblems([]byte(`{"bindings":[{"type":"timerTrigger","schedule":"0 * * * * *"}]}`), noStorage)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{`binding "timerTrigger" needs AzureWebJobsStorage, which the Terraform does not provide (storage_account_name of the Function App)`}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	})
	t.Run("values config.Load rejects", func(t *testing.T) {
		load := func(getenv func(string) string) error {
			var errs []error
			if getenv("REQUIRED") == "" {
				errs = append(errs, errors.New("REQUIRED is missing"))
			}
			if v := getenv("NUMBER"); v != "" && strings.Trim(v, "0123456789") != "" {
				errs = append(errs, fmt.Errorf("NUMBER: %q is not a number", v))
			}
			return errors.Join(errs...)
		}
		got := loadProblems(load, map[string]string{"NUMBER": "12x"})
		want := []string{`NUMBER: "12x" is not a number`}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
		if got := loadProblems(load, map[string]string{"NUMBER": "12"}); len(got) != 0 {
			t.Errorf("valid values rejected: %v", got)
		}
	})
}

func loadModule(t *testing.T) AppSettings {
	t.Helper()
	app, err := LoadAppSettings(filepath.Join(repoRoot, ModuleDir))
	if err != nil {
		t.Fatalf("read the Terraform app settings: %v", err)
	}
	return app
}

// settingProblems lists declared settings the Terraform does not account for.
func settingProblems(declared []config.Setting, app AppSettings) []string {
	var out []string
	for _, s := range declared {
		_, excused := app.NotInAzure[s.Name]
		switch set := app.Provides(s.Name); {
		case set && excused:
			out = append(out, fmt.Sprintf("setting %s is both set in local.%s and listed in local.%s", s.Name, localPalisade, localNotAzure))
		case !set && !excused:
			out = append(out, fmt.Sprintf("setting %s is declared in shared/config but %s/settings.tf neither sets it (local.%s) nor says why not (local.%s)", s.Name, ModuleDir, localPalisade, localNotAzure))
		}
	}
	slices.Sort(out)
	return out
}

var settingRef = regexp.MustCompile(`%([A-Za-z0-9_.-]+)%`)

// bindingProblems lists what one function.json needs that the app settings
// do not provide.
func bindingProblems(src []byte, app AppSettings) ([]string, error) {
	var fn struct {
		Bindings []map[string]any `json:"bindings"`
	}
	if err := json.Unmarshal(src, &fn); err != nil {
		return nil, fmt.Errorf("decode function.json: %w", err)
	}
	if len(fn.Bindings) == 0 {
		return nil, errors.New("function.json has no bindings")
	}
	var out []string
	for _, b := range fn.Bindings {
		typ, _ := b["type"].(string)
		if conn, ok := b["connection"].(string); ok && conn != "" && !app.Provides(conn) {
			out = append(out, fmt.Sprintf("binding %q uses connection %s, which the Terraform app settings do not provide (%s or %s__*)", typ, conn, conn, conn))
		}
		for _, v := range b {
			s, ok := v.(string)
			if !ok {
				continue
			}
			for _, m := range settingRef.FindAllStringSubmatch(s, -1) {
				if !app.Set[m[1]] {
					out = append(out, fmt.Sprintf("binding %q refers to %%%s%%, which the Terraform app settings do not set", typ, m[1]))
				}
			}
		}
		if strings.HasSuffix(typ, "Trigger") && typ != "httpTrigger" && !app.Set["AzureWebJobsStorage"] {
			out = append(out, fmt.Sprintf("binding %q needs AzureWebJobsStorage, which the Terraform does not provide (storage_account_name of the Function App)", typ))
		}
	}
	slices.Sort(out)
	return out, nil
}

// configLoad is config.Load reduced to its error.
func configLoad(getenv func(string) string) error {
	_, err := config.Load(getenv)
	return err
}

// loadProblems returns the errors load reports for values beyond those it
// reports for an empty environment.
func loadProblems(load func(getenv func(string) string) error, values map[string]string) []string {
	lines := func(err error) []string {
		if err == nil {
			return nil
		}
		return strings.Split(err.Error(), "\n")
	}
	baseErr := load(func(string) string { return "" })
	err := load(func(name string) string { return values[name] })
	var out []string
	for _, l := range lines(err) {
		if !slices.Contains(lines(baseErr), l) {
			out = append(out, l)
		}
	}
	return out
}

// TestScanFitsFunctionTimeout: an image scan is cut off by the scanner before
// the Functions host kills the invocation, so the scan's own error is what
// gets reported and retried.
func TestScanFitsFunctionTimeout(t *testing.T) {
	app := loadModule(t)
	hostLimit, err := hostDuration(app.Values["AzureFunctionsJobHost__functionTimeout"])
	if err != nil {
		t.Fatalf("AzureFunctionsJobHost__functionTimeout: %v", err)
	}
	scan, err := time.ParseDuration(app.Values["PALISADE_SCAN_TIMEOUT"])
	if err != nil {
		t.Fatalf("PALISADE_SCAN_TIMEOUT: %v", err)
	}
	if scan >= hostLimit {
		t.Errorf("PALISADE_SCAN_TIMEOUT %v is not below the functionTimeout %v", scan, hostLimit)
	}
}

// hostDuration parses the host's hh:mm:ss durations.
func hostDuration(s string) (time.Duration, error) {
	var h, m, sec int
	if n, err := fmt.Sscanf(s, "%d:%d:%d", &h, &m, &sec); err != nil || n != 3 {
		return 0, fmt.Errorf("%q is not hh:mm:ss", s)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second, nil
}
