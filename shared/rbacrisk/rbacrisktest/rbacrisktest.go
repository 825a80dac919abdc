// Package rbacrisktest reads the corpus of dangerous and harmless role
// variants (shared/rbacrisk/testdata/variants.yaml) that the tests of every
// package using the definition check themselves against.
package rbacrisktest

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/palisade-sec/palisade/shared/rbacrisk"
)

// Variant is one ClusterRole of the corpus with the reasons (rbacrisk
// messages, in the package's order) its rules are dangerous.
type Variant struct {
	Name    string
	Rules   []rbacrisk.Rule
	Reasons []string
	// Object is the ClusterRole as JSON.
	Object []byte
}

// reasons maps the constant names the corpus uses to their messages.
var reasons = map[string]string{
	"Everything":        rbacrisk.Everything,
	"ReadsEverything":   rbacrisk.ReadsEverything,
	"WritesEverything":  rbacrisk.WritesEverything,
	"AllVerbsOnPods":    rbacrisk.AllVerbsOnPods,
	"AllVerbsOnSecrets": rbacrisk.AllVerbsOnSecrets,
	"ExecIntoPods":      rbacrisk.ExecIntoPods,
	"Escalates":         rbacrisk.Escalates,
	"NodesProxy":        rbacrisk.NodesProxy,
}

// Path is the corpus file.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "variants.yaml")
}

// Variants reads the corpus.
func Variants(t testing.TB) []Variant {
	t.Helper()
	data, err := os.ReadFile(Path())
	if err != nil {
		t.Fatal(err)
	}
	var out []Variant
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		if i == 0 {
			continue // the comment
		}
		var role struct {
			Metadata struct {
				Name        string            `json:"name"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Rules []rbacrisk.Rule `json:"rules"`
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("variant %d: %v", i, err)
		}
		if err := yaml.Unmarshal(doc, &role); err != nil {
			t.Fatalf("variant %d: %v", i, err)
		}
		v := Variant{Name: role.Metadata.Name, Rules: role.Rules, Object: js}
		for _, name := range strings.Split(role.Metadata.Annotations["palisade.test/reasons"], ",") {
			if name == "" {
				continue
			}
			msg, ok := reasons[name]
			if !ok {
				t.Fatalf("variant %s: unknown reason %q", v.Name, name)
			}
			v.Reasons = append(v.Reasons, msg)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		t.Fatal("no variants in " + Path())
	}
	return out
}
