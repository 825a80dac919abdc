// Package schematest validates documents against the official JSON
// schemas vendored in tests/testdata/schemas: CycloneDX 1.6 (with the
// SPDX licence list and JSF schemas it refers to) and SPDX 2.3.
package schematest

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schemas.
const (
	CycloneDX16 = "http://cyclonedx.org/schema/bom-1.6.schema.json"
	SPDX23      = "http://spdx.org/rdf/terms/2.3"
)

// files maps each schema's $id to its vendored file.
var files = map[string]string{
	CycloneDX16: "bom-1.6.schema.json",
	"http://cyclonedx.org/schema/spdx.schema.json":     "spdx.schema.json",
	"http://cyclonedx.org/schema/jsf-0.82.schema.json": "jsf-0.82.schema.json",
	SPDX23: "spdx-2.3.schema.json",
}

var (
	once     sync.Once
	compiled map[string]*jsonschema.Schema
	loadErr  error
)

func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "schemas")
}

func load() {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for id, name := range files {
		raw, err := os.ReadFile(filepath.Join(dir(), name))
		if err != nil {
			loadErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			loadErr = err
			return
		}
		if err := c.AddResource(id, doc); err != nil {
			loadErr = err
			return
		}
	}
	compiled = map[string]*jsonschema.Schema{}
	for _, id := range []string{CycloneDX16, SPDX23} {
		s, err := c.Compile(id)
		if err != nil {
			loadErr = err
			return
		}
		compiled[id] = s
	}
}

// Validate fails the test when doc (JSON) does not validate against the
// schema, naming every violation.
func Validate(t testing.TB, schema string, doc []byte) {
	t.Helper()
	if err := Check(schema, doc); err != nil {
		t.Fatalf("not valid against %s: %v", schema, err)
	}
}

// Check returns why doc does not validate against the schema, or nil.
func Check(schema string, doc []byte) error {
	once.Do(load)
	if loadErr != nil {
		return loadErr
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return compiled[schema].Validate(v)
}
