package scanner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/package-url/packageurl-go"

	trivydb "github.com/aquasecurity/trivy-db/pkg/db"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	ospkgDetector "github.com/aquasecurity/trivy/pkg/detector/ospkg"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/scan/langpkg"
	"github.com/aquasecurity/trivy/pkg/scan/local"
	"github.com/aquasecurity/trivy/pkg/scan/ospkg"
	"github.com/aquasecurity/trivy/pkg/types"
	"github.com/aquasecurity/trivy/pkg/vulnerability"

	"github.com/palisade-sec/palisade/shared/model"
)

// Match is what matching an inventory against the DB found.
type Match struct {
	// Image is the given summary with OS, Status (active or unsupported),
	// Error, DBVersion, DemoData, Counts and Packages filled in.
	Image model.Image
	// Findings are open findings, sorted by severity then id, with
	// FirstSeen/LastSeen left zero.
	Findings []model.Finding
}

// Match matches a package inventory against the vulnerability DB: the cheap
// entry point rescans use, and the last step of Scan. It reads no layer and
// touches no registry.
func (s *Scanner) Match(ctx context.Context, img model.Image, inv model.Inventory) (*Match, error) {
	win, err := s.matchWindows(ctx, img, inv)
	if err != nil {
		return nil, err
	}
	if win != nil {
		inv = win.rest
	}
	target := scanTarget(img.Digest, inv)
	img.OSFamily, img.OS = inv.OSFamily, strings.TrimSpace(inv.OSFamily+" "+inv.OSName)
	img.Packages = inv.PackageCount()
	dbGuard.RLock()
	defer dbGuard.RUnlock()
	db := s.DB()
	img.DBVersion, img.DemoData = db.Version, db.Demo
	img.Status, img.Error = model.ImageActive, ""
	if why := unsupported(target, inv); why != "" && win == nil {
		img.Status, img.Error = model.ImageUnsupported, why
	}

	svc := local.NewService(nil, ospkg.NewScanner(), langpkg.NewScanner(), vulnerability.NewClient(trivydb.Config{}))
	results, _, err := svc.ScanTarget(ctx, target, types.ScanOptions{
		PkgTypes:            []string{types.PkgTypeOS, types.PkgTypeLibrary},
		PkgRelationships:    ftypes.Relationships,
		Scanners:            types.Scanners{types.VulnerabilityScanner},
		VulnSeveritySources: []dbtypes.SourceID{"auto"},
	})
	if err != nil {
		return nil, fmt.Errorf("match %d packages of %s: %w", img.Packages, img.Digest, err)
	}
	findings := toFindings(img, inv, results)
	if win != nil {
		findings = win.apply(&img, findings)
	}
	img.Counts, img.MaxRank = model.Counts{}, 0
	for _, f := range findings {
		img.Counts[f.Severity]++
		img.MaxRank = max(img.MaxRank, f.SeverityRank)
	}
	return &Match{Image: img, Findings: findings}, nil
}

// unsupported explains why an inventory cannot be assessed, or is "".
func unsupported(target types.ScanTarget, inv model.Inventory) string {
	langs := false
	for _, g := range inv.Groups {
		if g.Class == classLang && len(g.Packages) > 0 {
			langs = true
		}
	}
	if !target.OS.Detected() {
		if langs {
			return ""
		}
		return "no supported operating system or package manifest was detected"
	}
	if !target.OS.Family.HasOSPackages() {
		return ""
	}
	if _, err := ospkgDetector.NewDetector(target); errors.Is(err, ospkgDetector.ErrUnsupportedOS) {
		return fmt.Sprintf("operating system %s %s is not supported by the vulnerability scanner", inv.OSFamily, inv.OSName)
	}
	return ""
}

const (
	classOS   = "os-pkgs"
	classLang = "lang-pkgs"
)

