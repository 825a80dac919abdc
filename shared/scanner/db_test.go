package scanner_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/rs/zerolog"

	"github.com/aquasecurity/trivy/pkg/clock"

	"github.com/palisade-sec/palisade/shared/scanner"
	"github.com/palisade-sec/palisade/shared/scanner/scantest"
)

// pushDB publishes a fixture DB built at updatedAt as a Trivy DB OCI
// artifact (one db.tar.gz layer) to host/repo.
func pushDB(t *testing.T, ref string, updatedAt time.Time) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "db", "*.yaml"))
	dir := t.TempDir()
	if err := scanner.BuildFixtureDB(dir, updatedAt, files...); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []string{"trivy.db", "metadata.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: f, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(b)
	}
	_ = tw.Close()
	_ = zw.Close()
	layer := static.NewLayer(buf.Bytes(), "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip")
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:       layer,
		Annotations: map[string]string{"org.opencontainers.image.title": "db.tar.gz"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
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
