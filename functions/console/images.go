package console

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

// severityOptions are the "at least" choices of severity filters.
var severityOptions = []option{{"critical", "Critical"}, {"high", "High or worse"}, {"medium", "Medium or worse"}, {"low", "Low or worse"}}

// minRank is the rank a severity filter value asks for (0 for "").
func minRank(v string) int {
	if v == "" {
		return 0
	}
	s, err := model.ParseSeverity(v)
	if err != nil {
		return 0
	}
	return s.Rank()
}

var yesNo = []option{{"yes", "yes"}, {"no", "no"}}

func matchYesNo(filter string, has bool) bool {
	return filter == "" || (filter == "yes") == has
}

type imagesPage struct {
	base
	List listPage
	Rows []*ImageRow
}

var imageList = listing[*ImageRow]{columns: imageColumns, sorts: imageSorts, def: "severity", defDesc: true, presorted: true,
	tie: func(a, b *ImageRow) int { return cmp.Compare(a.Digest, b.Digest) }}

var imageColumns = []column{
	{Label: "Image", Key: "name"}, {Label: "Status", Key: "status"}, {Label: "Highest", Key: "severity", Desc: true},
	{Label: "Critical", Key: "critical", Numeric: true}, {Label: "High", Key: "high", Numeric: true},
	{Label: "Medium", Key: "medium", Numeric: true}, {Label: "Low", Key: "low", Numeric: true},
	{Label: "Fixable", Key: "fixable", Numeric: true}, {Label: "KEV", Key: "kev", Numeric: true},
	{Label: "Running in", Key: "running", Numeric: true}, {Label: "Pushed", Key: "pushed", Numeric: true},
	{Label: "Scanned", Key: "scanned", Numeric: true},
}

var imageSorts = map[string]sorter[*ImageRow]{
	"name": func(a, b *ImageRow) int {
		return cmp.Or(cmp.Compare(a.Repository, b.Repository), cmp.Compare(a.Name(), b.Name()))
	},
	"status": func(a, b *ImageRow) int { return cmp.Compare(a.Status, b.Status) },
	"severity": func(a, b *ImageRow) int {
		return cmp.Or(cmp.Compare(a.MaxRank, b.MaxRank), cmp.Compare(a.Critical, b.Critical), cmp.Compare(a.High, b.High), cmp.Compare(a.Total, b.Total))
	},
	"critical": func(a, b *ImageRow) int { return cmp.Compare(a.Critical, b.Critical) },
	"high":     func(a, b *ImageRow) int { return cmp.Compare(a.High, b.High) },
	"medium":   func(a, b *ImageRow) int { return cmp.Compare(a.Medium, b.Medium) },
	"low":      func(a, b *ImageRow) int { return cmp.Compare(a.Low, b.Low) },
	"fixable":  func(a, b *ImageRow) int { return cmp.Compare(a.Fixable, b.Fixable) },
	"kev":      func(a, b *ImageRow) int { return cmp.Compare(a.KEV, b.KEV) },
	"running":  func(a, b *ImageRow) int { return cmp.Compare(len(a.Clusters), len(b.Clusters)) },
	"pushed":   func(a, b *ImageRow) int { return a.PushedAt.Compare(b.PushedAt) },
	"scanned":  func(a, b *ImageRow) int { return a.ScannedAt.Compare(b.ScannedAt) },
}

func (c *Console) images(r *request) (*rendered, error) {
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	var registries []string
	for _, img := range v.Images {
		if !slices.Contains(registries, img.Registry) {
			registries = append(registries, img.Registry)
		}
	}
	slices.Sort(registries)
	var highestOpts []option
	for _, b := range highestBuckets {
		highestOpts = append(highestOpts, option{b.key, b.label})
	}
	f := &form{q: r.q}
	search := f.text("q", "Search", "repository, tag or digest")
	registry := f.choice("registry", "Registry", options(registries...))
	status := f.choice("status", "Status", options(model.ImageActive, model.ImageDeleted, model.ImageUnsupported, model.ImageFailed))
	severity := f.choice("severity", "Severity", severityOptions)
	high := f.choice("highest", "Highest", highestOpts)
	running := f.choice("running", "Running", yesNo)
	fixable := f.choice("fixable", "Fix available", yesNo)
	kev := f.choice("kev", "Known exploited", yesNo)
	if f.err != nil {
		return nil, f.err
	}
	rank := minRank(severity)
	var rows []*ImageRow
	for _, img := range v.Images {
		if (registry != "" && img.Registry != registry) || (status != "" && img.Status != status) || img.MaxRank < rank ||
			(high != "" && highest(img) != high) || !matchYesNo(running, len(img.Clusters) > 0) ||
			!matchYesNo(fixable, img.Fixable > 0) || !matchYesNo(kev, img.KEV > 0) {
			continue
		}
		if search != "" && !contains(img.Registry+"/"+img.Repository+" "+strings.Join(img.Tags, " ")+" "+img.Digest, search) {
			continue
		}
		rows = append(rows, img)
	}
	page, lp, err := imageList.page(r.q, rows, f.fields)
	if err != nil {
		return nil, err
	}
	return &rendered{template: "images", data: &imagesPage{base: c.base(r, "images", "Images"), List: lp, Rows: page}}, nil
}

