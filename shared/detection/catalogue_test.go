package detection_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/audit"
	"github.com/palisade-sec/palisade/shared/config"
	"github.com/palisade-sec/palisade/shared/detection"
	"github.com/palisade-sec/palisade/shared/falcoevent"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/tests/faultstore"
)

const auditResourceID = "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/RG-AKS/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-PROD"

// defaultDetect is the detection configuration with every setting at its
// default, as a new installation runs.
func defaultDetect(t *testing.T) config.Detect {
	t.Helper()
	c, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return c.Detect
}

// jsonLines reads a file of one JSON document a line (a .json file is one
// line).
func jsonLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, detection.MaxEventBytes)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, append([]byte(nil), line...))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func glob(t *testing.T, patterns ...string) []string {
	t.Helper()
	var out []string
	for _, p := range patterns {
		m, err := filepath.Glob(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	sort.Strings(out)
	return out
}

// TestEveryTypeFires: every alert type of the catalogue, runtime and
// audit, is raised as an active alert by at least one of the committed
// real-format samples, with the default settings: Falco output lines
// (testdata/falco), AKS kube-audit records (../audit/testdata/events and
// bursts) and, for NetworkAnomaly and the learned audit types
// (../audit/testdata/anomalies), requests before and after the learning
// period.
func TestEveryTypeFires(t *testing.T) {
	cfg := defaultDetect(t)
	d, err := detection.NewDetector(detection.Options{}) // zero: the defaults
	if err != nil {
		t.Fatal(err)
	}
	fired := map[string][]string{}
	collect := func(sample string, b *detection.Batch) {
		for _, a := range b.Alerts() {
			if a.Status == model.AlertNew && !slices.Contains(fired[a.Type], sample) {
				fired[a.Type] = append(fired[a.Type], sample)
			}
		}
	}

	// Runtime: each sample on its own batch, so that a burst fires on its
	// own events only.
	st := faultstore.Open(t)
	bl := detection.NewBaselines(st, d, detection.BaselineOptions{Learning: cfg.BaselineLearning, MaxDestinations: cfg.BaselineMaxDestinations})
	for _, path := range glob(t, filepath.Join("testdata", "falco", "*.json"), filepath.Join("testdata", "falco", "*.jsonl")) {
		name := filepath.Base(path)
		b := d.NewBatch()
		for _, line := range jsonLines(t, path) {
			ev, err := falcoevent.DecodeJSON(line)
			e := ev.Envelope
			falcoevent.Stamp(&e, "aks-prod", "")
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			b.AddEnvelope(&e)
			hits, err := bl.Observe(t.Context(), []*model.Envelope{&e})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hits {
				b.Add(h)
			}
		}
		collect(name, b)
	}

	// Audit: each sample wrapped as AKS diagnostics deliver it.
	ti, err := os.Open(filepath.Join("..", "audit", "testdata", "threat-intel.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer ti.Close()
	list, err := audit.ParseThreatList(ti)
	if err != nil {
		t.Fatal(err)
	}
	an, err := audit.New(audit.Options{ThreatIntel: list})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "audit", "testdata")
	for _, path := range glob(t, filepath.Join(dir, "events", "*.json"), filepath.Join(dir, "bursts", "*.jsonl")) {
		var recs []map[string]any
		for _, line := range jsonLines(t, path) {
			recs = append(recs, map[string]any{"time": "2024-05-01T12:00:00.0000000Z", "resourceId": auditResourceID, "category": "kube-audit",
				"operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read", "properties": map[string]any{"log": string(line)}})
		}
		body, err := json.Marshal(map[string]any{"records": recs})
		if err != nil {
			t.Fatal(err)
		}
		b := d.NewBatch()
		var c audit.Counts
		bad, err := an.Analyze(b, body, &c)
		if err != nil || len(bad) != 0 {
			t.Fatalf("%s: bad %v, err %v", path, bad, err)
		}
		collect(filepath.Base(path), b)
	}

	// Learned types: each sample is one identity's requests, learned, then
	// one outside its baseline, through the identity baselines.
	ids := audit.NewIdentities(faultstore.Open(t), audit.IdentityOptions{Learning: cfg.BaselineLearning, HalfLife: cfg.IdentityHalfLife, MinActiveHours: cfg.IdentityMinActiveHours})
	for _, path := range glob(t, filepath.Join(dir, "anomalies", "*.jsonl")) {
		b := d.NewBatch()
		for _, line := range jsonLines(t, path) {
			body, err := json.Marshal(map[string]any{"records": []any{map[string]any{"time": "2024-05-01T12:00:00.0000000Z", "resourceId": auditResourceID, "category": "kube-audit",
				"operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read", "properties": map[string]any{"log": string(line)}}}})
			if err != nil {
				t.Fatal(err)
			}
			var c audit.Counts
			var obs audit.Observations
			if bad, err := an.AnalyzeObserving(b, body, &c, &obs); err != nil || len(bad) != 0 {
				t.Fatalf("%s: bad %v, err %v", path, bad, err)
			}
			hits, err := ids.Observe(t.Context(), obs.List())
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hits {
				b.Add(h)
			}
		}
		collect(filepath.Base(path), b)
	}

	// Gated deployment: a denied admission.
	ab := d.NewBatch()
	if h, ok := detection.AdmissionHit(model.Admission{ID: "a1", Cluster: "aks", Time: time.Unix(1714564800, 0), UID: "u", Operation: "CREATE",
		ObjectKind: "Pod", Namespace: "shop", Name: "web", Violations: []model.AdmissionViolation{{Rule: "deny-critical", Mode: "deny", Container: "app",
			Image: "acr.io/web:1", CVEs: []string{"CVE-2099-1"}}}}); ok {
		ab.Add(h)
	}
	collect("admission", ab)

	var missing []string
	for _, at := range detection.Types() {
		if at.Source == detection.SourceVulnerability {
			continue // raised by refreshintel from feed changes; see its tests
		}
		if len(fired[at.Name]) == 0 {
			missing = append(missing, at.Name+" ("+at.RefType+")")
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d alert types fire on no sample: %s", len(missing), len(detection.Types()), strings.Join(missing, ", "))
	}
}
