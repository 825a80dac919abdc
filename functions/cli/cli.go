// Package cli is palisade's pipeline commands, for CI before a push or a
// deploy and for trying rules offline:
//
//	palisade scan IMAGE | --input TAR|DIR   vulnerabilities of an image
//	palisade detect --input FILE            runtime and audit rules over events
//	palisade posture --manifests DIR        posture checks over manifests
//	palisade gate --manifests DIR           gated-deployment decisions over manifests
//
// Every command takes its flags before or after its arguments (`palisade
// scan IMAGE --fail-on high`, as Trivy does), prints --format table
// (default), json or sarif (detect: table, json or envelopes) to standard
// output, reports progress and problems on standard error, and exits with
// the same codes:
//
//	0  done, and nothing at or above --fail-on
//	1  the policy failed: a finding, alert or failed check at or above
//	   --fail-on, a finding in CISA's KEV catalogue (scan --fail-on-kev),
//	   an image that cannot be assessed (with either), a broken custom
//	   policy, input lines that could not be read, or (posture --strict) an
//	   object that could not be assessed
//	2  it could not run: bad flags, settings or input, or the scan failed
//	3  (scan) the results come from the built-in demo DB (--demo): not an
//	   assessment, so no gate passes on them
//
// --help (or -h) prints the command's usage and exits 0.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/palisade-sec/palisade/shared/model"
)

// Exit codes of every command.
const (
	ExitOK     = 0 // done; nothing at or above --fail-on
	ExitPolicy = 1 // the policy failed (see the package comment)
	ExitUsage  = 2 // could not run: bad flags, settings or input, or a failed scan
	ExitDemo   = 3 // scan: the results come from the built-in demo DB
)

// Command is one pipeline command.
type Command struct {
	Name    string
	Summary string // one line for `palisade help`
	// Run runs the command with the arguments after its name and returns
	// the exit code.
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// Commands lists the pipeline commands, in the order `palisade help` shows
// them.
func Commands() []Command {
	return []Command{
		{Name: "scan", Summary: "scan an image (registry, docker save tar or OCI layout) for vulnerabilities", Run: Scan},
		{Name: "detect", Summary: "run the detection rules over sensor envelopes, Falco JSON or AKS audit records", Run: Detect},
		{Name: "posture", Summary: "assess Kubernetes manifests (and recorded ARM JSON) offline", Run: Posture},
		{Name: "gate", Summary: "decide on Kubernetes manifests as the admission webhook would, from the stored scan results", Run: Gate},
	}
}

// flags is one command's flag set with its usage text.
type flags struct {
	*flag.FlagSet
	name   string
	usage  string // the synopsis and description, before the flags
	stdout io.Writer
	stderr io.Writer
}

func newFlags(name, usage string, stdout, stderr io.Writer) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by parse
	fs.Usage = func() {}
	return &flags{FlagSet: fs, name: name, usage: usage, stdout: stdout, stderr: stderr}
}

// errHelp is returned by parse after printing the usage for --help.
var errHelp = errors.New("help")

// parse reads args, accepting flags before, between and after the
// positional arguments; everything after "--" is positional. It returns the
// positional arguments. On --help it prints the usage to stdout and returns
// errHelp; on a bad flag it reports it with the usage on stderr.
func (f *flags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		err := f.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			f.printUsage(f.stdout)
			return nil, errHelp
		}
		if err != nil {
			return nil, f.fail("%v", err)
		}
		rest := f.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError is a command-line mistake, already reported.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// fail reports a usage mistake with the usage text on stderr.
func (f *flags) fail(format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	fmt.Fprintf(f.stderr, "palisade %s: %s\n\n", f.name, msg)
	f.printUsage(f.stderr)
	return &usageError{msg: msg}
}

func (f *flags) printUsage(w io.Writer) {
	fmt.Fprint(w, f.usage)
	fmt.Fprintln(w, "\nflags:")
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// exit is the exit code of a parse error: 0 for --help, else usage.
func exit(err error) int {
	if errors.Is(err, errHelp) {
		return ExitOK
	}
	return ExitUsage
}

// errorf reports a problem of a running command on stderr.
func errorf(stderr io.Writer, name, format string, a ...any) {
	fmt.Fprintf(stderr, "palisade %s: %s\n", name, fmt.Sprintf(format, a...))
}

// format checks --format against the command's formats.
func (f *flags) format(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return f.fail("--format %q: want %s", v, strings.Join(allowed, ", "))
}

// failOn reads --fail-on: "" (no threshold) or a severity.
func (f *flags) failOn(v string) (model.Severity, error) {
	if v == "" {
		return "", nil
	}
	s, err := model.ParseSeverity(v)
	if err != nil {
		return "", f.fail("--fail-on: %v", err)
	}
	return s, nil
}

// atOrAbove reports whether sev reaches threshold; no threshold never does.
func atOrAbove(sev, threshold model.Severity) bool {
	return threshold != "" && sev.Rank() >= threshold.Rank()
}
