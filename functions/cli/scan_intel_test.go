package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/palisade-sec/palisade/functions/cli"
	"github.com/palisade-sec/palisade/shared/intel/inteltest"
	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
)

// withFeeds writes a KEV catalogue listing kev and EPSS scores (as
// published, the scores gzip-compressed) and points the settings at them.
func withFeeds(t *testing.T, kev ...string) (kevPath, epssPath string) {
	t.Helper()
	dir := t.TempDir()
	kevPath, epssPath = filepath.Join(dir, "kev.json"), filepath.Join(dir, "epss.csv.gz")
	epss := inteltest.EPSS(time.Now().Add(-time.Hour),
		inteltest.Score{CVE: "CVE-2023-4911", Score: 0.77136, Percentile: 0.98941},
		inteltest.Score{CVE: "CVE-2023-45853", Score: 0.6, Percentile: 0.97})
	if err := os.WriteFile(kevPath, inteltest.KEV("2026.11.28", time.Now().Add(-24*time.Hour), inteltest.Listed("2023-11-21", kev...)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(epssPath, inteltest.Gzip(epss), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PALISADE_KEV_URL", kevPath)
	t.Setenv("PALISADE_EPSS_URL", epssPath)
	return kevPath, epssPath
}

// debianTar writes the Debian test image as a `docker save` tar.
func debianTar(t *testing.T) string {
	t.Helper()
	img := scantest.Image(t, scantest.Layer(t, scantest.DebianFiles()))
	tag, _ := name.NewTag("example.com/team/web:1")
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	return p
}

// row is the table line of a vulnerability, split into its columns.
func row(out, vuln string) []string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[2] == vuln {
			return f
		}
	}
	return nil
}

// TestScanExploitationData: the table, JSON and SARIF carry each finding's
// KEV listing, EPSS score and priority, most urgent first, and the feeds'
// state; --fail-on-kev fails on a listed CVE and only then.
func TestScanExploitationData(t *testing.T) {
	withFixtureDB(t)
	withFeeds(t, "CVE-2023-4911")
	tarPath := debianTar(t)

	code, out, stderr := run(t, "--input", tarPath)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if r := row(out, "CVE-2023-4911"); len(r) < 8 || r[0] != "P2" || r[1] != "HIGH" || r[6] != "yes" || r[7] != "0.771" {
		t.Errorf("row of the listed CVE: %q\n%s", r, out)
	}
	if r := row(out, "CVE-2023-5678"); len(r) < 8 || r[0] != "P4" || r[6] != "-" || r[7] != "-" {
		t.Errorf("row of an unlisted CVE: %q", r)
	}
	lines := strings.Split(out, "\n")
	first := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "PRIORITY") {
			first = i + 1
		}
	}
	if first == 0 || !strings.HasPrefix(lines[first], "P2") {
		t.Errorf("the most urgent finding is not first:\n%s", out)
	}
	for _, want := range []string{"KEV:      catalogue 2026.11.28", "1 entries", "EPSS:     scores of ", "2 CVEs"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	code, _, stderr = run(t, "--input", tarPath, "--fail-on-kev")
	if code != cli.ExitPolicy || !strings.Contains(stderr, "1 findings are in CISA's Known Exploited Vulnerabilities catalogue: CVE-2023-4911 (libc6)") {
		t.Errorf("--fail-on-kev with a listed CVE: exit %d, stderr:\n%s", code, stderr)
	}

	// SARIF: result and rule properties, and the run's.
	code, out, stderr = run(t, "--input", tarPath, "--format", "sarif")
	if code != cli.ExitOK {
		t.Fatalf("sarif: exit %d: %s", code, stderr)
	}
	var log struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Rules []struct {
						ID         string
						Properties struct{ Tags []string }
					}
				}
			}
			Results []struct {
				RuleID     string
				Message    struct{ Text string }
				Properties struct {
					Priority       model.Priority
					KnownExploited bool
					KEV            *model.KEV
					EPSS           *model.EPSS
				}
			}
			Properties struct {
				DemoData          *bool
				DBVersion         string
				ExploitationFeeds []model.FeedReport
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	run0 := log.Runs[0]
	if p := run0.Properties; p.DemoData == nil || *p.DemoData || p.DBVersion == "" || len(p.ExploitationFeeds) != 2 || !p.ExploitationFeeds[0].Held || p.ExploitationFeeds[1].Entries != 2 {
		t.Errorf("run properties %+v", p)
	}
	found := false
	for _, r := range run0.Results {
		if r.RuleID != "CVE-2023-4911" {
			continue
		}
		found = true
		p := r.Properties
		if p.Priority != model.P2 || !p.KnownExploited || p.KEV == nil || p.KEV.DateAdded != "2023-11-21" || p.EPSS == nil || p.EPSS.Score != 0.77136 ||
			!strings.Contains(r.Message.Text, "Exploited in the wild (CISA KEV since 2023-11-21)") {
			t.Errorf("result %+v", r)
		}
	}
	for _, r := range run0.Tool.Driver.Rules {
		if known := strings.Contains(strings.Join(r.Properties.Tags, ","), "known-exploited"); known != (r.ID == "CVE-2023-4911") {
			t.Errorf("rule %s tags %q", r.ID, r.Properties.Tags)
		}
	}
	if !found {
		t.Errorf("no result of CVE-2023-4911: %s", out)
	}

	// Another catalogue, given by flag, listing none of the image's CVEs.
	other, _ := withFeeds(t, "CVE-2021-44228")
	code, _, stderr = run(t, "--input", tarPath, "--fail-on-kev", "--kev", other)
	if code != cli.ExitOK {
		t.Errorf("--fail-on-kev with no listed CVE: exit %d: %s", code, stderr)
	}
}

