// Package envflag reads the settings of the cluster-side binaries
// (palisade-sensor, palisade-agent): each setting is an environment variable
// (what a Helm chart sets) with a command-line flag that overrides it, a
// default and a meaning, declared once in a table that the binary's README
// documents. Every bad value is reported at once, naming the setting.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Setting is one row of a settings table.
type Setting struct {
	Env, Flag, Default, Doc string
	// Secret settings are never printed (the usage shows no default).
	Secret bool
}

// Values are the parsed settings; the typed readers collect problems, which
// Err returns together.
type Values struct {
	vals map[string]*string
	errs []error
}

// Parse reads table from the environment (getenv) and then the command line
// (args), which wins. -h prints the usage to usage and returns flag.ErrHelp.
func Parse(name string, table []Setting, args []string, getenv func(string) string, usage io.Writer) (*Values, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usage)
	v := &Values{vals: map[string]*string{}}
	for _, s := range table {
		def := s.Default
		if e := strings.TrimSpace(getenv(s.Env)); e != "" {
			def = e
		}
		shown := def
		if s.Secret {
			shown = ""
		}
		p := new(string)
		*p = def
		fs.Func(s.Flag, fmt.Sprintf("%s (env %s, default %q)", s.Doc, s.Env, shown), func(x string) error {
			*p = x
			return nil
		})
		v.vals[s.Env] = p
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return v, nil
}

// Str returns a setting, trimmed.
func (v *Values) Str(env string) string {
	p, ok := v.vals[env]
	if !ok {
		v.errs = append(v.errs, fmt.Errorf("setting %s is read but not declared", env))
		return ""
	}
	return strings.TrimSpace(*p)
}

// Num returns a non-negative whole number.
func (v *Values) Num(env string) int {
	s := v.Str(env)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		v.errs = append(v.errs, fmt.Errorf("%s: %q is not a non-negative whole number", env, s))
	}
	return n
}

// Dur returns a positive duration.
func (v *Values) Dur(env string) time.Duration {
	s := v.Str(env)
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		v.errs = append(v.errs, fmt.Errorf("%s: %q is not a positive duration such as 500ms or 2s", env, s))
	}
	return d
}

// Bool returns true or false.
func (v *Values) Bool(env string) bool {
	s := v.Str(env)
	b, err := strconv.ParseBool(s)
	if err != nil {
		v.errs = append(v.errs, fmt.Errorf("%s: %q is not true or false", env, s))
	}
	return b
}

// Err returns every problem the readers met.
func (v *Values) Err() error { return errors.Join(v.errs...) }
