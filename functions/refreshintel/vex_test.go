package refreshintel_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// openVEX is an OpenVEX document with the statements given (JSON).
func openVEX(id string, statements string) []byte {
	return []byte(`{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "` + id + `", "author": "Contoso security",
"timestamp": "2026-11-29T08:00:00Z", "version": 1, "statements": [` + statements + `]}`)
}

// vexStatements: heartbleed does not affect image B (a purl of the image);
// looney does not affect libc6 in image A (a reference and a
// subcomponent), whatever it does elsewhere; the lodash advisory (no CVE,
// so every finding is looked at) is fixed in lodash 1.0, in every image.
var vexStatements = `
{"vulnerability": {"name": "GHSA-0000-0000-0000"}, "status": "fixed", "products": [{"@id": "pkg:npm/lodash@1.0"}]},
{"vulnerability": {"name": "` + heartbleed + `"}, "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
 "products": [{"@id": "pkg:oci/web@` + imageB + `?repository_url=contoso.azurecr.io/shop/web"}]},
{"vulnerability": {"name": "` + looney + `"}, "status": "not_affected", "justification": "vulnerable_code_not_present",
 "products": [{"@id": "contoso.azurecr.io/shop/web@` + imageA + `", "subcomponents": [{"@id": "pkg:deb/debian/libc6@1.0"}]}]}`

// suppressed is "CVE/package status" of an image's suppressed open findings.
func suppressed(t *testing.T, f *fixture, d string) []string {
	t.Helper()
	var out []string
	for k, fd := range stored(t, f.st, d) {
		if fd.Status == model.FindingOpen && fd.Suppressed != nil {
			out = append(out, k+" "+fd.Suppressed.Status)
			if fd.Priority != model.P4 || (fd.Suppressed.Status == "not_affected") == (fd.Suppressed.Justification == "") {
				t.Errorf("suppressed %s: priority %s, justification %q", k, fd.Priority, fd.Suppressed.Justification)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestVEXFolder: the documents of PALISADE_VEX_DIR suppress exactly their
// (CVE, product) pairs on the next run, without matching anything again;
// running again changes nothing; a rescan keeps the suppression; a bad
// file withdraws nothing; removing the file brings the findings back.
func TestVEXFolder(t *testing.T) {
	f := newFixture(t, "server", "server")
	ctx := t.Context()
	f.putRunning(t, "aks-prod", imageB)
	for _, d := range []string{imageA, imageB} {
		if err := f.scan(ctx, d, day1.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	f.mustFire(t)
	if got := priorities(t, f.st, imageB); !slices.Equal(got, []string{"CVE-2014-0160/openssl P1", "CVE-2023-4911/libc6 P3"}) {
		t.Fatalf("before VEX: %q", got)
	}

	file := filepath.Join(f.vexDir, "contoso.json")
	if err := os.WriteFile(file, openVEX("https://contoso.example/vex/1", vexStatements), 0o600); err != nil {
		t.Fatal(err)
	}
	f.clk.Set(day1.Add(time.Hour))
	run := f.mustFire(t)
	if run.VEXStored != 1 || run.VEXBad != 0 || run.Updated != 3 || !run.Complete || !run.All {
		t.Fatalf("run with the VEX folder: %+v", run)
	}
	wantA := []string{"CVE-2023-4911/libc6 not_affected", "GHSA-0000-0000-0000/lodash fixed"}
	wantB := []string{"CVE-2014-0160/openssl not_affected"}
	check := func(when string) {
		t.Helper()
		if got := suppressed(t, f, imageA); !slices.Equal(got, wantA) {
			t.Errorf("%s: image A suppressed %q, want %q", when, got, wantA)
		}
		if got := suppressed(t, f, imageB); !slices.Equal(got, wantB) {
			t.Errorf("%s: image B suppressed %q, want %q", when, got, wantB)
		}
	}
	check("after the run")
	img, err := vulnstore.GetImage(ctx, f.st, imageB)
	if err != nil {
		t.Fatal(err)
	}
	if img.Counts[model.SeverityHigh] != 1 || img.MaxRank != model.SeverityHigh.Rank() {
		t.Errorf("image B counts %v: the suppressed finding still counts", img.Counts)
	}
	exp, err := vulnstore.OpenFindings(ctx, f.st, imageB, "")
	if err != nil || exp.Total() != 1 || slices.Contains(exp.VulnIDs, heartbleed) {
		t.Errorf("exposure of image B: %+v, %v", exp, err)
	}

	// Redelivery: nothing changes.
	if run := f.mustFire(t); run.VEXStored != 0 || run.Updated != 0 {
		t.Fatalf("second run: %+v", run)
	}
	// A rescan (re-match) keeps the suppression.
	if err := f.scan(ctx, imageB, day1.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	check("after a rescan")

	// A broken edit of the file, and another broken file: refused, the
	// statements stored stay in force.
	if err := os.WriteFile(file, []byte(`{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"vulnerability": {"name": "CVE-2014-0160"}, "status": "not_affected", "products": [{"@id": "x/y@`+imageB+`"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.vexDir, "notes.json"), []byte(`{"hello": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if run := f.mustFire(t); run.VEXBad != 2 || run.VEXRemoved != 0 || run.Updated != 0 {
		t.Fatalf("run with bad files: %+v", run)
	}
	if !strings.Contains(f.logs.String(), "justification") || !strings.Contains(f.logs.String(), "neither OpenVEX") {
		t.Errorf("the refused files are not explained in the log:\n%s", f.logs.String())
	}
	check("after bad files")

	// The file removed: its statements are withdrawn.
	for _, name := range []string{file, filepath.Join(f.vexDir, "notes.json")} {
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
	run = f.mustFire(t)
	if run.VEXRemoved != 1 || run.Updated != 3 {
		t.Fatalf("run after the file was removed: %+v", run)
	}
	wantA, wantB = nil, nil
	check("after the file was removed")
	if got := priorities(t, f.st, imageB); !slices.Equal(got, []string{"CVE-2014-0160/openssl P1", "CVE-2023-4911/libc6 P3"}) {
		t.Fatalf("after withdrawal: %q", got)
	}
	if img, err := vulnstore.GetImage(ctx, f.st, imageB); err != nil || img.Counts[model.SeverityHigh] != 2 {
		t.Errorf("image B counts after withdrawal %v, %v", img.Counts, err)
	}
}