// TestScanFeedsServedAndMissing: the feeds are read from URLs as well;
// without a KEV catalogue the findings say so, and --fail-on-kev cannot
// pass.
func TestScanFeedsServedAndMissing(t *testing.T) {
	withFixtureDB(t)
	withFeeds(t)
	tarPath := debianTar(t)
	srv := inteltest.NewServer(t, inteltest.KEV("2026.11.28", time.Now().Add(-time.Hour), inteltest.Vuln{CVE: "CVE-2023-45853", DateAdded: "2024-01-02"}),
		inteltest.EPSS(time.Now().Add(-100*time.Hour), inteltest.Score{CVE: "CVE-2023-45853", Score: 0.2, Percentile: 0.9}))
	code, out, stderr := run(t, "--input", tarPath, "--kev", srv.KEVURL(), "--epss", srv.EPSSURL(), "--format", "json")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got struct {
		Feeds    []model.FeedReport `json:"exploitationFeeds"`
		Findings []model.Finding
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Findings) == 0 || got.Findings[0].VulnID != "CVE-2023-45853" || got.Findings[0].KEV == nil || got.Findings[0].Priority != model.P2 {
		t.Errorf("first finding: %+v", got.Findings[0])
	}
	if len(got.Feeds) != 2 || got.Feeds[0].Stale || !got.Feeds[1].Stale || !strings.Contains(stderr, "WARNING: EPSS data is stale (the scores are of") {
		t.Errorf("feeds %+v; stderr:\n%s", got.Feeds, stderr)
	}

	srv.Fail("/kev.json", 503)
	code, out, stderr = run(t, "--input", tarPath, "--kev", srv.KEVURL(), "--epss=", "--fail-on-kev")
	if code != cli.ExitUsage || !strings.Contains(stderr, "--fail-on-kev needs CISA's KEV catalogue: could not be had: GET "+srv.KEVURL()+": HTTP 503") ||
		!strings.Contains(stderr, "WARNING: no KEV data") || !strings.Contains(out, "KEV:      NONE: could not be had") {
		t.Errorf("no KEV catalogue: exit %d\n%s\nstderr:\n%s", code, out, stderr)
	}
	if r := row(out, "CVE-2023-4911"); len(r) < 8 || r[6] != "?" || r[7] != "?" {
		t.Errorf("row without feeds: %q", r)
	}
}

