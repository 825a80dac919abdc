package audit

import (
	"encoding/json"
	"testing"

	"github.com/palisade-sec/palisade/shared/rbacrisk/rbacrisktest"
)

// TestHighPrivilegeVariants writes each role of the shared corpus through
// the API (an audited create of the ClusterRole) and expects a
// HighPrivilegesRole alert exactly for the dangerous ones, with the first
// reason the definition gives.
func TestHighPrivilegeVariants(t *testing.T) {
	a := testAnalyzer(t)
	for _, v := range rbacrisktest.Variants(t) {
		t.Run(v.Name, func(t *testing.T) {
			var ev map[string]any
			if err := json.Unmarshal(readEvent(t, "high_priv_role"), &ev); err != nil {
				t.Fatal(err)
			}
			ev["requestObject"] = json.RawMessage(v.Object)
			ev["objectRef"].(map[string]any)["name"] = v.Name
			raw, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			e, err := DecodeEvent(raw)
			if err != nil {
				t.Fatal(err)
			}
			var reasons []string
			for _, h := range a.Hits("aks-prod", &e, nil) {
				if h.Type == "HighPrivilegesRole" {
					reasons = append(reasons, h.Evidence["reason"])
				}
			}
			switch {
			case len(v.Reasons) == 0 && len(reasons) > 0:
				t.Errorf("harmless role raised %v", reasons)
			case len(v.Reasons) > 0 && len(reasons) != 1:
				t.Errorf("dangerous role (%v) raised %d alerts", v.Reasons, len(reasons))
			case len(v.Reasons) > 0 && reasons[0] != v.Reasons[0]:
				t.Errorf("reason %q, want %q", reasons[0], v.Reasons[0])
			}
		})
	}
}
