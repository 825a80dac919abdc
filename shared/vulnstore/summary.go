package vulnstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// Summarize folds open findings into an image's vulnerability summary:
// one entry per vulnerability id, at the worst severity of its findings.
// Findings that are not open are left out.
func Summarize(digest string, findings []model.Finding) model.ImageVulns {
	byID := map[string]*model.VulnRef{}
	for i := range findings {
		f := &findings[i]
		if f.Status != "" && f.Status != model.FindingOpen || f.Suppressed != nil {
			continue // resolved, or a VEX statement says it does not apply
		}
		r := byID[f.VulnID]
		if r == nil {
			r = &model.VulnRef{ID: f.VulnID, Packages: []string{}}
			byID[f.VulnID] = r
		}
		r.Rank = max(r.Rank, f.Severity.Rank())
		r.Fixable = r.Fixable || f.FixedVersion != ""
		r.KEV = r.KEV || f.KnownExploited
		if !slices.Contains(r.Packages, f.PkgName) {
			r.Packages = append(r.Packages, f.PkgName)
		}
	}
	out := model.ImageVulns{Digest: digest, Vulns: make([]model.VulnRef, 0, len(byID))}
	for _, r := range byID {
		slices.Sort(r.Packages)
		out.Vulns = append(out.Vulns, *r)
	}
	slices.SortFunc(out.Vulns, func(a, b model.VulnRef) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// putSummary writes an image's vulnerability summary unless the stored one
// is the same: a rescan that changes nothing costs one read.
func putSummary(ctx context.Context, st store.Store, sum model.ImageVulns, at time.Time) error {
	data, err := json.Marshal(sum)
	if err != nil {
		return fmt.Errorf("encode the vulnerability summary of %s: %w", sum.Digest, err)
	}
	var old model.State
	_, err = st.Get(ctx, store.State, model.KindImageVulns, sum.Digest, &old)
	switch {
	case err == nil && bytes.Equal(old.Data, data):
		return nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("read the vulnerability summary of %s: %w", sum.Digest, err)
	}
	item := model.State{ID: sum.Digest, Kind: model.KindImageVulns, UpdatedAt: at.UTC(), Data: data}
	if _, err := st.Put(ctx, store.State, model.KindImageVulns, sum.Digest, item, store.Cond{}); err != nil {
		return fmt.Errorf("store the vulnerability summary of %s: %w", sum.Digest, err)
	}
	return nil
}

// RebuildSummary writes an image's vulnerability summary from its stored
// open findings and returns it: for images recorded before summaries were
// kept. Writing it again changes nothing.
func RebuildSummary(ctx context.Context, st store.Store, digest string, at time.Time) (model.ImageVulns, error) {
	var open []model.Finding
	q := store.Query{PartitionKey: digest, Filters: []store.Filter{{Field: "status", Op: store.Eq, Value: model.FindingOpen}}, Limit: 1000}
	err := store.Each(ctx, st, store.Findings, q, func(f model.Finding) error {
		open = append(open, f)
		return nil
	})
	if err != nil {
		return model.ImageVulns{}, fmt.Errorf("read open findings of %s: %w", digest, err)
	}
	sum := Summarize(digest, open)
	return sum, putSummary(ctx, st, sum, at)
}

// EachSummary calls fn for the vulnerability summary of every image that
// has one (deleted images have none), a thousand a page.
func EachSummary(ctx context.Context, st store.Store, fn func(model.ImageVulns) error) error {
	err := store.Each(ctx, st, store.State, store.Query{PartitionKey: model.KindImageVulns, Limit: 1000}, func(s model.State) error {
		var v model.ImageVulns
		if err := json.Unmarshal(s.Data, &v); err != nil {
			return fmt.Errorf("decode the vulnerability summary %s: %w", s.ID, err)
		}
		return fn(v)
	})
	if err != nil {
		return fmt.Errorf("read vulnerability summaries: %w", err)
	}
	return nil
}
