package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGateConfig: the gate's settings are read, it needs the API, and a
// bad rules file stops the agent with the file named.
func TestGateConfig(t *testing.T) {
	c, err := loadConfig([]string{"-gate-fail-closed", "true"}, env(map[string]string{
		"PALISADE_AGENT_CLUSTER_ID": "c", "PALISADE_AGENT_NAME": "a", "PALISADE_AGENT_EVENTHUBS_NAMESPACE": "ns.servicebus.windows.net",
		"PALISADE_GATE_ADDR": ":9443", "PALISADE_GATE_REFRESH": "2m",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	g := c.Gate
	if g.Addr != ":9443" || g.Refresh != 2*time.Minute || !g.FailClosed || g.MissTimeout != time.Second || g.ConfigName != "palisade-gate" || !g.RegistryLookup {
		t.Errorf("gate config %+v", g)
	}
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "PALISADE_GATE_ADDR needs PALISADE_AGENT_API_URL") {
		t.Errorf("gate without the API: %v", err)
	}
	if r, err := g.loadRules(); err != nil || r.Rules[0].Name != "default-high-critical" {
		t.Errorf("no file: %v %v", r.Rules, err)
	}
	bad := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(bad, []byte("rules: [{name: x, mode: block, conditions: {minSeverity: high}}]"), 0o600)
	g.RulesFile = bad
	if _, err := g.loadRules(); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `mode "block"`) {
		t.Errorf("bad file: %v", err)
	}
}
