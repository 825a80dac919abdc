package rbacrisk_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/rbacrisk"
	"github.com/palisade-sec/palisade/shared/rbacrisk/rbacrisktest"
)

// TestVariants checks the definition against the shared corpus, rule by
// rule: the reasons of a role are those of its rules, in order.
func TestVariants(t *testing.T) {
	for _, v := range rbacrisktest.Variants(t) {
		t.Run(v.Name, func(t *testing.T) {
			var got []string
			for _, r := range v.Rules {
				got = append(got, rbacrisk.Reasons(r)...)
			}
			if diff := cmp.Diff(v.Reasons, got); diff != "" {
				t.Errorf("reasons (-want +got)\n%s", diff)
			}
			first := ""
			if len(v.Reasons) > 0 {
				first = v.Reasons[0]
			}
			dangerous := ""
			for _, r := range v.Rules {
				if dangerous = rbacrisk.Dangerous(r); dangerous != "" {
					break
				}
			}
			if dangerous != first {
				t.Errorf("Dangerous = %q, want %q", dangerous, first)
			}
		})
	}
}

// TestEmptyRule: a rule with no groups, resources or verbs grants nothing.
func TestEmptyRule(t *testing.T) {
	if r := rbacrisk.Reasons(rbacrisk.Rule{}); r != nil {
		t.Errorf("empty rule: %v", r)
	}
	if r := rbacrisk.Reasons(rbacrisk.Rule{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}); r != nil {
		t.Errorf("non-resource URLs: %v", r)
	}
}
