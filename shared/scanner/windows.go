package scanner

// Windows images. Trivy assesses no Windows OS packages, so for an image
// whose config says os: windows the scanner
//
//   - analyses the layers with Trivy's language analysers as for any image.
//     A Windows layer holds the container's file system under Files/ (the
//     analysers match on file names, so NuGet, *.deps.json, npm and Python
//     packages are found there), registry hives under Hives/ and, in a base
//     layer, the Hyper-V utility VM's own Windows under UtilityVM/: Trivy is
//     told to skip those two, and package paths are recorded without the
//     Files/ prefix, as the container sees them under C:\.
//   - tells what the image runs with package windowsimage: release and
//     revision from os.version; the base (Server Core or Nano Server) from
//     the base.name annotation or label, or else from the paths of the base
//     layer, observed while Trivy reads it and kept with the layer's
//     analysis in the layer cache, so a cached base is never read again.
//   - records the identity in the inventory (a package group of type
//     windows) and, in Match, matches it against the Windows advisory data
//     (package msrc) beside Trivy's matching of the language packages.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/fanal/walker"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/msrc"
	"github.com/palisade-sec/palisade/shared/windowsimage"
)

// WindowsAdvisories is the Windows advisory data Windows images are matched
// against; *msrc.Source is the implementation. Load reads what is stored;
// Refresh downloads what changed first.
type WindowsAdvisories interface {
	Load(ctx context.Context) (*msrc.Index, msrc.Status, error)
	Refresh(ctx context.Context) (*msrc.Index, msrc.Status, error)
}

// WindowsDB describes the Windows advisory data in use.
type WindowsDB struct {
	// Version identifies the data (changes with every month added, revised
	// or dropped); "" when there is none.
	Version     string
	Months      []string // the monthly documents held, oldest first
	RefreshedAt time.Time
	// Stale: not refreshed for the source's max age, or a month of its
	// window is missing or failed; Problems says what.
	Stale    bool
	Problems []string
}

// noWindowsData stands for the Windows data version when there is none.
const noWindowsData = "msrc:none"

// IsWindows reports whether img is a Windows image: matched against the
// Windows advisory data as well as Trivy's DB.
func IsWindows(img model.Image) bool {
	return img.OSFamily == windowsimage.OSFamily || strings.HasPrefix(img.Platform, "windows/")
}

// VersionFor is the data version a match of img records: the Trivy DB's,
// and for a Windows image the Windows data's too, so that a new month of
// Windows advisories makes a rescan match Windows images again while other
// images are skipped as already matched.
func (d DBInfo) VersionFor(img model.Image) string {
	if !IsWindows(img) {
		return d.Version
	}
	return d.Version + "+" + cmp.Or(d.Windows.Version, noWindowsData)
}

// loadWindows reads the Windows data from the store. No data at all is not
// an error: the index is nil and the info says why.
func (s *Scanner) loadWindows(ctx context.Context) (*msrc.Index, WindowsDB, error) {
	if s.opts.Windows == nil {
		return nil, WindowsDB{}, nil
	}
	ix, st, err := s.opts.Windows.Load(ctx)
	if err != nil && !errors.Is(err, msrc.ErrNoData) {
		return nil, WindowsDB{}, fmt.Errorf("load Windows advisory data: %w", err)
	}
	info := windowsInfo(ix, st)
	s.winInfo.Store(&info)
	return ix, info, nil
}

func windowsInfo(ix *msrc.Index, st msrc.Status) WindowsDB {
	info := WindowsDB{RefreshedAt: st.RefreshedAt, Stale: st.Stale, Problems: st.Problems}
	if ix != nil {
		info.Version, info.Months = ix.Version(), ix.Months()
	}
	return info
}

// PrepareWindows makes sure there is Windows advisory data to match
// against: when none is stored, or it is stale, it refreshes it. Scans
// never download it themselves, so that no scan waits on MSRC: the handler
// prepares it in the background when it starts, the DB lifecycle
// (RefreshDB) keeps it current, and `palisade scan` prepares it when it
// meets a Windows image. It returns what is held.
func (s *Scanner) PrepareWindows(ctx context.Context) WindowsDB {
	_, info, err := s.loadWindows(ctx)
	switch {
	case err != nil:
		return WindowsDB{Stale: true, Problems: []string{err.Error()}}
	case s.opts.Windows == nil || (info.Version != "" && !info.Stale):
		return info
	}
	return s.refreshWindows(ctx)
}

