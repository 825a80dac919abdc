package msrc_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/msrc/msrctest"
	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// readDoc is a hand-made document (see package msrctest for what they hold).
func readDoc(t testing.TB, month string) []byte { return msrctest.Doc(t, month) }

func extract(t testing.TB, month string) msrc.Month {
	t.Helper()
	m, err := msrc.Decode(bytes.NewReader(readDoc(t, month)), month)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// identity is what windowsimage says of an image at osVersion on base ed.
func identity(t testing.TB, osVersion string, ed windowsimage.Edition) windowsimage.Identity {
	t.Helper()
	v, err := windowsimage.ParseVersion(osVersion)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := windowsimage.ProductForBuild(v.Build)
	if !ok {
		t.Fatalf("build %d not covered", v.Build)
	}
	return windowsimage.Identity{OSVersion: osVersion, Version: v, Product: p, Edition: ed}
}

// cves lists the findings' CVEs in order.
func cves(fs []msrc.Finding) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.CVE)
	}
	return strings.Join(out, " ")
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
