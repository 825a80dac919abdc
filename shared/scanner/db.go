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

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy/pkg/clock"
	tdb "github.com/aquasecurity/trivy/pkg/db"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
)

// Trivy keeps its vulnerability DB in one process-wide handle (trivy-db's
// package variable). dbGuard mirrors that: matching holds the read lock, and
// swapping the DB for a newer one holds the write lock, so a refresh never
// closes the DB under a running match. Only one directory is open at a time.
var dbGuard struct {
	sync.RWMutex
	dir   string // the directory currently open; "" when closed
	users int    // scanners sharing it
}

// DBInfo describes the vulnerability DB in use.
type DBInfo struct {
	Version   string    // e.g. "2@2026-05-01T06:00:00Z": schema and build time
	UpdatedAt time.Time // when the DB was built
	Demo      bool      // the built-in demo DB
	Dir       string
	// DownloadError is set when the last attempt to download a newer DB
	// failed and this DB was kept.
	DownloadError string
	// JavaDB is Trivy's Java DB, without which Java archives (JAR, WAR,
	// EAR) are not analysed.
	JavaDB JavaDBInfo
	// Windows is the Windows advisory data Windows images are matched
	// against as well.
	Windows WindowsDB
}

// dbDirs are the directories under the cache dir.
func dbDir(cacheDir string) string     { return filepath.Join(cacheDir, "db") }
func demoDBDir(cacheDir string) string { return filepath.Join(cacheDir, "demo-db") }

// prepareDB makes sure a usable DB is on disk and returns where. It
// downloads when the DB is missing or stale (unless SkipDBUpdate), keeps the
// last good DB when a download fails (returning that failure as kept), and
// falls back to the demo DB when there is none at all and DemoFallback
// allows it.
func prepareDB(ctx context.Context, o Options, log zerolog.Logger) (dir string, demo bool, kept, err error) {
	if o.Now != nil {
		ctx = clock.With(ctx, o.Now())
	}
	dir = dbDir(o.CacheDir)
	if o.DBDir != "" {
		dir = o.DBDir
	}
	_, statErr := os.Stat(trivydb.Path(dir))
	have := statErr == nil
	if o.DBDir == "" {
		var repos []name.Reference
		for _, r := range o.DBRepositories {
			ref, err := name.ParseReference(r)
			if err != nil {
				return "", false, nil, fmt.Errorf("vulnerability DB repository %q: %w", r, err)
			}
			repos = append(repos, ref)
		}
		var copts []tdb.Option
		if len(repos) > 0 {
			copts = append(copts, tdb.WithDBRepository(repos))
		}
		client := tdb.NewClient(dir, true, copts...)
		need, nerr := client.NeedsUpdate(ctx, "palisade", o.SkipDBUpdate && have)
		switch {
		case nerr != nil && have:
			return "", false, nil, fmt.Errorf("vulnerability DB in %s: %w", dir, nerr)
		case nerr == nil && need && !o.SkipDBUpdate:
			if derr := downloadDB(ctx, client, dir); derr != nil {
				if have {
					kept = derr
					log.Warn().Err(derr).Str("db_dir", dir).Msg("vulnerability DB download failed; keeping the last good DB")
				} else {
					err = derr
				}
			} else {
				have = true
				log.Info().Str("db_dir", dir).Msg("vulnerability DB downloaded")
			}
		}
		if _, serr := os.Stat(trivydb.Path(dir)); serr == nil {
			have = true
		}
	}
	if have {
		return dir, false, kept, nil
	}
	if !o.DemoFallback {
		if err == nil {
			err = errors.New("no vulnerability DB present and updates are skipped")
		}
		return "", false, nil, fmt.Errorf("%w: %v", ErrNoDB, err)
	}
	demoDir := demoDBDir(o.CacheDir)
	if berr := buildDemoDB(demoDir); berr != nil {
		return "", false, nil, berr
	}
	log.Warn().Str("db_dir", demoDir).AnErr("download_error", err).
		Msg("NO VULNERABILITY DB AVAILABLE: scanning against the small built-in DEMO DB; results are demo data, not a real assessment")
	return demoDir, true, nil, nil
}

