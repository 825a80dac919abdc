package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestHelp: --help and -h print the command's usage on stdout and exit 0.
func TestHelp(t *testing.T) {
	for _, c := range Commands() {
		for _, flag := range []string{"--help", "-h"} {
			t.Run(c.Name+" "+flag, func(t *testing.T) {
				var out, errb bytes.Buffer
				if code := c.Run(t.Context(), []string{flag}, &out, &errb); code != ExitOK {
					t.Fatalf("exit %d, want 0; stderr:\n%s", code, errb.String())
				}
				if !strings.HasPrefix(out.String(), "usage: palisade "+c.Name) || !strings.Contains(out.String(), "-format") {
					t.Errorf("usage on stdout:\n%s", out.String())
				}
				if errb.Len() != 0 {
					t.Errorf("stderr: %s", errb.String())
				}
			})
		}
	}
}

// TestParseFlagsAnywhere: flags are read before, between and after the
// positional arguments, and "--" ends them.
func TestParseFlagsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		pos     []string
		format  string
		verbose bool
	}{
		{[]string{"img"}, []string{"img"}, "table", false},
		{[]string{"--format", "json", "img"}, []string{"img"}, "json", false},
		{[]string{"img", "--format", "json"}, []string{"img"}, "json", false},
		{[]string{"img", "-format=sarif", "other", "-v"}, []string{"img", "other"}, "sarif", true},
		{[]string{"-v", "--", "--format", "x"}, []string{"--format", "x"}, "table", true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			f := newFlags("test", "usage: palisade test\n", &out, &errb)
			format := f.String("format", "table", "")
			verbose := f.Bool("v", false, "")
			pos, err := f.parse(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.pos, pos); d != "" || *format != tc.format || *verbose != tc.verbose {
				t.Errorf("positional (-want +got):\n%s\nformat %q verbose %v", d, *format, *verbose)
			}
		})
	}
	var out, errb bytes.Buffer
	f := newFlags("test", "usage: palisade test\n", &out, &errb)
	if _, err := f.parse([]string{"img", "--nope"}); err == nil || exit(err) != ExitUsage ||
		!strings.Contains(errb.String(), "palisade test: flag provided but not defined: -nope") || !strings.Contains(errb.String(), "usage: palisade test") {
		t.Errorf("unknown flag: err %v, stderr %q", err, errb.String())
	}
}
