package sarif_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"path/filepath"
	"testing"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/sarif"
	"github.com/palisade-sec/palisade/tests/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestWriteGolden(t *testing.T) {
	log := sarif.NewLog(sarif.Driver{Name: "palisade", InformationURI: "https://github.com/palisade-sec/palisade", Rules: []sarif.Rule{
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
	var got bytes.Buffer
	if err := log.Write(&got); err != nil {
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
