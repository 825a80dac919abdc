package vex

import (
	"slices"
	"strings"

	"github.com/palisade-sec/palisade/shared/model"
)

// Set is the statements of some documents, indexed by vulnerability id. It
// is read-only once built and safe for concurrent use; a nil *Set has no
// statement.
type Set struct {
	byVuln map[string][]entry
	docs   int
}

type entry struct {
	st  *Statement
	doc *Document
}

// NewSet indexes the statements of docs.
func NewSet(docs ...*Document) *Set {
	s := &Set{byVuln: map[string][]entry{}, docs: len(docs)}
	for _, d := range docs {
		for i := range d.Statements {
			st := &d.Statements[i]
			ids := st.IDs()
			slices.Sort(ids)
			for _, id := range slices.Compact(ids) {
				s.byVuln[id] = append(s.byVuln[id], entry{st, d})
			}
		}
	}
	return s
}

// Documents is the number of documents in the set.
func (s *Set) Documents() int {
	if s == nil {
		return 0
	}
	return s.docs
}

// Suppression returns why the finding does not count, or nil: the latest
// statement that matches it (its vulnerability and product) says
// not_affected or fixed. Statements with the same time are ordered by
// document id, then status (fixed, then not_affected, last), so the result
// does not depend on the order documents were read in.
func (s *Set) Suppression(f *model.Finding) *model.Suppression {
	if s == nil || len(s.byVuln) == 0 {
		return nil
	}
	var best *entry
	consider := func(id string) {
		for i, e := range s.byVuln[id] {
			if e.st.applies(f) && (best == nil || later(e, *best)) {
				best = &s.byVuln[id][i]
			}
		}
	}
	consider(f.VulnID)
	for _, a := range f.Aliases {
		consider(a)
	}
	if best == nil || !best.st.Suppresses() {
		return nil
	}
	return &model.Suppression{Status: best.st.Status, Justification: best.st.Justification, Source: best.doc.Format + " " + best.doc.ID}
}

func later(a, b entry) bool {
	if c := a.st.Timestamp.Compare(b.st.Timestamp); c != 0 {
		return c > 0
	}
	if c := strings.Compare(a.doc.ID, b.doc.ID); c != 0 {
		return c > 0
	}
	return a.st.Status < b.st.Status
}

// applies reports whether one of the statement's products is the
// finding's image and package.
func (st *Statement) applies(f *model.Finding) bool {
	return slices.ContainsFunc(st.Products, func(p Product) bool { return p.matches(f) })
}

func (p Product) matches(f *model.Finding) bool {
	if p.Digest != "" && p.Digest != f.Digest {
		return false
	}
	if p.Repository != "" && !strings.EqualFold(p.Repository, f.Registry+"/"+f.Repository) {
		return false
	}
	if len(p.Packages) == 0 {
		return true
	}
	return slices.ContainsFunc(p.Packages, func(r PackageRef) bool {
		return r.Name == f.PkgName && (r.Version == "" || r.Version == f.InstalledVersion)
	})
}
