// Package scanner finds the vulnerabilities of container images. It is the
// only package of Palisade that imports Trivy (as a library): it pulls an
// image by digest (or reads a local archive), analyses its OS and language
// packages with Trivy's fanal (each layer's analysis cached by diff ID, the
// digest of its uncompressed content, which is checked as a local layer is
// read), and matches the package inventory against Trivy's vulnerability DB.
//
// Matching is a separate, cheap entry point (Match): rescans re-match a
// stored inventory against a newer DB without pulling any layer.
package scanner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/rs/zerolog"

	"github.com/aquasecurity/trivy/pkg/cache"
	"github.com/aquasecurity/trivy/pkg/fanal/analyzer"
	"github.com/aquasecurity/trivy/pkg/fanal/applier"
	"github.com/aquasecurity/trivy/pkg/fanal/artifact"
	aimage "github.com/aquasecurity/trivy/pkg/fanal/artifact/image"
	trivylog "github.com/aquasecurity/trivy/pkg/log"

	"github.com/palisade-sec/palisade/shared/model"
)

// Errors of a scan. Test with errors.Is.
var (
	// ErrImageNotFound: the registry has no such image (or the input file
	// does not exist).
	ErrImageNotFound = errors.New("image not found")
	// ErrUnauthorized: the registry refused the credentials.
	ErrUnauthorized = errors.New("registry refused access")
	// ErrNoPlatform: a manifest list without a linux/amd64 or a
	// windows/amd64 image.
	ErrNoPlatform = errors.New("manifest list has no linux/amd64 or windows/amd64 image")
	// ErrNotImage: the reference or input is not a container image.
	ErrNotImage = errors.New("not a container image")
	// ErrCorruptLayer: a layer failed to decompress or is not a tar stream.
	ErrCorruptLayer = errors.New("corrupt layer")
	// ErrPathTraversal: a layer entry escapes the image root.
	ErrPathTraversal = errors.New("layer path traversal")
	// ErrTooLarge: the scan read more than Options.MaxBytes.
	ErrTooLarge = errors.New("image too large")
	// ErrTimeout: the scan ran longer than Options.Timeout.
	ErrTimeout = errors.New("scan timed out")
	// ErrBadTarget: the target names no valid image reference.
	ErrBadTarget = errors.New("bad scan target")
	// ErrNoDB: no vulnerability DB is available.
	ErrNoDB = errors.New("no vulnerability DB")
)

// Options configure a Scanner. Zero values take the defaults noted.
type Options struct {
	// CacheDir holds the layer-analysis cache (fanal/) and the DB (db/).
	CacheDir string
	// DBDir, when set, is used as the vulnerability DB as it is (never
	// downloaded); tests and benchmarks point it at a fixture DB.
	DBDir string
	// DBRepositories to download the DB from; empty means Trivy's defaults.
	DBRepositories []string
	// SkipDBUpdate never downloads the DB.
	SkipDBUpdate bool
	// DemoFallback builds and uses the built-in demo DB when there is no DB.
	DemoFallback bool
	// MaxBytes bounds the bytes (compressed plus uncompressed) one scan
	// reads; 0 means 12 GiB (a Windows Server Core base layer alone reads about 7 GB).
	MaxBytes int64
	// Timeout bounds one scan; 0 means 8 minutes.
	Timeout time.Duration
	// Parallel is the number of layers analysed at once; 0 means 2.
	Parallel int
	// Auth returns the credentials for a registry; nil or a nil result
	// means anonymous.
	Auth func(registry string) authn.Authenticator
	// Insecure reports registries reached over plain HTTP.
	Insecure func(registry string) bool
	// Transport for registry requests; nil means go-containerregistry's.
	Transport http.RoundTripper
	// Logger receives the scanner's own log lines.
	Logger zerolog.Logger
	// Now is the clock that decides whether the DB is stale; nil means the
	// system clock.
	Now func() time.Time
	// Windows is the Windows advisory data Windows images are matched
	// against; nil records every Windows image as unsupported for want of
	// it. RefreshDB refreshes it with the DB (SkipDBUpdate is about the
	// Trivy DB alone: the Windows data has its own source).
	Windows WindowsAdvisories
}

func (o *Options) defaults() {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 12 << 30
	}
	if o.Timeout <= 0 {
		o.Timeout = 8 * time.Minute
	}
	if o.Parallel <= 0 {
		o.Parallel = 2
	}
}

