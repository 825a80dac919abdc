package config

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/tests/testenv"
)

var update = flag.Bool("update", false, "rewrite local.settings.example.json and the README settings table from the settings table")

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Path != ".palisade/palisade.db" || c.Store.CosmosDatabase != "palisade" || c.Common.DevAddress != "127.0.0.1:7071" ||
		c.Common.ConsoleRefresh != 30*time.Second {
		t.Errorf("defaults not applied: %+v", c)
	}
	if _, err := Load(env(map[string]string{"PALISADE_CONSOLE_REFRESH": "100ms"})); err == nil || !strings.Contains(err.Error(), "PALISADE_CONSOLE_REFRESH") {
		t.Errorf("a console refresh under a second: %v", err)
	}
}

func TestLoadReportsEveryBadValue(t *testing.T) {
	l := &lookup{getenv: env(map[string]string{"A": "maybe", "B": "12x", "C": "soon", "D": " x, ,y "}), defaults: map[string]string{"A": "", "B": "", "C": "", "D": ""}}
	l.bool("A")
	l.int("B")
	l.duration("C")
	if got := l.list("D"); strings.Join(got, "|") != "x|y" {
		t.Errorf("list = %q", got)
	}
	l.str("UNDECLARED")
	want := []string{"setting A: \"maybe\" is not true or false", "setting B: \"12x\" is not a whole number", "setting C: \"soon\" is not a duration", "setting UNDECLARED is read but not declared"}
	if len(l.errs) != len(want) {
		t.Fatalf("errors = %v", l.errs)
	}
	for i, w := range want {
		if !strings.Contains(l.errs[i].Error(), w) {
			t.Errorf("error %d = %q, want %q", i, l.errs[i], w)
		}
	}
	if d := (&lookup{getenv: env(map[string]string{"X": "7d"}), defaults: map[string]string{"X": ""}}).duration("X"); d != 7*24*time.Hour {
		t.Errorf("7d = %s", d)
	}
}

func TestSettingsAreUniqueAndDocumented(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Settings() {
		if seen[s.Name] {
			t.Errorf("setting %s declared twice", s.Name)
		}
		seen[s.Name] = true
		if s.Doc == "" {
			t.Errorf("setting %s has no doc", s.Name)
		}
		if s.Secret && s.Default != "" {
			t.Errorf("secret setting %s has a default", s.Name)
		}
	}
}

// hostSettings are read by the Functions host, not by Palisade's code. Run
// locally (func start), the Event Hubs triggers are off until
// PALISADE_EVENTHUB_CONNECTION names a namespace (README, "Running under
// Azure Functions Core Tools"; tests/coretools checks them).
var hostSettings = map[string]string{
	"FUNCTIONS_WORKER_RUNTIME":              "Custom",
	"AzureWebJobsStorage":                   "UseDevelopmentStorage=true",
	"AzureWebJobs.detectruntime.Disabled":   "true",
	"AzureWebJobs.analyzeaudit.Disabled":    "true",
	"AzureWebJobs.ingestinventory.Disabled": "true",
}

