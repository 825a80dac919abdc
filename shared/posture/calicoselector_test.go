package posture

import (
	"errors"
	"testing"
)

func TestCalicoSelector(t *testing.T) {
	// Known: app=web, env=prod; tier absent; anything else unknown.
	labels := func(key string) (string, bool, bool) {
		switch key {
		case "app":
			return "web", true, true
		case "env":
			return "prod", true, true
		case "tier":
			return "", false, true
		}
		return "", false, false
	}
	tests := []struct {
		src  string
		want tri
	}{
		{"", yes},
		{"all()", yes},
		{"global()", no},
		{"app == 'web'", yes},
		{`app == "api"`, no},
		{"app != 'api'", yes},
		{"tier != 'x'", yes}, // a missing label is != anything
		{"has(app)", yes},
		{"!has(tier)", yes},
		{"has(color)", unknown},
		{"app in {'api', 'web'}", yes},
		{"app not in {'api', 'web'}", no},
		{"tier not in {}", yes},
		{"env contains 'ro'", yes},
		{"env starts with 'pr' && env ends with 'od'", yes},
		{"app == 'web' && color == 'red'", unknown},
		{"app == 'api' && color == 'red'", no},
		{"app == 'api' || color == 'red'", unknown},
		{"app == 'web' || color == 'red'", yes},
		{"!(app == 'web' && env == 'prod')", no},
		{"( ( has(app) ) )", yes},
		{"allowed == 'x'", unknown}, // a key starting like a keyword
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			s, err := parseCalicoSelector(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.eval(labels); got != tt.want {
				t.Errorf("eval = %d, want %d", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"app ==", "app = 'x'", "has(app", "app in {'a' 'b'}", "(app == 'x'", "app == 'x' &&", "all(", "'x'", "app starts 'x'", "app == 'x' junk"} {
		if _, err := parseCalicoSelector(bad); !errors.Is(err, errSelector) {
			t.Errorf("%q: err %v, want a selector error", bad, err)
		}
	}
}

// FuzzCalicoSelector: any selector (it comes from cluster objects) parses
// or fails with a selector error; a parsed one evaluates without panicking.
func FuzzCalicoSelector(f *testing.F) {
	for _, s := range []string{"all()", "projectcalico.org/name in {'a', 'b'}", "!has(x) || (a == 'b' && c ends with 'd')"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := parseCalicoSelector(src)
		if err != nil {
			if !errors.Is(err, errSelector) {
				t.Fatalf("error %v is not a selector error", err)
			}
			return
		}
		s.eval(func(key string) (string, bool, bool) { return key, len(key)%2 == 0, len(key)%3 != 0 })
	})
}
