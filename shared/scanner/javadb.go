package scanner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/rs/zerolog"
	_ "modernc.org/sqlite" // the driver of Trivy's Java DB

	javadbstore "github.com/aquasecurity/trivy-java-db/pkg/db"
	javatypes "github.com/aquasecurity/trivy-java-db/pkg/types"
	"github.com/aquasecurity/trivy/pkg/clock"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/javadb"
	"github.com/aquasecurity/trivy/pkg/oci"
)

// Trivy's Java DB maps the SHA-1 of a JAR (WAR, EAR, PAR) to its Maven
// coordinates, for archives that do not carry a pom.properties; without it
// Trivy cannot analyse Java archives at all. It is managed like the
// vulnerability DB: downloaded into CacheDir/java-db (through a staging
// directory, so a failed download never damages the one in use), refreshed
// by RefreshDB when Trivy's metadata says a newer one is due, and kept when
// a download fails. Without one (offline, or never downloaded) Java
// archives are not analysed, and DBInfo.JavaDB says so.
//
// Trivy's Java DB client is process-wide (package javadb) and opens the DB
// file for each image analysed: javaGuard's read lock is held by analyses
// that use it, its write lock by the swap of a newer copy.
var javaGuard struct {
	sync.RWMutex
	dir     string // the Java DB in use; "" when none
	version string // its JavaDBInfo.Version
}

// javaDBMediaType is the media type of the Java DB's OCI layer.
const javaDBMediaType = "application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip"

// JavaDBInfo describes the Java DB in use.
type JavaDBInfo struct {
	// Version is the schema and build time, e.g. "1@2026-05-01T00:00:00Z";
	// "" when there is no Java DB (Java archives are not analysed).
	Version   string
	UpdatedAt time.Time
	Dir       string
	// Problem says why there is no Java DB, or why the one in use was
	// kept (a failed download).
	Problem string
}

// Available reports whether Java archives are analysed.
func (j JavaDBInfo) Available() bool { return j.Version != "" }

func javaDBDir(cacheDir string) string { return filepath.Join(cacheDir, "java-db") }

// javaDBRepositories are the repositories to download from: the Options'
// or Trivy's defaults.
func javaDBRepositories(o Options) ([]name.Reference, error) {
	repos := o.JavaDBRepositories
	if len(repos) == 0 {
		repos = []string{javadb.DefaultGHCRRepository, javadb.DefaultGCRRepository}
	}
	var out []name.Reference
	for _, r := range repos {
		ref, err := name.ParseReference(r)
		if err != nil {
			return nil, fmt.Errorf("Java DB repository %q: %w", r, err)
		}
		out = append(out, ref)
	}
	return out, nil
}

// prepareJavaDB makes sure the newest Java DB it can have is in
// CacheDir/java-db and in use. It never fails a scanner for want of one:
// without a Java DB, Java archives are not analysed and the returned info
// says why.
func prepareJavaDB(ctx context.Context, o Options, log zerolog.Logger) JavaDBInfo {
	now := clock.Now(ctx)
	if o.Now != nil {
		now = o.Now()
	}
	ctx = clock.With(ctx, now)
	// A fixed vulnerability DB (DBDir: tests, benchmarks) downloads no Java
	// DB either, unless repositories are named.
	skip := o.SkipDBUpdate || (o.DBDir != "" && len(o.JavaDBRepositories) == 0)
	dir := javaDBDir(o.CacheDir)
	mc := javadbstore.NewMetadata(dir)
	meta, err := mc.Get()
	have := err == nil && meta.Version == javadbstore.SchemaVersion
	var problem error
	due := !have || (!now.Before(meta.NextUpdate) && !now.Before(meta.DownloadedAt.Add(24*time.Hour)))
	switch {
	case skip && !have:
		problem = errors.New("no Java DB present and updates are skipped")
	case !skip && due:
		problem = downloadJavaDB(ctx, o, dir, now)
		if problem == nil {
			have = true
			log.Info().Str("db_dir", dir).Msg("Java DB downloaded")
		}
	}
	if !have {
		log.Warn().AnErr("download_error", problem).Str("db_dir", dir).
			Msg("NO JAVA DB: JAR, WAR and EAR files are not analysed; their packages and vulnerabilities are missing from the results")
		useJavaDB(JavaDBInfo{})
		return JavaDBInfo{Problem: problem.Error()}
	}
	if problem != nil {
		log.Warn().Err(problem).Str("db_dir", dir).Msg("Java DB download failed; keeping the last good Java DB")
	}
	info, err := readJavaDBInfo(dir)
	if err != nil {
		useJavaDB(JavaDBInfo{})
		log.Warn().Err(err).Msg("NO JAVA DB: JAR, WAR and EAR files are not analysed")
		return JavaDBInfo{Problem: err.Error()}
	}
	if problem != nil {
		info.Problem = problem.Error()
	}
	useJavaDB(info)
	return info
}