// imagePage is one image with one of its tabs.
type imagePage struct {
	base
	Image     model.Image
	Row       *ImageRow // nil when the view does not know it yet
	Tab       string
	List      listPage
	Findings  []model.Finding
	Packages  []packageRow
	History   []historyEvent
	Running   []Placement
	OpenTotal int
}

type packageRow struct {
	model.Package
	Type, Target string
	Vulns        int // open findings in it
}

// historyEvent is what one scan changed: findings that appeared, findings
// fixed.
type historyEvent struct {
	At              time.Time
	Appeared, Fixed int
	Examples        []string
	Pushed, Deleted bool
	LastScan        bool
	DBVersion       string
}

var findingList = listing[model.Finding]{columns: findingColumns, sorts: findingSorts, def: "severity", defDesc: true,
	tie: func(a, b model.Finding) int { return cmp.Compare(a.ID, b.ID) }}

var findingColumns = []column{
	{Label: "Vulnerability", Key: "vuln"}, {Label: "Severity", Key: "severity", Desc: true}, {Label: "CVSS", Key: "cvss", Numeric: true},
	{Label: "Package", Key: "package"}, {Label: "Installed"}, {Label: "Fixed in", Key: "fixed"}, {Label: "KEV", Key: "kev", Numeric: true},
	{Label: "Status", Key: "status"}, {Label: "First seen", Key: "first", Numeric: true},
}

var findingSorts = map[string]sorter[model.Finding]{
	"vuln": func(a, b model.Finding) int { return cmp.Compare(a.VulnID, b.VulnID) },
	"severity": func(a, b model.Finding) int {
		return cmp.Or(cmp.Compare(a.SeverityRank, b.SeverityRank), cmp.Compare(a.CVSSScore, b.CVSSScore))
	},
	"cvss":    func(a, b model.Finding) int { return cmp.Compare(a.CVSSScore, b.CVSSScore) },
	"package": func(a, b model.Finding) int { return cmp.Compare(a.PkgName, b.PkgName) },
	"fixed":   func(a, b model.Finding) int { return cmp.Compare(a.FixedVersion, b.FixedVersion) },
	"kev":     func(a, b model.Finding) int { return cmp.Compare(b2i(a.KnownExploited), b2i(b.KnownExploited)) },
	"status":  func(a, b model.Finding) int { return cmp.Compare(a.Status, b.Status) },
	"first":   func(a, b model.Finding) int { return a.FirstSeen.Compare(b.FirstSeen) },
}

var packageList = listing[packageRow]{columns: packageColumns, sorts: packageSorts, def: "name",
	tie: func(a, b packageRow) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Target+a.Path, b.Target+b.Path), cmp.Compare(a.Type, b.Type))
	}}

var packageColumns = []column{
	{Label: "Package", Key: "name"}, {Label: "Version"}, {Label: "Type", Key: "type"}, {Label: "Found in", Key: "target"},
	{Label: "Open findings", Key: "vulns", Numeric: true},
}

