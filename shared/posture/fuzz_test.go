package posture

import (
	"bytes"
	"testing"
)

// FuzzDecodeManifests: any byte stream either decodes or fails with an
// error; objects that decode can be assessed.
func FuzzDecodeManifests(f *testing.F) {
	f.Add(readFile(f, "testdata/good/shop.yaml"))
	f.Add(readFile(f, "testdata/bad/legacy.yaml"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var objs Objects
		if err := DecodeManifests(bytes.NewReader(data), "fuzz.yaml", &objs, ManifestOptions{}); err != nil {
			return
		}
		eng := NewEngine(testConfig(t, ""), nil, nil, nil, nil, clock)
		if _, err := eng.Assess(t.Context(), &Snapshot{Name: "fuzz", Objects: objs}); err != nil {
			t.Fatalf("assess decoded objects: %v", err)
		}
	})
}

// FuzzDecodeCluster: recorded or hostile ARM JSON never panics, and a
// decoded cluster can be assessed.
func FuzzDecodeCluster(f *testing.F) {
	f.Add(readFile(f, "testdata/arm/cluster-hardened.json"))
	f.Add(readFile(f, "testdata/arm/cluster-weak.json"))
	f.Add([]byte(`{"name":"x","properties":{"addonProfiles":{"azurepolicy":null}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cl, err := DecodeCluster(data)
		if err != nil {
			return
		}
		ds, _ := DecodeDiagnosticSettings(data)
		eng := NewEngine(testConfig(t, ""), nil, nil, nil, nil, clock)
		if _, err := eng.Assess(t.Context(), &Snapshot{Name: "fuzz", Cluster: cl, Diagnostics: ds}); err != nil {
			t.Fatalf("assess decoded cluster: %v", err)
		}
	})
}

// FuzzDecodeRegistry covers the registry decoder.
func FuzzDecodeRegistry(f *testing.F) {
	f.Add(readFile(f, "testdata/arm/registry-hardened.json"))
	f.Add(readFile(f, "testdata/arm/registry-open.json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRegistry(data)
		if err == nil && r.Properties.LoginServer == "" {
			t.Fatal("decoded a registry without a login server")
		}
	})
}

// FuzzDecodeExemptions: a decoded exemption always has a name, a reason
// and an expiry.
func FuzzDecodeExemptions(f *testing.F) {
	f.Add([]byte("- name: a\n  check: root-user\n  reason: r\n  expires: 2030-01-01T00:00:00Z\n"))
	f.Add([]byte(`{"exemptions":[{"name":"b","namespace":"x","reason":"r","expires":"2030-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ex, err := DecodeExemptions(data)
		if err != nil {
			return
		}
		for _, e := range ex {
			if e.Name == "" || e.Reason == "" || e.Expires.IsZero() {
				t.Fatalf("invalid exemption accepted: %+v", e)
			}
		}
	})
}
