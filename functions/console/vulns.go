package console

import (
	"cmp"
	"slices"
	"strings"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/vulnstore"
)

type vulnsPage struct {
	base
	List         listPage
	Rows         []*VulnRow
	Unsummarized int
}

var vulnList = listing[*VulnRow]{columns: vulnColumns, sorts: vulnSorts, def: "images", defDesc: true, presorted: true,
	tie: func(a, b *VulnRow) int { return cmp.Compare(a.ID, b.ID) }}

var vulnColumns = []column{
	{Label: "Vulnerability", Key: "id"}, {Label: "Severity", Key: "severity", Desc: true},
	{Label: "Images", Key: "images", Numeric: true}, {Label: "Running", Key: "running", Numeric: true},
	{Label: "Fix available", Key: "fixable", Numeric: true}, {Label: "KEV", Key: "kev", Numeric: true}, {Label: "Packages"},
}

var vulnSorts = map[string]sorter[*VulnRow]{
	"id": func(a, b *VulnRow) int { return cmp.Compare(a.ID, b.ID) },
	"severity": func(a, b *VulnRow) int {
		return cmp.Or(cmp.Compare(a.Rank, b.Rank), cmp.Compare(len(a.Digests), len(b.Digests)))
	},
	"images": func(a, b *VulnRow) int {
		return cmp.Or(cmp.Compare(len(a.Digests), len(b.Digests)), cmp.Compare(a.Rank, b.Rank))
	},
	"running": func(a, b *VulnRow) int { return cmp.Compare(a.Running, b.Running) },
	"fixable": func(a, b *VulnRow) int { return cmp.Compare(b2i(a.Fixable), b2i(b.Fixable)) },
	"kev":     func(a, b *VulnRow) int { return cmp.Compare(b2i(a.KEV), b2i(b.KEV)) },
}

func (c *Console) vulns(r *request) (*rendered, error) {
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	f := &form{q: r.q}
	search := f.text("q", "Search", "vulnerability id or package")
	severity := f.choice("severity", "Severity", severityOptions)
	fixable := f.choice("fixable", "Fix available", yesNo)
	kev := f.choice("kev", "Known exploited", yesNo)
	running := f.choice("running", "Running", yesNo)
	if f.err != nil {
		return nil, f.err
	}
	rank := minRank(severity)
	var rows []*VulnRow
	for _, row := range v.Vulns {
		if row.Rank < rank || !matchYesNo(fixable, row.Fixable) || !matchYesNo(kev, row.KEV) || !matchYesNo(running, row.Running > 0) ||
			(search != "" && !contains(row.ID+" "+strings.Join(row.Packages, " "), search)) {
			continue
		}
		rows = append(rows, row)
	}
	page, lp, err := vulnList.page(r.q, rows, f.fields)
	if err != nil {
		return nil, err
	}
	return &rendered{template: "vulns", data: &vulnsPage{base: c.base(r, "vulns", "Vulnerabilities"), List: lp, Rows: page, Unsummarized: v.Unsummarized}}, nil
}

// vulnPage is one vulnerability: what it is (from one of its findings),
// the images it is open in and where they run.
type vulnPage struct {
	base
	ID       string
	Row      *VulnRow
	Finding  *model.Finding // a finding of it, for its description
	List     listPage
	Images   []vulnImage
	Places   []vulnPlace
	MorePlcs int
}

// vulnImage is an image the vulnerability is open in, with its findings
// of it there (read for the images of the page shown).
type vulnImage struct {
	Image    *ImageRow
	Findings []model.Finding
}

type vulnPlace struct {
	Cluster, Workload string
	Image             *ImageRow
}

// maxPlaces bounds the workloads the page lists.
const maxPlaces = 50

// vulnImageList pages a vulnerability's images by twenty-five: each row
// reads the image's findings of the vulnerability.
var vulnImageList = listing[*ImageRow]{columns: vulnImageColumns, def: "severity", defDesc: true, size: 25,
	sorts: map[string]sorter[*ImageRow]{"name": imageSorts["name"], "severity": imageSorts["severity"], "running": imageSorts["running"], "pushed": imageSorts["pushed"]},
	tie:   func(a, b *ImageRow) int { return cmp.Compare(a.Digest, b.Digest) }}

var vulnImageColumns = []column{
	{Label: "Image", Key: "name"}, {Label: "Package"}, {Label: "Installed"}, {Label: "Fixed in"},
	{Label: "Image highest", Key: "severity", Desc: true}, {Label: "Running in", Key: "running", Numeric: true},
	{Label: "Pushed", Key: "pushed", Numeric: true},
}

func (c *Console) vuln(r *request) (*rendered, error) {
	id := r.PathValue("id")
	v, err := c.views.get(r.Context())
	if err != nil {
		return nil, err
	}
	row := v.Vuln(id)
	if row == nil {
		return nil, notFound("The vulnerability " + id + " (open in an image)")
	}
	p := &vulnPage{base: c.base(r, "vulns", id), ID: id, Row: row}
	f := &form{q: r.q}
	search := f.text("q", "Search", "repository or tag")
	running := f.choice("running", "Running", yesNo)
	if f.err != nil {
		return nil, f.err
	}
	var imgs []*ImageRow
	for _, d := range row.Digests {
		img := v.Image(d)
		if img == nil || !matchYesNo(running, len(img.Clusters) > 0) || !contains(img.Name()+" "+strings.Join(img.Tags, " "), search) {
			continue
		}
		imgs = append(imgs, img)
	}
	page, lp, err := vulnImageList.page(r.q, imgs, f.fields)
	if err != nil {
		return nil, err
	}
	p.List = lp
	for _, img := range page {
		l, err := vulnstore.ListFindings(r.Context(), c.st, img.Digest, vulnstore.FindingFilter{Status: model.FindingOpen, VulnID: id}, cursorAll)
		if err != nil {
			return nil, err
		}
		slices.SortFunc(l.Items, func(a, b model.Finding) int { return cmp.Compare(a.PkgName, b.PkgName) })
		if p.Finding == nil && len(l.Items) > 0 {
			f := l.Items[0]
			p.Finding = &f
		}
		p.Images = append(p.Images, vulnImage{Image: img, Findings: l.Items})
	}
	if p.Finding == nil && len(row.Digests) > 0 {
		l, err := vulnstore.ListFindings(r.Context(), c.st, row.Digests[0], vulnstore.FindingFilter{VulnID: id}, cursorAll)
		if err != nil {
			return nil, err
		}
		if len(l.Items) > 0 {
			p.Finding = &l.Items[0]
		}
	}
	for _, d := range row.Digests {
		for _, pl := range v.Running[d] {
			for _, w := range pl.Workloads {
				if len(p.Places) == maxPlaces {
					p.MorePlcs++
					continue
				}
				p.Places = append(p.Places, vulnPlace{Cluster: pl.Cluster, Workload: w, Image: v.Image(d)})
			}
		}
	}
	slices.SortFunc(p.Places, func(a, b vulnPlace) int {
		return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Workload, b.Workload))
	})
	return &rendered{template: "vuln", data: p}, nil
}
