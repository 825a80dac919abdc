package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-sec/palisade/functions/cli"
)

// TestHelpExitsZero: every command answers --help and -h with its usage on
// stdout and exit code 0; mistakes exit 2.
func TestHelpExitsZero(t *testing.T) {
	verbs := []string{"serve", "dev"}
	for _, c := range cli.Commands() {
		verbs = append(verbs, c.Name)
	}
	for _, v := range verbs {
		for _, h := range []string{"--help", "-h"} {
			var out, errb bytes.Buffer
			if code := run(t.Context(), []string{v, h}, &out, &errb); code != 0 || !strings.Contains(out.String(), "usage: palisade "+v) {
				t.Errorf("palisade %s %s: exit %d, stdout %q, stderr %q", v, h, code, out.String(), errb.String())
			}
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		var out, errb bytes.Buffer
		if code := run(t.Context(), args, &out, &errb); code != 0 || !strings.Contains(out.String(), "scan ") || !strings.Contains(out.String(), "posture ") {
			t.Errorf("palisade %v: exit %d, stdout %q", args, code, out.String())
		}
	}
	for _, args := range [][]string{{"frobnicate"}, {"serve", "extra"}, {"dev", "--nope"}} {
		var out, errb bytes.Buffer
		if code := run(t.Context(), args, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: palisade") {
			t.Errorf("palisade %v: exit %d, stderr %q; want 2 with the usage", args, code, errb.String())
		}
	}
}

// TestLoadApp: away from the source tree the built-in definitions are
// used; a folder given, or the current directory holding host.json, wins.
func TestLoadApp(t *testing.T) {
	t.Chdir(t.TempDir())
	app, err := loadApp("")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := app.Functions["scanimage"]; !ok || app.Dir != "" {
		t.Errorf("built-in app: dir %q, functions %v", app.Dir, app.Names())
	}
	if _, err := loadApp("no-such-dir"); err == nil {
		t.Error("a missing --app folder loaded")
	}
}

// TestBadSettingsExitTwo: settings that cannot be used stop serve and dev
// with exit code 2, naming the setting.
func TestBadSettingsExitTwo(t *testing.T) {
	t.Setenv("PALISADE_ALERT_WINDOW", "1s")
	for _, verb := range []string{"serve", "dev"} {
		var out, errb bytes.Buffer
		code := run(t.Context(), []string{verb}, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "PALISADE_ALERT_WINDOW") || strings.Contains(errb.String(), "usage:") {
			t.Errorf("palisade %s: exit %d, stderr %q; want 2 naming the setting", verb, code, errb.String())
		}
	}
}

// TestBadThreatListExitsTwo: a threat-intelligence file that cannot be
// read stops serve with exit code 2, naming the setting.
func TestBadThreatListExitsTwo(t *testing.T) {
	t.Setenv("PALISADE_STORE_PATH", filepath.Join(t.TempDir(), "palisade.db"))
	t.Setenv("PALISADE_TI_LIST", filepath.Join(t.TempDir(), "missing.txt"))
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"serve"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "PALISADE_TI_LIST") {
		t.Errorf("palisade serve: exit %d, stderr %q; want 2 naming the setting", code, errb.String())
	}
}
