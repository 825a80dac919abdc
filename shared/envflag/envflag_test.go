package envflag

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

var table = []Setting{
	{Env: "X_NAME", Flag: "name", Default: "a", Doc: "name"},
	{Env: "X_WAIT", Flag: "wait", Default: "1s", Doc: "wait"},
	{Env: "X_ON", Flag: "on", Default: "false", Doc: "on"},
	{Env: "X_N", Flag: "n", Default: "3", Doc: "n"},
	{Env: "X_KEY", Flag: "key", Default: "", Doc: "key", Secret: true},
}

func TestEnvThenFlags(t *testing.T) {
	env := map[string]string{"X_NAME": " from-env ", "X_WAIT": "2s", "X_KEY": "s3cret"}
	v, err := Parse("x", table, []string{"-wait", "5s", "-on=true"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Str("X_NAME") != "from-env" || v.Dur("X_WAIT") != 5*time.Second || !v.Bool("X_ON") || v.Num("X_N") != 3 || v.Str("X_KEY") != "s3cret" {
		t.Errorf("values %v", v.vals)
	}
	if err := v.Err(); err != nil {
		t.Error(err)
	}
}

func TestEveryProblemNamed(t *testing.T) {
	env := map[string]string{"X_WAIT": "soon", "X_ON": "maybe", "X_N": "-1"}
	v, err := Parse("x", table, nil, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	v.Dur("X_WAIT")
	v.Bool("X_ON")
	v.Num("X_N")
	v.Str("X_UNDECLARED")
	msg := v.Err().Error()
	for _, want := range []string{"X_WAIT", "X_ON", "X_N", "X_UNDECLARED is read but not declared"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not name %s", msg, want)
		}
	}
}

func TestUsageHidesSecrets(t *testing.T) {
	var usage bytes.Buffer
	_, err := Parse("x", table, []string{"-h"}, func(k string) string { return map[string]string{"X_KEY": "s3cret"}[k] }, &usage)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	if strings.Contains(usage.String(), "s3cret") || !strings.Contains(usage.String(), "X_NAME") {
		t.Errorf("usage:\n%s", usage.String())
	}
	if _, err := Parse("x", table, []string{"extra"}, func(string) string { return "" }, &usage); err == nil {
		t.Error("stray argument accepted")
	}
}
