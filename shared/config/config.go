// Package config reads Palisade's app settings once, at the edge, into plain
// structs that are handed to each package. Every setting is declared in a
// table (Settings) with its default and meaning; the README table and
// local.settings.example.json are checked against it by tests.
package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Setting describes one app setting.
type Setting struct {
	Name    string
	Default string
	Doc     string
	Secret  bool // never logged
}

// Config is every setting, grouped by the part of Palisade that uses it.
type Config struct {
	Common    Common
	Store     Store
	Scan      Scan
	Rescan    Rescan
	MSRC      MSRC
	Detect    Detect
	Sentinel  Sentinel
	Posture   Posture
	Intel     Intel
	Inventory Inventory
	Gate      Gate
}

// Settings lists every setting Palisade reads.
func Settings() []Setting {
	var all []Setting
	for _, group := range [][]Setting{
		commonSettings(), storeSettings(), scanSettings(), rescanSettings(), msrcSettings(),
		detectSettings(), sentinelSettings(), postureSettings(), intelSettings(), inventorySettings(),
		gateSettings(),
	} {
		all = append(all, group...)
	}
	return all
}

// Load reads every setting through getenv (os.Getenv in production), applying
// defaults, and returns all the problems found at once.
func Load(getenv func(string) string) (Config, error) {
	l := &lookup{getenv: getenv, defaults: map[string]string{}}
	for _, s := range Settings() {
		l.defaults[s.Name] = s.Default
	}
	var c Config
	c.Common = loadCommon(l)
	c.Store = loadStore(l)
	c.Scan = loadScan(l)
	c.Rescan = loadRescan(l)
	c.MSRC = loadMSRC(l)
	c.Detect = loadDetect(l)
	c.Sentinel = loadSentinel(l)
	c.Posture = loadPosture(l)
	c.Intel = loadIntel(l)
	c.Inventory = loadInventory(l)
	c.Gate = loadGate(l)
	return c, errors.Join(l.errs...)
}

// lookup reads typed settings and collects every problem.
type lookup struct {
	getenv   func(string) string
	defaults map[string]string
	errs     []error
}

func (l *lookup) str(name string) string {
	if _, ok := l.defaults[name]; !ok {
		l.errs = append(l.errs, fmt.Errorf("setting %s is read but not declared", name))
	}
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	return l.defaults[name]
}

func (l *lookup) bool(name string) bool {
	v := l.str(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("setting %s: %q is not true or false", name, v))
	}
	return b
}

func (l *lookup) int(name string) int {
	v := l.str(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("setting %s: %q is not a whole number", name, v))
	}
	return n
}

// duration accepts Go durations ("90s", "12h") and a number of days ("7d").
func (l *lookup) duration(name string) time.Duration {
	v := l.str(name)
	if v == "" {
		return 0
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil {
			return time.Duration(n) * 24 * time.Hour
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("setting %s: %q is not a duration like 90s, 12h or 7d", name, v))
	}
	return d
}

// list splits a comma-separated setting, dropping empty entries.
func (l *lookup) list(name string) []string {
	var out []string
	for _, p := range strings.Split(l.str(name), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (l *lookup) fail(format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf(format, args...))
}
