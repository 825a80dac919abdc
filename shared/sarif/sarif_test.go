package sarif_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/sarif"
	"github.com/palisade-sec/palisade/tests/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenLog has every field a caller fills in.
func goldenLog() sarif.Log {
	return sarif.NewLog(sarif.Driver{Name: "palisade", InformationURI: "https://github.com/palisade-sec/palisade", Rules: []sarif.Rule{
		{ID: "CVE-2024-0001", ShortDescription: sarif.Text{Text: "overflow"}, FullDescription: sarif.Text{Text: "a heap overflow"},
			HelpURI: "https://avd.aquasec.com/nvd/cve-2024-0001", Help: sarif.Text{Text: "upgrade openssl"},
			Properties: map[string]any{"tags": []string{"vulnerability"}}},
		{ID: "root-user", ShortDescription: sarif.Text{Text: "runs as root"}, Help: sarif.Text{Text: "set runAsNonRoot"},
			Properties: map[string]any{"severity": model.SeverityHigh}},
	}}, []sarif.Result{
		{RuleID: "CVE-2024-0001", Level: sarif.Level(model.SeverityCritical), Message: sarif.Text{Text: "openssl 3.0.0"},
			Locations: []sarif.Location{{PhysicalLocation: &sarif.PhysicalLocation{ArtifactLocation: sarif.ArtifactLocation{URI: "usr/lib/libssl.so"}}}}},
		{RuleID: "root-user", Level: sarif.Level(model.SeverityHigh), Message: sarif.Text{Text: "Deployment/default/web"},
			Locations: []sarif.Location{{LogicalLocations: []sarif.LogicalLocation{{FullyQualifiedName: "Deployment/default/web", Kind: "resource"}}}}},
	})
}

func TestWriteGolden(t *testing.T) {
	var got bytes.Buffer
	if err := goldenLog().Write(&got); err != nil {
		t.Fatal(err)
	}
	golden.Compare(t, filepath.Join("testdata", "log.golden.json"), got.Bytes(), *update)
	var back sarif.Log
	if err := json.Unmarshal(got.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Schema != sarif.Schema || back.Version != "2.1.0" || len(back.Runs) != 1 || len(back.Runs[0].Results) != 2 {
		t.Errorf("decoded log: %+v", back)
	}
}

// schema compiles the SARIF 2.1.0 JSON schema (OASIS errata 01) kept in
// testdata.
func schema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "sarif-schema-2.1.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	const url = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func TestWriteValidatesAgainstSchema(t *testing.T) {
	sch := schema(t)
	for _, tc := range []struct {
		name string
		log  sarif.Log
	}{
		{"every field", goldenLog()},
		// Nil lists and maps, no level and no location must not come out as
		// null or "", which the schema rejects.
		{"zero values", sarif.NewLog(sarif.Driver{Name: "palisade", Rules: []sarif.Rule{{ID: "r"}}},
			[]sarif.Result{{RuleID: "r", Message: sarif.Text{Text: "m"}}})},
		{"no rules or results", sarif.NewLog(sarif.Driver{Name: "palisade"}, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := tc.log.Write(&out); err != nil {
				t.Fatal(err)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(inst); err != nil {
				t.Errorf("not valid SARIF 2.1.0: %v\n%s", err, out.Bytes())
			}
		})
	}
}

// TestSchemaRejectsInvalidLogs shows the schema check can fail.
func TestSchemaRejectsInvalidLogs(t *testing.T) {
	sch := schema(t)
	var out bytes.Buffer
	if err := goldenLog().Write(&out); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ from, to string }{
		{`"level": "error"`, `"level": "severe"`},
		{`"version": "2.1.0"`, `"version": "2.0"`},
		{`"rules": [`, `"rules": null, "x": [`},
	} {
		doc := strings.Replace(out.String(), bad.from, bad.to, 1)
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(inst); err == nil {
			t.Errorf("the schema accepted %s", bad.to)
		}
	}
}

func TestLevel(t *testing.T) {
	for _, tc := range []struct {
		sev  model.Severity
		want string
	}{
		{model.SeverityCritical, "error"},
		{model.SeverityHigh, "error"},
		{model.SeverityMedium, "warning"},
		{model.SeverityLow, "note"},
		{model.SeverityInformational, "note"},
		{model.SeverityUnknown, "note"},
		{"", "note"},
	} {
		t.Run(string(tc.sev), func(t *testing.T) {
			if got := sarif.Level(tc.sev); got != tc.want {
				t.Errorf("Level(%q) = %q, want %q", tc.sev, got, tc.want)
			}
		})
	}
}
