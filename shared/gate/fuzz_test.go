package gate

import (
	"strings"
	"testing"
)

// FuzzParse: any input is a rules file or a clear error, never a panic;
// what parses evaluates without one.
func FuzzParse(f *testing.F) {
	f.Add([]byte("rules: [{name: a, mode: deny, conditions: {minSeverity: high}}]"))
	f.Add([]byte(`{"exemptions":[{"cve":"CVE-1","reason":"r","expires":"2027-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if len(r.Rules) == 0 {
			t.Fatal("parsed with no rules")
		}
		d := r.Evaluate(t.Context(), Workload{Namespace: "ns", Containers: []Container{{Name: "c", Image: "contoso.azurecr.io/a:1", Digest: dgA}}}, results, Options{})
		if !d.Allowed && !strings.Contains(d.Message, "denied") {
			t.Fatalf("denied without a message: %+v", d)
		}
	})
}
