package posture

import (
	"os"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/rbacrisk/rbacrisktest"
)

// TestHighPrivilegeRoleVariants assesses the shared corpus of role variants
// as manifests: high-privilege-roles fails exactly the dangerous ones and
// names every reason.
func TestHighPrivilegeRoleVariants(t *testing.T) {
	f, err := os.Open(rbacrisktest.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var objs Objects
	if err := DecodeManifests(f, "variants.yaml", &objs, ManifestOptions{}); err != nil {
		t.Fatal(err)
	}
	got := map[string]model.PostureResult{}
	for _, r := range assess(t, &Snapshot{Name: "variants", Objects: objs}).Results {
		if r.CheckID == "high-privilege-roles" {
			got[r.Resource] = r
		}
	}
	for _, v := range rbacrisktest.Variants(t) {
		t.Run(v.Name, func(t *testing.T) {
			r, ok := got["ClusterRole/"+v.Name]
			if !ok {
				t.Fatal("no result")
			}
			if want := map[bool]string{true: model.PosturePass, false: model.PostureFail}[len(v.Reasons) == 0]; r.Status != want {
				t.Fatalf("status %s (%s), want %s", r.Status, r.Message, want)
			}
			for _, reason := range v.Reasons {
				if !strings.Contains(r.Message, reason) {
					t.Errorf("message %q lacks %q", r.Message, reason)
				}
			}
		})
	}
}
