package vex

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	openvex "github.com/openvex/go-vex/pkg/vex"
	"github.com/package-url/packageurl-go"

	"github.com/palisade-sec/palisade/shared/model"
)

// Statuses of a statement (OpenVEX's).
const (
	NotAffected        = "not_affected"
	Fixed              = "fixed"
	Affected           = "affected"
	UnderInvestigation = "under_investigation"
)

// Document formats.
const (
	FormatOpenVEX   = "openvex"
	FormatCycloneDX = "cyclonedx"
)

// MaxDocumentBytes bounds a document read from the API, a file or the
// folder.
const MaxDocumentBytes = 8 << 20

// ErrInvalid wraps every reason a document is refused.
var ErrInvalid = errors.New("invalid VEX document")

// Document is a VEX document as Palisade keeps it: its statements in one
// form whatever the format.
type Document struct {
	// ID is the document's own id (OpenVEX @id, CycloneDX serialNumber),
	// or the hash of its content when it has none.
	ID     string `json:"id"`
	Format string `json:"format"`
	// Source says where it came from: "api" or the file's name in the
	// folder ("dir:NAME").
	Source     string      `json:"source,omitempty"`
	Timestamp  time.Time   `json:"timestamp,omitzero"`
	Statements []Statement `json:"statements"`
	// Ignored are products that cannot be applied, with the reason.
	Ignored []string `json:"ignored,omitempty"`
	// Hash is the SHA-256 of the document's bytes.
	Hash string `json:"hash"`
}

// Statement is one (vulnerability, products, status) statement.
type Statement struct {
	Vulnerability string    `json:"vulnerability"`
	Aliases       []string  `json:"aliases,omitempty"`
	Products      []Product `json:"products"`
	Status        string    `json:"status"`
	Justification string    `json:"justification,omitempty"`
	Timestamp     time.Time `json:"timestamp,omitzero"`
}

// Product is what a statement applies to: images (by digest, or every
// digest of a repository; neither means every image) and, optionally,
// only findings of some packages in them.
type Product struct {
	Digest     string       `json:"digest,omitempty"`
	Repository string       `json:"repository,omitempty"` // REGISTRY/REPOSITORY
	Packages   []PackageRef `json:"packages,omitempty"`
}

// PackageRef names a package: its name as findings carry it and, when
// given, its version.
type PackageRef struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// IDs returns the statement's vulnerability ids: its name and aliases.
func (s Statement) IDs() []string { return append([]string{s.Vulnerability}, s.Aliases...) }

// Suppresses reports whether the statement's status takes a finding out of
// scores and gates.
func (s Statement) Suppresses() bool { return s.Status == NotAffected || s.Status == Fixed }

