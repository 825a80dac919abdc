package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfigDefaultsEnvAndFlags(t *testing.T) {
	c, err := loadConfig([]string{"-flush-interval", "1s", "-leader-election=false"}, env(map[string]string{
		"PALISADE_AGENT_CLUSTER_ID":     "aks-1",
		"PALISADE_AGENT_FLUSH_INTERVAL": "10s",
		"PALISADE_AGENT_API_KEY":        "k3y",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.ClusterID != "aks-1" || c.FlushInterval != time.Second || c.LeaderElection || c.APIKey != "k3y" {
		t.Errorf("got %+v", c)
	}
	if c.Resync != time.Hour || c.Heartbeat != 5*time.Minute || c.EventHubName != "inventory" || c.MaxMessageBytes != 960000 || c.Remediation {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	ok := func() Config {
		c, err := loadConfig(nil, env(map[string]string{
			"PALISADE_AGENT_CLUSTER_ID": "c", "PALISADE_AGENT_NAME": "a",
			"PALISADE_AGENT_EVENTHUBS_NAMESPACE": "ns.servicebus.windows.net",
		}), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := ok().validate(); err != nil {
		t.Fatalf("valid configuration refused: %v", err)
	}
	tests := map[string]func(*Config){
		"no cluster":               func(c *Config) { c.ClusterID = "" },
		"no event hubs":            func(c *Config) { c.EventHubsNamespace = "" },
		"message over 1 MB":        func(c *Config) { c.MaxMessageBytes = 2 << 20 },
		"buffer below a message":   func(c *Config) { c.BufferMaxBytes = 1000 },
		"remediation without api":  func(c *Config) { c.Remediation = true },
		"heartbeat below flush":    func(c *Config) { c.Heartbeat = time.Second; c.FlushInterval = time.Minute },
		"election without a lease": func(c *Config) { c.LeaseName = "" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			c := ok()
			mutate(&c)
			if err := c.validate(); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestReadmeDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings() {
		row := "| `" + s.Env + "` | `-" + s.Flag + "` |"
		if !bytes.Contains(readme, []byte(row)) {
			t.Errorf("README.md has no row for %s (-%s)", s.Env, s.Flag)
		}
	}
	if _, err := loadConfig([]string{"-h"}, env(map[string]string{"PALISADE_AGENT_API_KEY": "s3cret"}), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "help") {
		t.Errorf("-h: %v", err)
	}
}