// TestLocalSettingsExample checks that local.settings.example.json holds
// every setting with its default, and nothing undeclared.
func TestLocalSettingsExample(t *testing.T) {
	path := filepath.Join(testenv.Root(t), "local.settings.example.json")
	values := map[string]string{}
	for k, v := range hostSettings {
		values[k] = v
	}
	for _, s := range Settings() {
		values[s.Name] = s.Default
	}
	if *update {
		b, _ := json.MarshalIndent(map[string]any{"IsEncrypted": false, "Values": values}, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var file struct{ Values map[string]string }
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("local.settings.example.json: %v", err)
	}
	for k, v := range values {
		got, ok := file.Values[k]
		if !ok {
			t.Errorf("local.settings.example.json lacks %s (run go test ./shared/config -update)", k)
		} else if got != v {
			t.Errorf("local.settings.example.json: %s = %q, want the default %q", k, got, v)
		}
	}
	for k := range file.Values {
		if _, ok := values[k]; !ok {
			t.Errorf("local.settings.example.json has %s, which no code reads", k)
		}
	}
}

// TestREADMETable checks the README's settings table against the table here.
func TestREADMETable(t *testing.T) {
	path := filepath.Join(testenv.Root(t), "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- settings:begin -->\n", "<!-- settings:end -->"
	text := string(b)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q … %q markers", strings.TrimSpace(begin), end)
	}
	var table strings.Builder
	table.WriteString("| Setting | Default | Meaning |\n|---|---|---|\n")
	for _, s := range Settings() {
		def := "`" + s.Default + "`"
		if s.Default == "" {
			def = ""
		}
		doc := strings.ReplaceAll(s.Doc, "|", "\\|")
		if s.Secret {
			doc += " Secret."
		}
		fmt.Fprintf(&table, "| `%s` | %s | %s |\n", s.Name, def, doc)
	}
	if *update {
		text = text[:i+len(begin)] + table.String() + text[j:]
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := text[i+len(begin) : j]; got != table.String() {
		t.Errorf("README settings table is out of date (run go test ./shared/config -update)")
	}
}

var settingRef = regexp.MustCompile(`%([A-Za-z0-9_]+)%`)

// TestFunctionSettings checks that every app setting a function.json names
// (connection, %SETTING% references) is declared.
func TestFunctionSettings(t *testing.T) {
	declared := map[string]bool{}
	for _, s := range Settings() {
		declared[s.Name] = true
	}
	paths, _ := filepath.Glob(filepath.Join(testenv.Root(t), "functions", "*", "function.json"))
	if len(paths) == 0 {
		t.Fatal("no function.json found")
	}
	var missing []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Bindings []map[string]any `json:"bindings"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, bnd := range f.Bindings {
			if c, ok := bnd["connection"].(string); ok && !declared[c] {
				missing = append(missing, fmt.Sprintf("%s: connection %s", p, c))
			}
		}
		for _, m := range settingRef.FindAllStringSubmatch(string(b), -1) {
			if !declared[m[1]] {
				missing = append(missing, fmt.Sprintf("%s: %%%s%%", p, m[1]))
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("undeclared app setting in %s", m)
	}
}

func TestSeccompProfiles(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Posture.AllowedSeccompProfiles, ","); got != "runtime/default,docker/default" {
		t.Errorf("default allow-list %q", got)
	}
	ok := "RuntimeDefault,Localhost,Unconfined,localhost/profiles/audit.json,localhost/*,*"
	if _, err := Load(env(map[string]string{"PALISADE_ALLOWED_SECCOMP_PROFILES": ok})); err != nil {
		t.Errorf("%s: %v", ok, err)
	}
	for _, bad := range []string{"localhost/", "runtime", "default"} {
		_, err := Load(env(map[string]string{"PALISADE_ALLOWED_SECCOMP_PROFILES": bad}))
		if err == nil || !strings.Contains(err.Error(), "PALISADE_ALLOWED_SECCOMP_PROFILES") {
			t.Errorf("%q: err %v, want one naming the setting", bad, err)
		}
	}
}

func TestMSRCSettings(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.MSRC.URL != "https://api.msrc.microsoft.com/cvrf/v3.0" || c.MSRC.Months != 12 || c.MSRC.MaxAge != 48*time.Hour {
		t.Errorf("defaults: %+v", c.MSRC)
	}
	_, err = Load(env(map[string]string{"PALISADE_MSRC_URL": "api.msrc.microsoft.com", "PALISADE_MSRC_MONTHS": "0", "PALISADE_MSRC_MAX_AGE": "-1h"}))
	for _, want := range []string{"PALISADE_MSRC_URL: \"api.msrc.microsoft.com\" is not an http(s) URL", "PALISADE_MSRC_MONTHS: must be between 1 and 36", "PALISADE_MSRC_MAX_AGE: must be a positive duration"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %q", err, want)
		}
	}
}

func TestExposureAndThreatIntelSettings(t *testing.T) {
	c, err := Load(env(map[string]string{
		"PALISADE_TI_LIST":                  "/etc/palisade/ti.txt",
		"PALISADE_EXPOSURE_SENSITIVE_PORTS": "8080:internal-api, 9000 ,-22",
		"PALISADE_EXPOSURE_SENSITIVE_NAMES": "Storefront,-admin,argo-server",
	}))
	if err != nil {
		t.Fatal(err)
	}
	wantPorts := []PortChange{{Port: 8080, What: "internal-api"}, {Port: 9000}, {Port: 22, Remove: true}}
	wantNames := []NameChange{{Name: "storefront"}, {Name: "admin", Remove: true}, {Name: "argo-server"}}
	if c.Detect.ThreatIntelList != "/etc/palisade/ti.txt" || !slices.Equal(c.Detect.SensitivePorts, wantPorts) || !slices.Equal(c.Detect.SensitiveNames, wantNames) {
		t.Errorf("detect settings %q %+v %+v", c.Detect.ThreatIntelList, c.Detect.SensitivePorts, c.Detect.SensitiveNames)
	}
	_, err = Load(env(map[string]string{
		"PALISADE_EXPOSURE_SENSITIVE_PORTS": "80,http,70000,-22:ssh",
		"PALISADE_EXPOSURE_SENSITIVE_NAMES": "two words,-,ok",
	}))
	for _, want := range []string{`"http" is not a port`, `"70000" is not a port`, `"-22:ssh" removes a port`, `"two words" is not a word`, `"-" is not a word`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to say %s", err, want)
		}
	}
	if d, err := Load(env(nil)); err != nil || d.Detect.SensitivePorts != nil || d.Detect.SensitiveNames != nil || d.Detect.ThreatIntelList != "" {
		t.Errorf("defaults: %+v %v", d.Detect, err)
	}
}