// refreshWindows downloads what changed in the Windows data and returns
// what is held; its problems are logged and returned, never an error.
func (s *Scanner) refreshWindows(ctx context.Context) WindowsDB {
	s.winRefresh.Lock()
	defer s.winRefresh.Unlock()
	ix, st, err := s.opts.Windows.Refresh(ctx)
	info := windowsInfo(ix, st)
	fail := ""
	switch {
	case errors.Is(err, msrc.ErrNoData):
		fail = cmp.Or(strings.Join(st.Problems, "; "), err.Error())
		s.log.Error().Err(err).
			Msg("NO WINDOWS ADVISORY DATA: MSRC could not be reached or gave nothing usable; Windows images are recorded as unsupported, not clean, until it does")
	case err != nil:
		info.Stale, info.Problems = true, append(info.Problems, err.Error())
		s.log.Error().Err(err).Msg("Windows advisory data could not be refreshed")
	case len(st.Problems) > 0:
		s.log.Warn().Str("windows_data", info.Version).Strs("problems", st.Problems).Strs("downloaded", st.Downloaded).
			Msg("Windows advisory data refreshed with problems; the last good data is kept where a month failed")
	default:
		s.log.Info().Str("windows_data", info.Version).Strs("downloaded", st.Downloaded).Strs("months", info.Months).
			Msg("Windows advisory data refreshed")
	}
	s.winFail.Store(&fail)
	if err == nil || errors.Is(err, msrc.ErrNoData) {
		s.winInfo.Store(&info)
	}
	return info
}

// noWindowsDataReason says why an image cannot be matched for want of data.
func (s *Scanner) noWindowsDataReason(info WindowsDB) string {
	if f := s.winFail.Load(); f != nil && *f != "" {
		return "no Windows advisory data (MSRC unreachable): " + *f
	}
	if s.opts.Windows == nil {
		return "no Windows advisory data: no source is configured"
	}
	return "no Windows advisory data: " + cmp.Or(strings.Join(info.Problems, "; "), "none is stored")
}

// windowsMatch is the Windows half of matching an inventory.
type windowsMatch struct {
	rest     model.Inventory // the inventory without the Windows group, for Trivy
	packages int
	os       string
	info     WindowsDB
	why      string // the image cannot be assessed: why
	found    []msrc.Finding
}

// matchWindows matches the Windows identity recorded in inv against the
// Windows data; it returns nil for images that are not Windows images.
func (s *Scanner) matchWindows(ctx context.Context, img model.Image, inv model.Inventory) (*windowsMatch, error) {
	id, recorded := windowsimage.FromInventory(inv)
	if !recorded && !IsWindows(img) {
		return nil, nil
	}
	ix, info, err := s.loadWindows(ctx)
	if err != nil {
		return nil, err
	}
	w := &windowsMatch{rest: inv, packages: inv.PackageCount(), os: windowsOS(id), info: info}
	w.rest.OSFamily, w.rest.OSName, w.rest.Groups = "", "", nil
	for _, g := range inv.Groups {
		if g.Type != windowsimage.PkgType {
			w.rest.Groups = append(w.rest.Groups, g)
		}
	}
	switch {
	case !recorded:
		w.why = "scanned before Windows images were assessed: the stored inventory has no Windows identity; push the image again to assess it"
	case ix == nil:
		w.why = s.noWindowsDataReason(info)
	default:
		if w.found, err = ix.Match(id); err != nil {
			w.why = err.Error()
		}
	}
	return w, nil
}

// apply completes the image summary and adds the Windows findings to the
// findings of its language packages.
func (w *windowsMatch) apply(img *model.Image, findings []model.Finding) []model.Finding {
	img.OSFamily, img.OS, img.Packages = windowsimage.OSFamily, w.os, w.packages
	img.DBVersion = DBInfo{Version: img.DBVersion, Windows: w.info}.VersionFor(*img)
	if w.why != "" {
		img.Status, img.Error = model.ImageUnsupported, w.why
	}
	for _, f := range w.found {
		findings = append(findings, f.Model(*img))
	}
	sortFindings(findings)
	return findings
}

// windowsOS names what the image runs: "Windows Server 2022 Server Core
// 10.0.20348.2340".
func windowsOS(id windowsimage.Identity) string {
	name := cmp.Or(id.PackageName(), "Windows")
	return strings.TrimSpace(name + " " + id.OSVersion)
}

