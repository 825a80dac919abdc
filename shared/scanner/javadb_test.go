package scanner_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/aquasecurity/trivy/pkg/clock"

	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
)

// mysteryJAR is a JAR without pom.properties: only the Java DB (by its
// SHA-1) can tell what it is.
func mysteryJAR(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, body := range map[string]string{
		"META-INF/MANIFEST.MF":                     "Manifest-Version: 1.0\r\nCreated-By: test\r\n\r\n",
		"org/apache/logging/log4j/core/Core.class": "\xca\xfe\xba\xbe not really a class",
	} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: time.Unix(0, 0).UTC()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// javaImage is the Debian test image with the mystery JAR in a WAR-like
// application folder.
func javaImage(t *testing.T, jar []byte) scanner.Target {
	t.Helper()
	files := append(scantest.DebianFiles(), scantest.File{Name: "opt/app/lib/mystery.jar", Body: jar})
	host := scantest.Registry(t)
	dig := scantest.Push(t, host, "team/java", "1", scantest.Image(t, scantest.Layer(t, files)))
	return scanner.Target{Registry: host, Repository: "team/java", Digest: dig}
}

func log4jIndex(jar []byte) scanner.JavaIndex {
	sum := sha1.Sum(jar)
	return scanner.JavaIndex{GroupID: "org.apache.logging.log4j", ArtifactID: "log4j-core", Version: "2.14.1", SHA1: sum[:]}
}

// javaFindings is "vuln package version" of a result's findings in Java
// packages.
func javaFindings(res *scanner.Result) []string {
	var out []string
	for _, f := range res.Findings {
		if f.PkgType == "jar" {
			out = append(out, f.VulnID+" "+f.PkgName+" "+f.InstalledVersion)
		}
	}
	return out
}

// TestJavaDB: with a Java DB (built from Trivy's schema) a JAR without
// pom.properties is identified by its SHA-1 and matched; without one, Java
// archives are not analysed and the scanner says so.
func TestJavaDB(t *testing.T) {
	jar := mysteryJAR(t)
	target := javaImage(t, jar)

	cache := t.TempDir()
	if err := scanner.BuildFixtureJavaDB(filepath.Join(cache, "java-db"), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), log4jIndex(jar)); err != nil {
		t.Fatal(err)
	}
	s := newScanner(t, scanner.Options{CacheDir: cache})
	if j := s.DB().JavaDB; !j.Available() || j.Version != "1@2026-05-01T00:00:00Z" || j.Problem != "" {
		t.Fatalf("Java DB %+v", j)
	}
	res, err := s.Scan(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	if got := javaFindings(res); !slices.Equal(got, []string{"CVE-2021-44228 org.apache.logging.log4j:log4j-core 2.14.1"}) {
		t.Errorf("Java findings %q", got)
	}
	found := false
	for _, g := range res.Inventory.Groups {
		for _, p := range g.Packages {
			if g.Type == "jar" && p.Name == "org.apache.logging.log4j:log4j-core" && p.PURL == "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1" {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("inventory lacks the JAR: %+v", res.Inventory.Groups)
	}
	_ = s.Close()

	// No Java DB: the JAR is not analysed, and the scanner says why.
	bare := newScanner(t, scanner.Options{})
	if j := bare.DB().JavaDB; j.Available() || j.Problem == "" {
		t.Fatalf("without a Java DB: %+v", j)
	}
	res, err = bare.Scan(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	if got := javaFindings(res); len(got) != 0 || len(res.Findings) == 0 {
		t.Errorf("without a Java DB: Java findings %q, %d findings", got, len(res.Findings))
	}
}

// TestJavaDBDownloadAndRefresh: the Java DB is downloaded from its
// repository (PALISADE_TRIVY_JAVA_DB_REPOSITORY), refreshed when Trivy's
// metadata says a newer one is due, and kept when a download fails.
func TestJavaDBDownloadAndRefresh(t *testing.T) {
	host := scantest.Registry(t)
	ref := host + "/mirror/trivy-java-db:1"
	jar := mysteryJAR(t)
	push := func(updatedAt time.Time, ix ...scanner.JavaIndex) {
		dir := t.TempDir()
		if err := scanner.BuildFixtureJavaDB(dir, updatedAt, ix...); err != nil {
			t.Fatal(err)
		}
		scantest.PushJavaDB(t, ref, dir)
	}
	first := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	push(first) // knows nothing of the JAR

	s := newScanner(t, scanner.Options{JavaDBRepositories: []string{ref}})
	if j := s.DB().JavaDB; j.Version != "1@"+first.Format(time.RFC3339) {
		t.Fatalf("downloaded Java DB %+v", j)
	}
	target := javaImage(t, jar)
	res, err := s.Scan(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	if got := javaFindings(res); len(got) != 0 {
		t.Fatalf("first Java DB: %q", got)
	}

	// A newer Java DB, which knows the JAR; the refresh after the old one's
	// NextUpdate takes it, and scans use it.
	second := first.Add(time.Hour)
	push(second, log4jIndex(jar))
	later := clock.With(t.Context(), time.Now().Add(5*24*time.Hour))
	info, err := s.RefreshDB(later)
	if err != nil {
		t.Fatal(err)
	}
	if info.JavaDB.Version != "1@"+second.Format(time.RFC3339) || info.JavaDB.Problem != "" {
		t.Fatalf("refreshed Java DB %+v", info.JavaDB)
	}
	if res, err = s.Scan(t.Context(), target); err != nil {
		t.Fatal(err)
	}
	if got := javaFindings(res); len(got) != 1 {
		t.Fatalf("after the refresh: %q", got)
	}

	// The mirror loses it: the next refresh keeps the last good copy.
	r, _ := name.ParseReference(ref)
	if err := remote.Delete(r); err != nil {
		t.Fatal(err)
	}
	kept, err := s.RefreshDB(clock.With(t.Context(), time.Now().Add(10*24*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if kept.JavaDB.Version != info.JavaDB.Version || kept.JavaDB.Problem == "" {
		t.Fatalf("after a failed download: %+v", kept.JavaDB)
	}
	if res, err = s.Scan(t.Context(), target); err != nil || len(javaFindings(res)) != 1 {
		t.Fatalf("scan with the kept Java DB: %v, %q", err, javaFindings(res))
	}
}