// Vulnerabilities returns every vulnerability id the document's statements
// name, sorted.
func (d *Document) Vulnerabilities() []string {
	var out []string
	for _, s := range d.Statements {
		out = append(out, s.IDs()...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Parse reads an OpenVEX or a CycloneDX (JSON) VEX document. Anything else,
// and a document with a statement that cannot be applied at all (no
// vulnerability, an unknown status, not_affected without a justification,
// no product), is refused with an error naming the problem, wrapping
// ErrInvalid.
func Parse(data []byte, source string) (*Document, error) {
	if len(data) > MaxDocumentBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d allowed", ErrInvalid, len(data), MaxDocumentBytes)
	}
	var probe struct {
		Context   any    `json:"@context"`
		BOMFormat string `json:"bomFormat"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrInvalid, err)
	}
	var (
		d   *Document
		err error
	)
	switch ctx, _ := probe.Context.(string); {
	case strings.HasPrefix(ctx, "https://openvex.dev/ns"):
		d, err = parseOpenVEX(data)
	case probe.BOMFormat == "CycloneDX":
		d, err = parseCycloneDX(data)
	default:
		return nil, fmt.Errorf("%w: neither OpenVEX (\"@context\": \"https://openvex.dev/ns/…\") nor CycloneDX (\"bomFormat\": \"CycloneDX\")", ErrInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(d.Statements) == 0 {
		return nil, fmt.Errorf("%w: no statement Palisade can apply (ignored: %s)", ErrInvalid, strings.Join(d.Ignored, "; "))
	}
	sum := sha256.Sum256(data)
	d.Hash = hex.EncodeToString(sum[:])
	if d.ID == "" {
		d.ID = "sha256:" + d.Hash
	}
	d.Source = source
	return d, nil
}

func parseOpenVEX(data []byte) (*Document, error) {
	var doc openvex.VEX
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("OpenVEX: %v", err)
	}
	d := &Document{ID: doc.ID, Format: FormatOpenVEX}
	if doc.Timestamp != nil {
		d.Timestamp = doc.Timestamp.UTC()
	}
	for i := range doc.Statements {
		st := &doc.Statements[i]
		where := fmt.Sprintf("statement %d", i+1)
		if st.Vulnerability.Name == "" {
			return nil, fmt.Errorf("%s: no vulnerability name", where)
		}
		where += " (" + string(st.Vulnerability.Name) + ")"
		if err := st.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		if len(st.Products) == 0 {
			return nil, fmt.Errorf("%s: no product", where)
		}
		out := Statement{Vulnerability: string(st.Vulnerability.Name), Status: string(st.Status), Justification: string(st.Justification), Timestamp: d.Timestamp}
		for _, a := range st.Vulnerability.Aliases {
			out.Aliases = append(out.Aliases, string(a))
		}
		if out.Justification == "" && st.Status == openvex.StatusNotAffected {
			out.Justification = "impact_statement"
		}
		if st.LastUpdated != nil {
			out.Timestamp = st.LastUpdated.UTC()
		} else if st.Timestamp != nil {
			out.Timestamp = st.Timestamp.UTC()
		}
		for _, p := range st.Products {
			prod, err := product(componentIDs(p.Component))
			if err != nil {
				d.Ignored = append(d.Ignored, where+": "+err.Error())
				continue
			}
			for _, sub := range p.Subcomponents {
				ref, err := packageRef(componentIDs(sub.Component))
				if err != nil {
					d.Ignored = append(d.Ignored, where+": subcomponent: "+err.Error())
					continue
				}
				prod.Packages = append(prod.Packages, ref)
			}
			if len(p.Subcomponents) > 0 && len(prod.Packages) == 0 {
				continue // none of its subcomponents can be matched: never the whole image
			}
			out.Products = append(out.Products, prod)
		}
		if len(out.Products) > 0 {
			d.Statements = append(d.Statements, out)
		}
	}
	return d, nil
}

// componentIDs are the identifiers of an OpenVEX component: its @id and
// its purl.
func componentIDs(c openvex.Component) []string {
	ids := []string{c.ID}
	if p := c.Identifiers[openvex.PURL]; p != "" {
		ids = append(ids, p)
	}
	return ids
}

// cdxStatus maps CycloneDX analysis states onto statuses.
var cdxStatus = map[cdx.ImpactAnalysisState]string{
	cdx.IASNotAffected: NotAffected, cdx.IASFalsePositive: NotAffected,
	cdx.IASResolved: Fixed, cdx.IASResolvedWithPedigree: Fixed,
	cdx.IASExploitable: Affected, cdx.IASInTriage: UnderInvestigation,
}

func parseCycloneDX(data []byte) (*Document, error) {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return nil, fmt.Errorf("CycloneDX: %v", err)
	}
	// Versions of one BOM share its serial number: a later one replaces it.
	d := &Document{ID: bom.SerialNumber, Format: FormatCycloneDX}
	refs := map[string]cdx.Component{}
	var walk func(cs *[]cdx.Component)
	walk = func(cs *[]cdx.Component) {
		if cs == nil {
			return
		}
		for _, c := range *cs {
			if c.BOMRef != "" {
				refs[c.BOMRef] = c
			}
			walk(c.Components)
		}
	}
	if bom.Metadata != nil {
		d.Timestamp = parseTime(bom.Metadata.Timestamp)
		if c := bom.Metadata.Component; c != nil {
			walk(&[]cdx.Component{*c})
		}
	}
	walk(bom.Components)
	if bom.Vulnerabilities == nil || len(*bom.Vulnerabilities) == 0 {
		return nil, errors.New("CycloneDX: no vulnerabilities (a VEX BOM lists them with their analysis)")
	}
	for i, v := range *bom.Vulnerabilities {
		where := fmt.Sprintf("vulnerability %d", i+1)
		if v.ID == "" {
			return nil, fmt.Errorf("%s: no id", where)
		}
		where += " (" + v.ID + ")"
		if v.Analysis == nil || v.Analysis.State == "" {
			return nil, fmt.Errorf("%s: no analysis state", where)
		}
		status, ok := cdxStatus[v.Analysis.State]
		if !ok {
			return nil, fmt.Errorf("%s: unknown analysis state %q", where, v.Analysis.State)
		}
		if v.Affects == nil || len(*v.Affects) == 0 {
			return nil, fmt.Errorf("%s: affects nothing", where)
		}
		out := Statement{Vulnerability: v.ID, Status: status, Justification: string(v.Analysis.Justification), Timestamp: d.Timestamp}
		if v.Analysis.State == cdx.IASFalsePositive && out.Justification == "" {
			out.Justification = "false_positive"
		}
		for _, t := range []string{v.Analysis.LastUpdated, v.Updated, v.Analysis.FirstIssued} {
			if ts := parseTime(t); !ts.IsZero() {
				out.Timestamp = ts
				break
			}
		}
		for _, a := range *v.Affects {
			ids := []string{a.Ref}
			if c, ok := refs[a.Ref]; ok {
				ids = []string{c.PackageURL, c.BOMRef}
			}
			prod, err := product(ids)
			if err != nil {
				d.Ignored = append(d.Ignored, where+": "+err.Error())
				continue
			}
			out.Products = append(out.Products, prod)
		}
		if len(out.Products) > 0 {
			d.Statements = append(d.Statements, out)
		}
	}
	return d, nil
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// product reads the first of ids that names an image or a package.
func product(ids []string) (Product, error) {
	var last error = errors.New("no identifier")
	for _, id := range ids {
		if id == "" {
			continue
		}
		p, err := productOf(id)
		if err == nil {
			return p, nil
		}
		last = err
	}
	return Product{}, last
}

func productOf(id string) (Product, error) {
	if model.ValidDigest(id) {
		return Product{Digest: id}, nil
	}
	if strings.HasPrefix(id, "pkg:") {
		p, err := packageurl.FromString(id)
		if err != nil {
			return Product{}, fmt.Errorf("product %q: %v", id, err)
		}
		if p.Type != "oci" {
			ref, err := purlRef(p)
			if err != nil {
				return Product{}, err
			}
			return Product{Packages: []PackageRef{ref}}, nil
		}
		out := Product{}
		if p.Version != "" {
			v, _ := url.PathUnescape(p.Version)
			if !model.ValidDigest(v) {
				return Product{}, fmt.Errorf("product %q: an OCI purl's version must be a sha256 digest", id)
			}
			out.Digest = v
		}
		if repo := p.Qualifiers.Map()["repository_url"]; repo != "" {
			out.Repository = strings.TrimSuffix(repo, "/")
		} else if out.Digest == "" {
			return Product{}, fmt.Errorf("product %q: names neither a digest nor a repository_url", id)
		}
		return out, nil
	}
	name, digest, hasDigest := strings.Cut(id, "@")
	if hasDigest && repositoryRE.MatchString(name) {
		if !model.ValidDigest(digest) {
			return Product{}, fmt.Errorf("product %q: %q is not a sha256 digest", id, digest)
		}
		return Product{Digest: digest, Repository: name}, nil
	}
	if repositoryRE.MatchString(id) {
		return Product{Repository: id}, nil
	}
	if i := strings.LastIndex(id, ":"); i > 0 && repositoryRE.MatchString(id[:i]) {
		return Product{}, fmt.Errorf("product %q names an image by tag: name its digest (REPOSITORY@sha256:…) or the repository", id)
	}
	return Product{}, fmt.Errorf("product %q is neither a package URL nor an image reference REGISTRY/REPOSITORY[@sha256:…]", id)
}

// repositoryRE is a registry host (with a port, optionally) and a
// repository path, as in an image reference.
var repositoryRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)+$`)

// packageRef reads a subcomponent: a package URL.
func packageRef(ids []string) (PackageRef, error) {
	for _, id := range ids {
		if p, err := packageurl.FromString(id); err == nil && strings.HasPrefix(id, "pkg:") {
			return purlRef(p)
		}
	}
	return PackageRef{}, fmt.Errorf("%q is not a package URL", strings.Join(ids, " "))
}

// purlRef names a package as findings do: npm scopes, Go module paths and
// Maven groups are part of the name.
func purlRef(p packageurl.PackageURL) (PackageRef, error) {
	if p.Name == "" {
		return PackageRef{}, fmt.Errorf("package URL %q has no name", p.ToString())
	}
	name := p.Name
	switch p.Type {
	case "npm", "golang":
		if p.Namespace != "" {
			name = p.Namespace + "/" + p.Name
		}
	case "maven":
		if p.Namespace != "" {
			name = p.Namespace + ":" + p.Name
		}
	}
	return PackageRef{Name: name, Version: p.Version}, nil
}
