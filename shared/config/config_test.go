package config

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
	"FUNCTIONS_WORKER_RUNTIME":            "Custom",
	"AzureWebJobsStorage":                 "UseDevelopmentStorage=true",
	"AzureWebJobs.detectruntime.Disabled": "true",
	"AzureWebJobs.analyzeaudit.Disabled":  "true",
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