// Scanner scans images and matches inventories. It is safe for concurrent
// use; one process should hold one Scanner (Trivy's DB is process-wide).
type Scanner struct {
	opts  Options
	cache cache.Cache
	db    atomic.Pointer[DBInfo]
	log   zerolog.Logger

	refresh sync.Mutex

	winInfo    atomic.Pointer[WindowsDB] // what the last load or refresh found
	winFail    atomic.Pointer[string]    // why the last refresh got no data at all; "" when it did
	winRefresh sync.Mutex                // one Windows refresh at a time

	closeOnce sync.Once
}

var trivyLogOnce sync.Once

// New prepares the vulnerability DB (downloading or falling back to the demo
// DB as Options say) and opens the layer cache.
func New(ctx context.Context, o Options) (*Scanner, error) {
	o.defaults()
	if o.CacheDir == "" {
		return nil, errors.New("scanner: CacheDir is required")
	}
	// Trivy buffers its log lines until its logger is set up; without this
	// a long-running process would hold them forever.
	trivyLogOnce.Do(func() { trivylog.InitLogger(false, true) })
	if err := os.MkdirAll(o.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("scanner cache dir: %w", err)
	}
	dir, demo, _, err := prepareDB(ctx, o, o.Logger)
	if err != nil {
		return nil, err
	}
	info, err := readDBInfo(dir, demo)
	if err != nil {
		return nil, err
	}
	if err := openDB(dir); err != nil {
		return nil, err
	}
	c, err := cache.NewFSCache(filepath.Join(o.CacheDir, "layers"))
	if err != nil {
		_ = closeDB(dir)
		return nil, fmt.Errorf("open layer cache: %w", err)
	}
	s := &Scanner{opts: o, cache: c, log: o.Logger}
	s.db.Store(&info)
	return s, nil
}

// Close releases the layer cache and the DB.
func (s *Scanner) Close() error {
	var err error
	s.closeOnce.Do(func() {
		err = errors.Join(s.cache.Close(), closeDB(s.DB().Dir))
	})
	return err
}

// DB describes the vulnerability DB this scanner matches against, and the
// Windows advisory data as last loaded.
func (s *Scanner) DB() DBInfo {
	info := *s.db.Load()
	if w := s.winInfo.Load(); w != nil {
		info.Windows = *w
	}
	return info
}

// RefreshDB downloads a newer vulnerability DB when the one in use is stale
// (per Trivy's metadata and the Options) and switches to it; matches in
// flight finish on the old one first. A failed download keeps the DB in use,
// is logged, and is named in the returned DBInfo's DownloadError. It also
// refreshes the Windows advisory data, whose problems are in
// DBInfo.Windows and never fail the call. It returns the DB now in use.
func (s *Scanner) RefreshDB(ctx context.Context) (DBInfo, error) {
	info, err := s.refreshTrivyDB(ctx)
	if s.opts.Windows != nil {
		info.Windows = s.refreshWindows(ctx)
	}
	return info, err
}

// CurrentDB describes the DB in use and the Windows advisory data as
// stored now; it never fails on an open Scanner (a Windows data that cannot
// be read is a problem in DBInfo.Windows).
func (s *Scanner) CurrentDB(ctx context.Context) (DBInfo, error) {
	info := s.DB()
	_, w, err := s.loadWindows(ctx)
	if err != nil {
		w = WindowsDB{Stale: true, Problems: []string{err.Error()}}
	}
	info.Windows = w
	return info, nil
}

func (s *Scanner) refreshTrivyDB(ctx context.Context) (DBInfo, error) {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	cur := s.DB()
	if s.opts.DBDir != "" {
		return cur, nil
	}
	dir, demo, kept, err := prepareDB(ctx, s.opts, s.log)
	if err != nil {
		return cur, err
	}
	info, err := readDBInfo(dir, demo)
	if err != nil {
		return cur, err
	}
	if err := reopenDB(cur.Dir, dir); err != nil {
		return cur, err
	}
	s.db.Store(&info)
	if kept != nil {
		info.DownloadError = kept.Error()
	}
	return info, nil
}

// Target names the image to scan: a registry image by digest, or a local
// archive (Input).
type Target struct {
	Registry   string // login server, e.g. contoso.azurecr.io or localhost:5000
	Repository string
	Digest     string // sha256:…
	Tag        string // optional, for the summary
	Input      string // a `docker save` tar or an OCI layout dir; replaces the above
}

func (t Target) String() string {
	if t.Input != "" {
		return t.Input
	}
	return t.Registry + "/" + t.Repository + "@" + t.Digest
}

// Result is what a scan found. Times (FirstSeen, LastSeen, ScannedAt,
// PushedAt) are left for the caller, which owns the clock.
type Result struct {
	Image     model.Image
	Inventory model.Inventory
	Findings  []model.Finding
}