// useJavaDB points Trivy's Java DB client at the Java DB of info (none
// when it has no Dir). Trivy only reads it (its updater's download is
// never used: skip).
func useJavaDB(info JavaDBInfo) {
	javaGuard.Lock()
	defer javaGuard.Unlock()
	javaGuard.dir, javaGuard.version = info.Dir, info.Version
	if info.Dir != "" {
		javadb.Init(filepath.Dir(info.Dir), nil, true, true, ftypes.RegistryOptions{})
	}
}

// downloadJavaDB fetches the Java DB into a staging directory and moves it
// into place while no analysis uses it.
func downloadJavaDB(ctx context.Context, o Options, dir string, now time.Time) error {
	repos, err := javaDBRepositories(o)
	if err != nil {
		return err
	}
	staging := dir + ".download"
	_ = os.RemoveAll(staging)
	ctx, cancel := context.WithTimeout(ctx, downloadTimeout)
	defer cancel()
	if err := oci.NewArtifacts(repos, ftypes.RegistryOptions{}).Download(ctx, staging, oci.DownloadOption{MediaType: javaDBMediaType, Quiet: true}); err != nil {
		_ = os.RemoveAll(staging)
		return fmt.Errorf("download Java DB: %w", err)
	}
	mc := javadbstore.NewMetadata(staging)
	meta, err := mc.Get()
	if err == nil && meta.Version != javadbstore.SchemaVersion {
		err = fmt.Errorf("schema version %d, want %d", meta.Version, javadbstore.SchemaVersion)
	}
	if err == nil {
		_, err = os.Stat(filepath.Join(staging, "trivy-java.db"))
	}
	if err != nil {
		_ = os.RemoveAll(staging)
		return fmt.Errorf("downloaded Java DB is not usable: %w", err)
	}
	meta.DownloadedAt = now.UTC()
	if err := mc.Update(meta); err != nil {
		_ = os.RemoveAll(staging)
		return fmt.Errorf("downloaded Java DB: %w", err)
	}
	javaGuard.Lock()
	defer javaGuard.Unlock()
	if err := swapDir(staging, dir); err != nil {
		return fmt.Errorf("replace Java DB: %w", err)
	}
	return nil
}

func readJavaDBInfo(dir string) (JavaDBInfo, error) {
	mc := javadbstore.NewMetadata(dir)
	meta, err := mc.Get()
	if err != nil {
		return JavaDBInfo{}, fmt.Errorf("read Java DB metadata in %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "trivy-java.db")); err != nil {
		return JavaDBInfo{}, fmt.Errorf("Java DB in %s: %w", dir, err)
	}
	return JavaDBInfo{Version: fmt.Sprintf("%d@%s", meta.Version, meta.UpdatedAt.UTC().Format(time.RFC3339)), UpdatedAt: meta.UpdatedAt.UTC(), Dir: dir}, nil
}

// JavaIndex is one archive of a fixture Java DB: its Maven coordinates and
// the SHA-1 of the archive.
type JavaIndex struct {
	GroupID, ArtifactID, Version string
	SHA1                         []byte
}

// BuildFixtureJavaDB writes a Java DB into dir (trivy-java.db with Trivy's
// published schema, and metadata.json) holding indexes; tests use it.
func BuildFixtureJavaDB(dir string, updatedAt time.Time, indexes ...JavaIndex) error {
	_ = os.RemoveAll(dir)
	d, err := javadbstore.New(dir)
	if err != nil {
		return fmt.Errorf("build fixture Java DB: %w", err)
	}
	if err := d.Init(); err != nil {
		_ = d.Close()
		return fmt.Errorf("build fixture Java DB: %w", err)
	}
	rows := make([]javatypes.Index, len(indexes))
	for i, ix := range indexes {
		rows[i] = javatypes.Index{GroupID: ix.GroupID, ArtifactID: ix.ArtifactID, Version: ix.Version, SHA1: ix.SHA1, ArchiveType: javatypes.JarType}
	}
	if err := d.InsertIndexes(rows); err != nil {
		_ = d.Close()
		return fmt.Errorf("build fixture Java DB: %w", err)
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("build fixture Java DB: %w", err)
	}
	meta := javadbstore.Metadata{Version: javadbstore.SchemaVersion, UpdatedAt: updatedAt, NextUpdate: updatedAt.Add(72 * time.Hour), DownloadedAt: updatedAt}
	mc := javadbstore.NewMetadata(dir)
	if err := mc.Update(meta); err != nil {
		return fmt.Errorf("build fixture Java DB: %w", err)
	}
	return nil
}