// inventoryFromDetail keeps what matching needs from Trivy's merged layers.
// Development-only dependencies are left out, as Trivy leaves them out of
// its results.
func inventoryFromDetail(d ftypes.ArtifactDetail) model.Inventory {
	inv := model.Inventory{OSFamily: string(d.OS.Family), OSName: d.OS.Name, Groups: []model.PackageGroup{}}
	if len(d.Packages) > 0 {
		g := model.PackageGroup{Type: string(d.OS.Family), Class: classOS}
		for _, p := range d.Packages {
			g.Packages = append(g.Packages, fromPkg(p))
		}
		inv.Groups = append(inv.Groups, g)
	}
	for _, app := range d.Applications {
		g := model.PackageGroup{Type: string(app.Type), Class: classLang, Target: app.FilePath}
		for _, p := range app.Packages {
			if p.Dev {
				continue
			}
			g.Packages = append(g.Packages, fromPkg(p))
		}
		if len(g.Packages) > 0 {
			inv.Groups = append(inv.Groups, g)
		}
	}
	return inv
}

func fromPkg(p ftypes.Package) model.Package {
	mp := model.Package{
		Name: p.Name, Version: p.Version, Release: p.Release, Epoch: p.Epoch, Arch: p.Arch,
		SrcName: p.SrcName, SrcVersion: p.SrcVersion, SrcRelease: p.SrcRelease, SrcEpoch: p.SrcEpoch,
		Path: p.FilePath, Layer: p.Layer.DiffID,
	}
	if p.Identifier.PURL != nil {
		mp.PURL = p.Identifier.PURL.String()
	}
	return mp
}

func toPkg(p model.Package) ftypes.Package {
	tp := ftypes.Package{
		Name: p.Name, Version: p.Version, Release: p.Release, Epoch: p.Epoch, Arch: p.Arch,
		SrcName: p.SrcName, SrcVersion: p.SrcVersion, SrcRelease: p.SrcRelease, SrcEpoch: p.SrcEpoch,
		FilePath: p.Path, Layer: ftypes.Layer{DiffID: p.Layer},
	}
	if p.PURL != "" {
		if u, err := packageurl.FromString(p.PURL); err == nil {
			tp.Identifier.PURL = &u
		}
	}
	tp.ID = p.Name + "@" + p.Version
	return tp
}

// scanTarget rebuilds Trivy's view of an image from a stored inventory.
func scanTarget(name string, inv model.Inventory) types.ScanTarget {
	t := types.ScanTarget{Name: name, OS: ftypes.OS{Family: ftypes.OSType(inv.OSFamily), Name: inv.OSName}}
	for _, g := range inv.Groups {
		switch g.Class {
		case classOS:
			for _, p := range g.Packages {
				t.Packages = append(t.Packages, toPkg(p))
			}
		case classLang:
			app := ftypes.Application{Type: ftypes.LangType(g.Type), FilePath: g.Target}
			for _, p := range g.Packages {
				app.Packages = append(app.Packages, toPkg(p))
			}
			t.Applications = append(t.Applications, app)
		}
	}
	return t
}

// toFindings turns Trivy's results into findings, one per (vulnerability,
// package, path, installed version).
func toFindings(img model.Image, inv model.Inventory, results types.Results) []model.Finding {
	src := map[string]string{} // os package name → source package
	for _, g := range inv.Groups {
		if g.Class == classOS {
			for _, p := range g.Packages {
				if p.SrcName != "" && p.SrcName != p.Name {
					src[p.Name] = p.SrcName
				}
			}
		}
	}
	seen := map[string]bool{}
	var out []model.Finding
	for _, r := range results {
		for _, v := range r.Vulnerabilities {
			pkgPath := v.PkgPath
			if pkgPath == "" && r.Class == types.ClassLangPkg {
				pkgPath = r.Target
			}
			id := model.FindingID(img.Digest, v.VulnerabilityID, v.PkgName, pkgPath, v.InstalledVersion)
			if seen[id] {
				continue
			}
			seen[id] = true
			out = append(out, toFinding(id, img, v, string(r.Type), pkgPath, src[v.PkgName]))
		}
	}
	sortFindings(out)
	return out
}

// sortFindings orders findings by severity, then vulnerability, then id.
func sortFindings(fs []model.Finding) {
	sort.Slice(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.SeverityRank != b.SeverityRank {
			return a.SeverityRank > b.SeverityRank
		}
		if a.VulnID != b.VulnID {
			return a.VulnID < b.VulnID
		}
		return a.ID < b.ID
	})
}

