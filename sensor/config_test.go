package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfigDefaultsEnvAndFlags(t *testing.T) {
	c, err := loadConfig([]string{"-flush-interval", "250ms", "-node-name", "from-flag"}, env(map[string]string{
		"PALISADE_SENSOR_CLUSTER_ID":     "aks-1",
		"PALISADE_SENSOR_NODE_NAME":      "from-env",
		"PALISADE_SENSOR_FLUSH_INTERVAL": "5s",
		"PALISADE_SENSOR_SPOOL_DIR":      " /var/spool ",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.ClusterID != "aks-1" || c.NodeName != "from-flag" || c.FlushInterval != 250*time.Millisecond || c.SpoolDir != "/var/spool" {
		t.Errorf("got %+v", c)
	}
	if c.HTTPAddr != "127.0.0.1:2802" || c.BatchMaxBytes != 1<<20 || c.EventHubName != "runtime" || c.BufferMaxEvents != 50000 {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestLoadConfigReportsEveryBadValue(t *testing.T) {
	_, err := loadConfig(nil, env(map[string]string{
		"PALISADE_SENSOR_FLUSH_INTERVAL":    "soon",
		"PALISADE_SENSOR_BUFFER_MAX_EVENTS": "-3",
	}), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "PALISADE_SENSOR_FLUSH_INTERVAL") || !strings.Contains(err.Error(), "PALISADE_SENSOR_BUFFER_MAX_EVENTS") {
		t.Errorf("error %v, want both settings named", err)
	}
	if _, err := loadConfig([]string{"-no-such-flag"}, env(nil), &bytes.Buffer{}); err == nil {
		t.Error("unknown flag accepted")
	}
	if _, err := loadConfig([]string{"-h"}, env(nil), &bytes.Buffer{}); err != flag.ErrHelp {
		t.Errorf("-h: %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := func() Config {
		c, _ := loadConfig(nil, env(map[string]string{
			"PALISADE_SENSOR_CLUSTER_ID": "c", "PALISADE_SENSOR_NODE_NAME": "n",
			"PALISADE_SENSOR_EVENTHUBS_NAMESPACE": "ns.servicebus.windows.net",
		}), &bytes.Buffer{})
		return c
	}
	if err := ok().validate(); err != nil {
		t.Fatalf("valid configuration refused: %v", err)
	}
	tests := map[string]func(*Config){
		"no cluster":        func(c *Config) { c.ClusterID = "" },
		"no node":           func(c *Config) { c.NodeName = "" },
		"no input":          func(c *Config) { c.HTTPAddr, c.GRPCAddr = "", "" },
		"no event hubs":     func(c *Config) { c.EventHubsNamespace = "" },
		"no hub name":       func(c *Config) { c.EventHubName = "" },
		"batch over 1 MB":   func(c *Config) { c.BatchMaxBytes = 2 << 20 },
		"retry max too low": func(c *Config) { c.RetryMax = time.Millisecond },
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

func TestUsageHidesTheConnectionString(t *testing.T) {
	var usage bytes.Buffer
	_, err := loadConfig([]string{"-h"}, env(map[string]string{
		"PALISADE_SENSOR_EVENTHUBS_CONNECTION_STRING": "Endpoint=sb://x/;SharedAccessKey=s3cret",
	}), &usage)
	if err != flag.ErrHelp {
		t.Fatal(err)
	}
	if strings.Contains(usage.String(), "s3cret") {
		t.Error("usage prints the connection string")
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
}
