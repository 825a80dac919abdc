// Package logging builds Palisade's zerolog loggers and names the fields
// every log line uses, so that queries over the logs work across functions.
package logging

import (
	"context"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// Field names shared by every package. Use these instead of string literals.
const (
	FieldFunction     = "function"
	FieldInvocationID = "invocation_id"
	FieldDigest       = "digest"
	FieldRegistry     = "registry"
	FieldRepository   = "repository"
	FieldCluster      = "cluster"
	FieldNode         = "node"
	FieldContainer    = "container"
	FieldAlertType    = "alert_type"
	FieldCheck        = "check"
	FieldCount        = "count"
	FieldDuration     = "duration"
	FieldReason       = "reason"
	FieldAddr         = "addr"
	FieldComponent    = "component"
)

// New returns a logger writing JSON lines to w at the given level ("debug",
// "info", ...). An unknown level falls back to info. When pretty is true the
// output is zerolog's console format for a person at a terminal: time,
// level, message, then the fields as key=value.
func New(w io.Writer, level string, pretty bool) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	if pretty {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// Stderr is New on standard error, in JSON lines (what the Functions host
// reads from `palisade serve`).
func Stderr(level string) zerolog.Logger { return New(os.Stderr, level, false) }

// Terminal is New on w, pretty when w is a terminal and JSON lines
// otherwise (a pipe, a file, a test): for `palisade dev` and the CLIs.
func Terminal(w io.Writer, level string) zerolog.Logger { return New(w, level, IsTerminal(w)) }

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Ctx returns the logger carried by ctx, or a disabled logger when none is.
func Ctx(ctx context.Context) *zerolog.Logger { return zerolog.Ctx(ctx) }

// With returns ctx carrying l.
func With(ctx context.Context, l zerolog.Logger) context.Context { return l.WithContext(ctx) }
