package scanner_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rs/zerolog"

	"github.com/aquasecurity/trivy/pkg/clock"

	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
)

// pushDB publishes a fixture DB built at updatedAt as a Trivy DB OCI
// artifact to ref.
func pushDB(t *testing.T, ref string, updatedAt time.Time) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "db", "*.yaml"))
	dir := t.TempDir()
	if err := scanner.BuildFixtureDB(dir, updatedAt, files...); err != nil {
		t.Fatal(err)
	}
	scantest.PushDB(t, ref, dir)
}

func TestDBDownloadAndRefresh(t *testing.T) {
	host := scantest.Registry(t)
	ref := host + "/mirror/trivy-db:2"
	first := time.Date(2026, 5, 1, 6, 0, 0, 0, time.UTC)
	pushDB(t, ref, first)

	s, err := scanner.New(t.Context(), scanner.Options{CacheDir: t.TempDir(), DBRepositories: []string{ref}, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if db := s.DB(); db.Demo || db.Version != "2@2026-05-01T06:00:00Z" {
		t.Fatalf("downloaded DB: %+v", db)
	}

	// A newer DB appears in the mirror; a refresh two hours later takes it.
	second := first.Add(24 * time.Hour)
	pushDB(t, ref, second)
	info, err := s.RefreshDB(clock.With(t.Context(), time.Now().Add(2*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != "2@2026-05-02T06:00:00Z" || s.DB().Version != info.Version {
		t.Fatalf("refreshed DB: %+v", info)
	}
	// The new DB is the one matches use.
	img := scantest.Image(t, scantest.Layer(t, scantest.AlpineFiles()))
	dig := scantest.Push(t, host, "team/a", "1", img)
	res, err := s.Scan(t.Context(), scanner.Target{Registry: host, Repository: "team/a", Digest: dig})
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.DBVersion != info.Version || len(res.Findings) != 2 {
		t.Fatalf("scan after refresh: %+v", res.Image)
	}

	// The mirror loses the DB: a later refresh fails to download and keeps
	// the last good DB.
	r, _ := name.ParseReference(ref)
	if err := remote.Delete(r); err != nil {
		t.Fatal(err)
	}
	kept, err := s.RefreshDB(clock.With(t.Context(), time.Now().Add(4*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if kept.Version != info.Version || kept.Demo || kept.DownloadError == "" {
		t.Fatalf("after a failed download: %+v, want %s kept and the download error named", kept, info.Version)
	}
}
