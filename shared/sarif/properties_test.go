package sarif_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/palisade-sec/palisade/shared/sarif"
)

// TestProperties: the property bags of a run and of a result are written,
// and left out when empty (the schema allows no null bag).
func TestProperties(t *testing.T) {
	log := sarif.NewLog(sarif.Driver{Name: "palisade", Rules: []sarif.Rule{}}, []sarif.Result{
		{RuleID: "CVE-2024-0001", Level: "error", Message: sarif.Text{Text: "m"}, Locations: []sarif.Location{}, Properties: map[string]any{"priority": "P1"}},
		{RuleID: "CVE-2024-0002", Level: "note", Message: sarif.Text{Text: "m"}, Locations: []sarif.Location{}},
	})
	log.Runs[0].Properties = map[string]any{"demoData": true}
	var b bytes.Buffer
	if err := log.Write(&b); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Runs []struct {
			Properties map[string]any
			Results    []struct{ Properties map[string]any }
		}
	}
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	r := back.Runs[0]
	if r.Properties["demoData"] != true || r.Results[0].Properties["priority"] != "P1" {
		t.Errorf("properties not written: %s", b.String())
	}
	if bytes.Count(b.Bytes(), []byte(`"properties"`)) != 2 {
		t.Errorf("an empty property bag was written: %s", b.String())
	}
}