// Scan pulls (or opens) the image, analyses its layers (reusing cached
// layer analyses) and matches its packages against the DB.
func (s *Scanner) Scan(ctx context.Context, t Target) (*Result, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, s.opts.Timeout, fmt.Errorf("%w after %s", ErrTimeout, s.opts.Timeout))
	defer cancel()
	res, err := s.scan(ctx, t)
	if err != nil && ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrTimeout) {
		return nil, fmt.Errorf("scan %s: %w", t, context.Cause(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", t, err)
	}
	return res, nil
}

func (s *Scanner) scan(ctx context.Context, t Target) (*Result, error) {
	var src *source
	var err error
	if t.Input != "" {
		src, err = openLocal(t.Input)
	} else {
		if t.Registry == "" || t.Repository == "" || !model.ValidDigest(t.Digest) {
			return nil, fmt.Errorf("%w: want registry, repository and a sha256 digest, got %q", ErrBadTarget, t.String())
		}
		src, err = s.pullRemote(ctx, t)
	}
	if err != nil {
		return nil, err
	}
	defer src.Close()
	inv, err := s.analyse(ctx, src)
	if err != nil {
		return nil, err
	}
	img := model.Image{
		ID:         model.ImageID(src.digest),
		Digest:     src.digest,
		Registry:   t.Registry,
		Repository: t.Repository,
		MediaType:  src.mediaType,
		Platform:   src.platform,
	}
	if t.Tag != "" {
		img.Tags = []string{t.Tag}
	}
	if img.MediaType == "" {
		img.MediaType = mediaTypeOf(src.img)
	}
	m, err := s.Match(ctx, img, inv)
	if err != nil {
		return nil, err
	}
	return &Result{Image: m.Image, Inventory: inv, Findings: m.Findings}, nil
}

// analyse runs Trivy's image artifact over the guarded image and returns the
// package inventory; for a Windows image, with its identity (see
// windows.go).
func (s *Scanner) analyse(ctx context.Context, src *source) (model.Inventory, error) {
	cf, err := src.img.ConfigFile()
	if err != nil {
		return model.Inventory{}, fmt.Errorf("read image config: %w", err)
	}
	v := newVerdicts()
	gi := &guardedImage{Image: src.img, src: src, budget: &budget{limit: s.opts.MaxBytes}, verdicts: v}
	opt := artifact.Option{
		DisabledAnalyzers: disabledAnalyzers(),
		Parallel:          s.opts.Parallel,
		Offline:           true,
		NoProgress:        true,
	}
	windows := isWindowsConfig(cf)
	if windows {
		opt.WalkerOption = windowsWalker()
		if len(cf.RootFS.DiffIDs) > 0 {
			gi.base = &baseObserver{diffID: cf.RootFS.DiffIDs[0]}
		}
	}
	art, err := aimage.NewArtifact(gi, verifiedCache{ArtifactCache: s.cache, v: v, base: gi.base}, opt)
	if err != nil {
		return model.Inventory{}, fmt.Errorf("prepare analysis: %w", err)
	}
	ref, err := art.Inspect(ctx)
	if err != nil {
		return model.Inventory{}, fmt.Errorf("analyse layers: %w", err)
	}
	detail, err := applier.NewApplier(s.cache).ApplyLayers(ctx, ref.ID, ref.BlobIDs)
	if err != nil && !errors.Is(err, analyzer.ErrUnknownOS) && !errors.Is(err, analyzer.ErrNoPkgsDetected) {
		return model.Inventory{}, fmt.Errorf("merge layers: %w", err)
	}
	inv := inventoryFromDetail(detail)
	if !windows {
		return inv, nil
	}
	id, err := identifyWindows(ctx, gi, cf, detail)
	if err != nil {
		return model.Inventory{}, err
	}
	return windowsInventory(inv, id), nil
}

// disabledAnalyzers leaves the analyzers a vulnerability scan of an image
// needs, as `trivy image --scanners vuln` does.
func disabledAnalyzers() []analyzer.Type {
	d := slices.Clone(analyzer.TypeLockfiles)
	d = append(d, analyzer.TypeConfigFiles...)
	return append(d,
		analyzer.TypeApkCommand, analyzer.TypeSecret, analyzer.TypeLicenseFile,
		analyzer.TypeHistoryDockerfile, analyzer.TypeExecutable, analyzer.TypeRpmArchive,
		// Java archives need Trivy's separate Java DB, which is not managed here.
		analyzer.TypeJar,
	)
}