// downloadTimeout bounds a DB download, so an instance without a route to
// the repository falls back quickly instead of hanging.
const downloadTimeout = 3 * time.Minute

// downloadDB fetches the DB into a staging directory and moves it into
// place, so a failed download never damages the DB in use.
func downloadDB(ctx context.Context, client *tdb.Client, dir string) error {
	staging := dir + ".download"
	_ = os.RemoveAll(staging)
	ctx, cancel := context.WithTimeout(ctx, downloadTimeout)
	defer cancel()
	if err := client.Download(ctx, staging, ftypes.RegistryOptions{}); err != nil {
		_ = os.RemoveAll(staging)
		return fmt.Errorf("download vulnerability DB: %w", err)
	}
	dbGuard.Lock()
	defer dbGuard.Unlock()
	if dbGuard.dir == dir {
		// Re-opened by the caller (reopenDB) once the new files are in place.
		_ = trivydb.Close()
		dbGuard.dir = ""
	}
	if err := swapDir(staging, dir); err != nil {
		return fmt.Errorf("replace vulnerability DB: %w", err)
	}
	return nil
}

// swapDir puts the folder staging in the place of dir (which may not
// exist), putting dir back when that fails.
func swapDir(staging, dir string) error {
	old := dir + ".old"
	_ = os.RemoveAll(old)
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(staging, dir); err != nil {
		_ = os.Rename(old, dir)
		return err
	}
	_ = os.RemoveAll(old)
	return nil
}

// openDB opens dir as the process's vulnerability DB (read-only).
func openDB(dir string) error {
	dbGuard.Lock()
	defer dbGuard.Unlock()
	if dbGuard.dir == dir {
		dbGuard.users++
		return nil
	}
	if dbGuard.dir != "" && dbGuard.users > 0 {
		return fmt.Errorf("vulnerability DB %s is open; this process cannot open %s as well", dbGuard.dir, dir)
	}
	if dbGuard.dir != "" {
		_ = trivydb.Close()
	}
	if err := tdb.Init(dir); err != nil {
		dbGuard.dir = ""
		return fmt.Errorf("open vulnerability DB %s: %w", dir, err)
	}
	dbGuard.dir, dbGuard.users = dir, 1
	return nil
}

// reopenDB makes dir the open DB in place of old (which may have been
// closed by a download that replaced its files), keeping the user count.
func reopenDB(old, dir string) error {
	dbGuard.Lock()
	defer dbGuard.Unlock()
	if dbGuard.dir == dir {
		return nil
	}
	if dbGuard.dir != "" && dbGuard.dir != old {
		return fmt.Errorf("vulnerability DB %s is open; this process cannot open %s as well", dbGuard.dir, dir)
	}
	if dbGuard.dir != "" {
		_ = trivydb.Close()
	}
	if err := tdb.Init(dir); err != nil {
		dbGuard.dir = ""
		return fmt.Errorf("open vulnerability DB %s: %w", dir, err)
	}
	dbGuard.dir = dir
	if dbGuard.users == 0 {
		dbGuard.users = 1
	}
	return nil
}

// closeDB releases one user of dir and closes the DB with the last.
func closeDB(dir string) error {
	dbGuard.Lock()
	defer dbGuard.Unlock()
	if dbGuard.dir != dir {
		return nil
	}
	dbGuard.users--
	if dbGuard.users > 0 {
		return nil
	}
	dbGuard.dir = ""
	if err := trivydb.Close(); err != nil {
		return fmt.Errorf("close vulnerability DB: %w", err)
	}
	return nil
}

// readDBInfo reads metadata.json of the DB in dir.
func readDBInfo(dir string, demo bool) (DBInfo, error) {
	meta, err := metadata.NewClient(dir).Get()
	if err != nil {
		return DBInfo{}, fmt.Errorf("read vulnerability DB metadata in %s: %w", dir, err)
	}
	v := fmt.Sprintf("%d@%s", meta.Version, meta.UpdatedAt.UTC().Format(time.RFC3339))
	if demo {
		v = "demo-" + v
	}
	return DBInfo{Version: v, UpdatedAt: meta.UpdatedAt.UTC(), Demo: demo, Dir: dir}, nil
}