// TestScanDemoGate: outside palisade dev the demo DB is used only with
// --demo, whatever PALISADE_TRIVY_DEMO_DB says; its results exit 3 with
// any policy, and every output says they are demo data.
func TestScanDemoGate(t *testing.T) {
	t.Setenv("PALISADE_TRIVY_CACHE_DIR", t.TempDir())
	t.Setenv("PALISADE_TRIVY_SKIP_DB_UPDATE", "true")
	t.Setenv("PALISADE_TRIVY_DEMO_DB", "true")
	t.Setenv("PALISADE_LOG_LEVEL", "warn")
	withFeeds(t, "CVE-2023-4911")
	tarPath := debianTar(t)

	if code, _, stderr := run(t, "--input", tarPath, "--fail-on", "critical"); code != cli.ExitUsage {
		t.Fatalf("no DB and no --demo: exit %d, want %d: %s", code, cli.ExitUsage, stderr)
	}
	for _, args := range [][]string{{}, {"--fail-on", "low"}, {"--fail-on", "critical"}, {"--fail-on-kev"}} {
		args = append([]string{"--input", tarPath, "--demo"}, args...)
		code, out, stderr := run(t, args...)
		if code != cli.ExitDemo {
			t.Errorf("%q: exit %d, want %d: %s", args, code, cli.ExitDemo, stderr)
		}
		if !strings.HasPrefix(out, "*** DEMO DATA") || !strings.Contains(out, "NOT A REAL ASSESSMENT") || !strings.Contains(stderr, "DEMO DB") {
			t.Errorf("%q: the output does not say the results are demo data:\n%s\n%s", args, out, stderr)
		}
	}
	code, out, _ := run(t, "--input", tarPath, "--demo", "--format", "sarif")
	var log struct {
		Runs []struct {
			Properties map[string]any
			Results    []struct{ Properties map[string]any }
		}
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	if code != cli.ExitDemo || log.Runs[0].Properties["demoData"] != true || !strings.HasPrefix(log.Runs[0].Properties["dbVersion"].(string), "demo-") ||
		len(log.Runs[0].Results) == 0 || log.Runs[0].Results[0].Properties["demoData"] != true {
		t.Errorf("sarif with demo data: exit %d, %+v", code, log.Runs[0].Properties)
	}
}

// TestScanVEX: a --vex statement suppresses its CVE in its package (shown
// as such, P4, out of the counts and of --fail-on-kev); the other findings
// are untouched; an invalid document is a usage error naming it.
func TestScanVEX(t *testing.T) {
	withFixtureDB(t)
	withFeeds(t, "CVE-2023-4911")
	tarPath := debianTar(t)
	dir := t.TempDir()
	doc := filepath.Join(dir, "libc6.openvex.json")
	if err := os.WriteFile(doc, []byte(`{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "urn:contoso:vex:libc6", "author": "Contoso",
"timestamp": "2026-11-29T08:00:00Z", "version": 1, "statements": [{"vulnerability": {"name": "CVE-2023-4911"}, "status": "not_affected",
"justification": "vulnerable_code_cannot_be_controlled_by_adversary", "products": [{"@id": "pkg:deb/debian/libc6"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}

	code, plain, _ := run(t, "--input", tarPath, "--format", "json")
	if code != cli.ExitOK {
		t.Fatalf("without --vex: exit %d", code)
	}
	var before jsonOut
	if err := json.Unmarshal([]byte(plain), &before); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := run(t, "--input", tarPath, "--fail-on-kev", "--vex", doc)
	if code != cli.ExitOK {
		t.Fatalf("--fail-on-kev with the listed CVE not_affected: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "P4 VEX:not_affected  HIGH") || !strings.Contains(out, "(and 1 suppressed by VEX)") {
		t.Errorf("table does not show the suppression:\n%s", out)
	}

	code, out, _ = run(t, "--input", tarPath, "--format", "json", "--vex", doc)
	var after jsonOut
	if err := json.Unmarshal([]byte(out), &after); err != nil || code != cli.ExitOK {
		t.Fatalf("json: exit %d, %v", code, err)
	}
	if len(after.Findings) != len(before.Findings) {
		t.Fatalf("%d findings with --vex, %d without: suppressed findings stay listed", len(after.Findings), len(before.Findings))
	}
	n := 0
	for _, f := range after.Findings {
		if f.Suppressed == nil {
			continue
		}
		n++
		if f.VulnID != "CVE-2023-4911" || f.PkgName != "libc6" || f.Priority != model.P4 || f.Suppressed.Justification != "vulnerable_code_cannot_be_controlled_by_adversary" {
			t.Errorf("suppressed %+v", f)
		}
	}
	if n != 1 || after.Image.Counts[model.SeverityHigh] != before.Image.Counts[model.SeverityHigh]-1 {
		t.Errorf("%d suppressed; high counts %d with --vex, %d without", n, after.Image.Counts[model.SeverityHigh], before.Image.Counts[model.SeverityHigh])
	}

	// SARIF: the suppressed result carries a SARIF suppression.
	code, out, _ = run(t, "--input", tarPath, "--format", "sarif", "--vex", doc)
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID       string
				Suppressions []struct{ Kind, Status, Justification string }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil || code != cli.ExitOK || len(log.Runs) != 1 {
		t.Fatalf("sarif: exit %d, %v", code, err)
	}
	for _, r := range log.Runs[0].Results {
		want := r.RuleID == "CVE-2023-4911"
		if got := len(r.Suppressions) == 1 && r.Suppressions[0].Kind == "external" && strings.Contains(r.Suppressions[0].Justification, "not_affected"); got != want {
			t.Errorf("sarif result %s suppressions %+v", r.RuleID, r.Suppressions)
		}
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"vulnerability": {"name": "CVE-2023-4911"}, "status": "maybe", "products": [{"@id": "pkg:deb/debian/libc6"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "--input", tarPath, "--vex", bad); code != cli.ExitUsage || !strings.Contains(stderr, "bad.json") || !strings.Contains(stderr, "statement 1 (CVE-2023-4911)") {
		t.Errorf("invalid --vex: exit %d: %s", code, stderr)
	}
}

// TestScanSelection: --priority, --kev-only and --min-epss keep only the
// findings they select, in the output and for --fail-on; a bad value is a
// usage error.
func TestScanSelection(t *testing.T) {
	withFixtureDB(t)
	withFeeds(t, "CVE-2023-4911")
	tarPath := debianTar(t)
	ids := func(args ...string) (int, []string) {
		t.Helper()
		code, out, stderr := run(t, append([]string{"--input", tarPath, "--format", "json"}, args...)...)
		var got jsonOut
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%q: %v: %s", args, err, stderr)
		}
		var vulns []string
		for _, f := range got.Findings {
			vulns = append(vulns, f.VulnID+" "+string(f.Priority))
		}
		return code, vulns
	}
	_, all := ids()
	if len(all) < 3 {
		t.Fatalf("findings %q: want several to select from", all)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--kev-only"}, "CVE-2023-4911 P2"},
		{[]string{"--priority", "p2"}, "CVE-2023-4911 P2"},
		{[]string{"--min-epss", "0.5"}, "CVE-2023-4911 P2,CVE-2023-45853 P3"},
		{[]string{"--min-epss", "0.7", "--priority", "P3"}, "CVE-2023-4911 P2"},
		{[]string{"--min-epss", "0.99"}, ""},
	} {
		code, got := ids(tc.args...)
		if code != cli.ExitOK || strings.Join(got, ",") != tc.want {
			t.Errorf("%q: exit %d, findings %q, want %q", tc.args, code, got, tc.want)
		}
	}
	// The gate sees the selection: without it --fail-on low fails.
	if code, _ := ids("--fail-on", "low"); code != cli.ExitPolicy {
		t.Errorf("--fail-on low: exit %d, want %d", code, cli.ExitPolicy)
	}
	if code, _ := ids("--min-epss", "0.99", "--fail-on", "low"); code != cli.ExitOK {
		t.Errorf("--min-epss 0.99 --fail-on low: exit %d, want %d", code, cli.ExitOK)
	}
	if code, _ := ids("--kev-only", "--fail-on", "high"); code != cli.ExitPolicy {
		t.Errorf("--kev-only --fail-on high: exit %d, want %d", code, cli.ExitPolicy)
	}
	for _, bad := range [][]string{{"--priority", "P5"}, {"--min-epss", "1.5"}, {"--min-epss", "NaN"}} {
		code, _, stderr := run(t, append([]string{"--input", tarPath}, bad...)...)
		if code != cli.ExitUsage || !strings.Contains(stderr, bad[0]) {
			t.Errorf("%q: exit %d, stderr %s", bad, code, stderr)
		}
	}
}