// isWindowsConfig reports whether an image config says os: windows.
func isWindowsConfig(cf *v1.ConfigFile) bool { return strings.EqualFold(cf.OS, "windows") }

// windowsWalker skips what is not the container's file system.
func windowsWalker() walker.Option {
	return walker.Option{
		SkipDirs:  []string{"Hives", "UtilityVM"},
		SkipFiles: []string{"Hives/**", "UtilityVM/**"},
	}
}

// windowsFiles is where a Windows layer holds the container's file system.
const windowsFiles = "Files/"

// windowsInventory records the identity in the inventory and the language
// packages' paths as the container sees them.
func windowsInventory(inv model.Inventory, id windowsimage.Identity) model.Inventory {
	out := model.Inventory{OSFamily: windowsimage.OSFamily, OSName: id.OSVersion, Groups: []model.PackageGroup{id.Group()}}
	for _, g := range inv.Groups {
		g.Target = strings.TrimPrefix(g.Target, windowsFiles)
		for i := range g.Packages {
			g.Packages[i].Path = strings.TrimPrefix(g.Packages[i].Path, windowsFiles)
		}
		out.Groups = append(out.Groups, g)
	}
	return out
}

// windowsBaseResource is the type of the custom resource that keeps what a
// base layer's paths showed with the layer's analysis in the cache.
const windowsBaseResource = "palisade.windows-base"

// baseVerdict is what the paths of a base layer showed.
type baseVerdict struct {
	Edition     windowsimage.Edition `json:"edition,omitempty"`
	Evidence    string               `json:"evidence,omitempty"`
	Unsupported string               `json:"unsupported,omitempty"`
}

// baseObserver watches the paths of a Windows image's base layer as the
// layer's tar stream is checked.
type baseObserver struct {
	diffID v1.Hash
	mu     sync.Mutex
	d      windowsimage.BaseDetector
}

func (b *baseObserver) observe(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.d.Observe(name)
}

// resource is the verdict as a custom resource of the layer's analysis. The
// data is a JSON string, so that it reads back the same from the cache.
func (b *baseObserver) resource() ftypes.CustomResource {
	b.mu.Lock()
	defer b.mu.Unlock()
	var v baseVerdict
	v.Edition, v.Evidence, v.Unsupported = b.d.Result()
	data, _ := json.Marshal(v) // a baseVerdict always encodes
	return ftypes.CustomResource{Type: windowsBaseResource, FilePath: verdictPath(b.diffID), Data: string(data)}
}

// verdictPath keys a layer's verdict by the layer: a layer that is the base
// of one image can be another layer of the next, and the merged analysis
// of an image holds the verdicts of all its layers.
func verdictPath(diffID v1.Hash) string { return "palisade/windows-base/" + diffID.String() }

// baseFromDetail finds the verdict on the base layer in the merged analysis.
func baseFromDetail(d ftypes.ArtifactDetail, base v1.Hash) (baseVerdict, bool) {
	for _, r := range d.CustomResources {
		s, ok := r.Data.(string)
		if r.Type != windowsBaseResource || r.FilePath != verdictPath(base) || !ok {
			continue
		}
		var v baseVerdict
		if json.Unmarshal([]byte(s), &v) == nil {
			return v, true
		}
	}
	return baseVerdict{}, false
}

// identifyWindows tells what a Windows image runs: from its config and
// manifest, else from the verdict on its base layer's paths, else (a base
// layer analysed without one) by reading the base layer.
func identifyWindows(ctx context.Context, gi *guardedImage, cf *v1.ConfigFile, detail ftypes.ArtifactDetail) (windowsimage.Identity, error) {
	var annotations map[string]string
	if m, err := gi.Manifest(); err == nil {
		annotations = m.Annotations
	}
	id := windowsimage.FromConfig(cf, annotations)
	if !id.Supported() || id.Edition != "" {
		return id, nil
	}
	if len(cf.RootFS.DiffIDs) > 0 {
		if v, ok := baseFromDetail(detail, cf.RootFS.DiffIDs[0]); ok {
			id.Edition, id.Evidence, id.Unsupported = v.Edition, v.Evidence, v.Unsupported
			return id, nil
		}
	}
	id, err := windowsimage.Identify(ctx, gi, windowsimage.Options{})
	if err != nil {
		return id, fmt.Errorf("identify the Windows image: %w", err)
	}
	return id, nil
}