var packageSorts = map[string]sorter[packageRow]{
	"name":   func(a, b packageRow) int { return cmp.Compare(a.Name, b.Name) },
	"type":   func(a, b packageRow) int { return cmp.Compare(a.Type, b.Type) },
	"target": func(a, b packageRow) int { return cmp.Compare(a.Target+a.Path, b.Target+b.Path) },
	"vulns":  func(a, b packageRow) int { return cmp.Compare(a.Vulns, b.Vulns) },
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (c *Console) image(r *request) (*rendered, error) {
	digest := r.PathValue("digest")
	if !model.ValidDigest(digest) {
		return nil, notFound("The image " + digest)
	}
	img, err := vulnstore.GetImage(r.Context(), c.st, digest)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("The image " + digest)
	}
	if err != nil {
		return nil, err
	}
	p := &imagePage{base: c.base(r, "images", img.Repository), Image: img, Tab: r.q.get("tab")}
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	p.Row, p.Running = v.Image(digest), v.Running[digest]
	findings, err := vulnstore.Findings(r.Context(), c.st, digest)
	if err != nil {
		return nil, err
	}
	all := make([]model.Finding, 0, len(findings))
	open := map[string]int{}
	for _, f := range findings {
		all = append(all, f)
		if f.Status == model.FindingOpen {
			p.OpenTotal++
			open[f.PkgName]++
		}
	}
	switch p.Tab {
	case "", "findings":
		p.Tab = "findings"
		err = p.findings(r.q, all)
	case "packages":
		err = c.packages(r, p, open)
	case "history":
		p.History = history(img, all)
	case "running":
	default:
		return nil, badParam("tab", p.Tab)
	}
	if err != nil {
		return nil, err
	}
	return &rendered{template: "image", data: p}, nil
}

func (p *imagePage) findings(q *query, all []model.Finding) error {
	f := &form{q: q}
	search := f.text("q", "Search", "vulnerability or package")
	status := f.choice("status", "Status", []option{{"open", "open"}, {"resolved", "resolved"}, {"all", "all"}})
	// Open findings unless asked otherwise, so no "any": all is explicit.
	if status == "" {
		status = model.FindingOpen
	}
	f.fields[1].Value, f.fields[1].Options = status, f.fields[1].Options[1:]
	rank := minRank(f.choice("severity", "Severity", severityOptions))
	fixable := f.choice("fixable", "Fix available", yesNo)
	if f.err != nil {
		return f.err
	}
	var rows []model.Finding
	for _, x := range all {
		if (status != "all" && x.Status != status) || x.SeverityRank < rank || !matchYesNo(fixable, x.FixedVersion != "") ||
			(search != "" && !contains(x.VulnID+" "+x.PkgName+" "+strings.Join(x.Aliases, " "), search)) {
			continue
		}
		rows = append(rows, x)
	}
	var err error
	p.Findings, p.List, err = findingList.page(q, rows, f.fields)
	return err
}

func (c *Console) packages(r *request, p *imagePage, open map[string]int) error {
	inv, err := vulnstore.Inventory(r.Context(), c.st, p.Image.Digest)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	var types []string
	var all []packageRow
	for _, g := range inv.Groups {
		if !slices.Contains(types, g.Type) {
			types = append(types, g.Type)
		}
		for _, pk := range g.Packages {
			all = append(all, packageRow{Package: pk, Type: g.Type, Target: g.Target, Vulns: open[pk.Name]})
		}
	}
	slices.Sort(types)
	f := &form{q: r.q}
	search := f.text("q", "Search", "package name")
	typ := f.choice("type", "Type", options(types...))
	vulnerable := f.choice("vulnerable", "With findings", yesNo)
	if f.err != nil {
		return f.err
	}
	var rows []packageRow
	for _, pk := range all {
		if (typ != "" && pk.Type != typ) || !contains(pk.Name, search) || !matchYesNo(vulnerable, pk.Vulns > 0) {
			continue
		}
		rows = append(rows, pk)
	}
	p.Packages, p.List, err = packageList.page(r.q, rows, f.fields)
	return err
}

// history rebuilds what each scan of an image changed from its findings'
// first-seen and resolved times, newest first.
func history(img model.Image, findings []model.Finding) []historyEvent {
	byTime := map[time.Time]*historyEvent{}
	at := func(t time.Time) *historyEvent {
		t = t.UTC()
		e := byTime[t]
		if e == nil {
			e = &historyEvent{At: t}
			byTime[t] = e
		}
		return e
	}
	for _, f := range findings {
		e := at(f.FirstSeen)
		e.Appeared++
		if len(e.Examples) < 5 {
			e.Examples = append(e.Examples, f.VulnID)
		}
		if f.Status == model.FindingResolved && !f.ResolvedAt.IsZero() {
			at(f.ResolvedAt).Fixed++
		}
	}
	if !img.PushedAt.IsZero() {
		at(img.PushedAt).Pushed = true
	}
	if !img.ScannedAt.IsZero() {
		e := at(img.ScannedAt)
		e.LastScan, e.DBVersion = true, img.DBVersion
	}
	if !img.DeletedAt.IsZero() {
		at(img.DeletedAt).Deleted = true
	}
	out := make([]historyEvent, 0, len(byTime))
	for _, e := range byTime {
		slices.Sort(e.Examples)
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b historyEvent) int { return b.At.Compare(a.At) })
	return out
}