func toFinding(id string, img model.Image, v types.DetectedVulnerability, pkgType, pkgPath, srcName string) model.Finding {
	rated := v.Severity //nolint:staticcheck // the severity Trivy selected across its sources; SeveritySource names which
	sev, err := model.ParseSeverity(rated)
	if err != nil || rated == "" {
		sev = model.SeverityUnknown
	}
	status := v.Status
	if status == dbtypes.StatusUnknown && v.FixedVersion != "" {
		status = dbtypes.StatusFixed
	}
	f := model.Finding{
		ID:               id,
		Digest:           img.Digest,
		Registry:         img.Registry,
		Repository:       img.Repository,
		VulnID:           v.VulnerabilityID,
		Aliases:          slices.Clone(v.VendorIDs),
		PkgName:          v.PkgName,
		PkgType:          pkgType,
		PkgPath:          pkgPath,
		SrcName:          srcName,
		InstalledVersion: v.InstalledVersion,
		FixedVersion:     v.FixedVersion,
		FixStatus:        status.String(),
		Severity:         sev,
		SeveritySource:   string(v.SeveritySource),
		CWEs:             slices.Clone(v.CweIDs),
		Title:            v.Title,
		Description:      v.Description,
		References:       slices.Clone(v.References),
		PrimaryURL:       v.PrimaryURL,
		Status:           model.FindingOpen,
		SeverityRank:     sev.Rank(),
		DemoData:         img.DemoData,
	}
	if status == dbtypes.StatusUnknown {
		f.FixStatus = ""
	}
	f.CVSSScore, f.CVSSVector = pickCVSS(v.CVSS, v.SeveritySource)
	if v.PublishedDate != nil {
		f.PublishedAt = v.PublishedDate.UTC()
	}
	if v.LastModifiedDate != nil {
		f.ModifiedAt = v.LastModifiedDate.UTC()
	}
	for _, ref := range v.References {
		l := strings.ToLower(ref)
		switch {
		case strings.Contains(l, "cisa.gov/known-exploited-vulnerabilities"):
			f.KnownExploited = true
			f.ExploitRefs = append(f.ExploitRefs, ref)
		case strings.Contains(l, "exploit-db.com") || strings.Contains(l, "packetstormsecurity") ||
			strings.Contains(l, "/exploits/") || strings.Contains(l, "exploit.php"):
			f.ExploitRefs = append(f.ExploitRefs, ref)
		}
	}
	f.Remediation = remediation(f, status)
	return f
}

// pickCVSS prefers the CVSS v3 rating of the severity's own source, then
// NVD's, then any other source's in name order.
func pickCVSS(c dbtypes.VendorCVSS, source dbtypes.SourceID) (float64, string) {
	if v, ok := c[source]; ok && v.V3Score > 0 {
		return v.V3Score, v.V3Vector
	}
	if v, ok := c["nvd"]; ok && v.V3Score > 0 {
		return v.V3Score, v.V3Vector
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := c[dbtypes.SourceID(k)]; v.V3Score > 0 {
			return v.V3Score, v.V3Vector
		}
	}
	return 0, ""
}

// remediation is the sentence a user acts on.
func remediation(f model.Finding, status dbtypes.Status) string {
	pkg := f.PkgName
	if f.SrcName != "" {
		pkg = fmt.Sprintf("%s (source package %s)", f.PkgName, f.SrcName)
	}
	switch {
	case f.FixedVersion != "":
		return fmt.Sprintf("Upgrade %s to %s or later and rebuild the image.", pkg, f.FixedVersion)
	case status == dbtypes.StatusWillNotFix:
		return fmt.Sprintf("The vendor will not fix %s in %s; remove the package or mitigate the vulnerability.", f.VulnID, pkg)
	case status == dbtypes.StatusEndOfLife:
		return fmt.Sprintf("%s is end of life and gets no fix for %s; move to a supported release.", pkg, f.VulnID)
	}
	return fmt.Sprintf("No fix is available yet for %s in %s; watch for an update or mitigate the vulnerability.", f.VulnID, pkg)
}
