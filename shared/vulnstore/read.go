package vulnstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// GetImage reads an image summary; a digest with none gives an error
// matching store.ErrNotFound.
func GetImage(ctx context.Context, st store.Store, digest string) (model.Image, error) {
	var img model.Image
	if _, err := st.Get(ctx, store.Images, digest, model.ImageID(digest), &img); err != nil {
		return model.Image{}, fmt.Errorf("read image %s: %w", digest, err)
	}
	return img, nil
}

// Lookup reads an image summary, saying whether there is one, for a caller
// that decides on it and then records (Scan.Stored): one read per push.
func Lookup(ctx context.Context, st store.Store, digest string) (Stored, error) {
	var img model.Image
	etag, err := st.Get(ctx, store.Images, digest, model.ImageID(digest), &img)
	switch {
	case err == nil:
		return Stored{Image: img, Found: true, etag: etag}, nil
	case errors.Is(err, store.ErrNotFound):
		return Stored{Image: model.Image{Digest: digest}}, nil
	default:
		return Stored{}, fmt.Errorf("read image %s: %w", digest, err)
	}
}

// Findings reads every finding of an image, by id.
func Findings(ctx context.Context, st store.Store, digest string) (map[string]model.Finding, error) {
	out := map[string]model.Finding{}
	err := store.Each(ctx, st, store.Findings, store.Query{PartitionKey: digest, Limit: 500}, func(f model.Finding) error {
		out[f.ID] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read findings of %s: %w", digest, err)
	}
	return out, nil
}

// Inventory reads an image's stored inventory.
func Inventory(ctx context.Context, st store.Store, digest string) (model.Inventory, error) {
	chunks, err := InventoryChunks(ctx, st, digest)
	if err != nil {
		return model.Inventory{}, err
	}
	inv, err := model.AssembleInventory(chunks)
	if err != nil {
		return model.Inventory{}, fmt.Errorf("read inventory of %s: %w", digest, err)
	}
	return inv, nil
}

// InventoryChunks reads the stored chunks of an image's inventory, in
// order: what Inventory assembles.
func InventoryChunks(ctx context.Context, st store.Store, digest string) ([]model.InventoryChunk, error) {
	var chunks []model.InventoryChunk
	err := store.Each(ctx, st, store.Inventory, store.Query{PartitionKey: digest}, func(c model.InventoryChunk) error {
		chunks = append(chunks, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read inventory of %s: %w", digest, err)
	}
	slices.SortFunc(chunks, func(a, b model.InventoryChunk) int { return a.Index - b.Index })
	return chunks, nil
}

// ImageFilter selects image summaries; empty fields match every image.
type ImageFilter struct {
	Registry, Repository string
	Status               string // active, deleted, unsupported, failed
	// MinSeverity keeps images with an open finding of that severity or
	// worse.
	MinSeverity model.Severity
}

func (f ImageFilter) query() store.Query {
	var q store.Query
	for _, c := range []struct{ field, value string }{{"registry", f.Registry}, {"repository", f.Repository}, {"status", f.Status}} {
		if c.value != "" {
			q.Filters = append(q.Filters, store.Filter{Field: c.field, Op: store.Eq, Value: c.value})
		}
	}
	if f.MinSeverity != "" {
		q.Filters = append(q.Filters, store.Filter{Field: "maxSeverityRank", Op: store.Ge, Value: f.MinSeverity.Rank()})
	}
	return q
}

// ListImages returns one page of the image summaries f selects, in no
// particular order. A continuation token that is not one of this list's
// gives an error matching store.ErrInvalid.
func ListImages(ctx context.Context, st store.Store, f ImageFilter, cur store.Cursor) (store.List[model.Image], error) {
	return store.QueryList[model.Image](ctx, st, store.Images, f.query(), cur)
}

// EachImage calls fn for every image summary f selects, page by page.
func EachImage(ctx context.Context, st store.Store, f ImageFilter, fn func(model.Image) error) error {
	if err := store.Each(ctx, st, store.Images, f.query(), fn); err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	return nil
}

// ActiveImages returns one page of the images a rescan keeps current:
// pushed at or after pushedSince and not deleted.
func ActiveImages(ctx context.Context, st store.Store, pushedSince time.Time, cur store.Cursor) (store.List[model.Image], error) {
	q := store.Query{Filters: []store.Filter{
		{Field: "pushedUnix", Op: store.Ge, Value: pushedSince.Unix()},
		{Field: "status", Op: store.Ne, Value: model.ImageDeleted},
	}}
	l, err := store.QueryList[model.Image](ctx, st, store.Images, q, cur)
	if err != nil {
		return l, fmt.Errorf("list active images: %w", err)
	}
	return l, nil
}

// ResolveTag finds the digest a tag of a repository names among the scanned
// images: the most recently pushed active image carrying it. A tag no
// scanned image carries resolves to "".
func ResolveTag(ctx context.Context, st store.Store, registry, repository, tag string) (string, error) {
	var best model.Image
	f := ImageFilter{Registry: strings.ToLower(registry), Repository: repository, Status: model.ImageActive}
	err := EachImage(ctx, st, f, func(img model.Image) error {
		if slices.Contains(img.Tags, tag) && img.PushedUnix >= best.PushedUnix {
			best = img
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("resolve %s/%s:%s: %w", registry, repository, tag, err)
	}
	return best.Digest, nil
}

// FindingFilter selects findings; empty fields match all.
type FindingFilter struct {
	Status  string // open or resolved
	VulnID  string
	Package string
	// MinSeverity keeps findings of that severity or worse.
	MinSeverity model.Severity
	// MinPriority keeps findings of that priority or more urgent (P2: P1
	// and P2).
	MinPriority model.Priority
	// KEV, when set, keeps findings of CVEs in CISA's KEV catalogue (true)
	// or not in it (false).
	KEV *bool
	// MinEPSS keeps findings whose EPSS score is at least this; 0 keeps
	// all.
	MinEPSS float64
}

func (f FindingFilter) query(digest string) store.Query {
	q := store.Query{PartitionKey: digest}
	for _, c := range []struct{ field, value string }{{"status", f.Status}, {"vulnId", f.VulnID}, {"pkgName", f.Package}} {
		if c.value != "" {
			q.Filters = append(q.Filters, store.Filter{Field: c.field, Op: store.Eq, Value: c.value})
		}
	}
	if f.MinSeverity != "" {
		q.Filters = append(q.Filters, store.Filter{Field: "severityRank", Op: store.Ge, Value: f.MinSeverity.Rank()})
	}
	if f.MinPriority != "" {
		q.Filters = append(q.Filters, store.Filter{Field: "priorityRank", Op: store.Ge, Value: f.MinPriority.Rank()})
	}
	if f.KEV != nil {
		// Not known exploited: the field is left out (a missing field
		// matches only Ne).
		op := store.Eq
		if !*f.KEV {
			op = store.Ne
		}
		q.Filters = append(q.Filters, store.Filter{Field: "knownExploited", Op: op, Value: true})
	}
	if f.MinEPSS > 0 {
		q.Filters = append(q.Filters, store.Filter{Field: "epss.score", Op: store.Ge, Value: f.MinEPSS})
	}
	return q
}

// ListFindings returns one page of the findings f selects: of one image,
// or of every image when digest is "", in no particular order.
func ListFindings(ctx context.Context, st store.Store, digest string, f FindingFilter, cur store.Cursor) (store.List[model.Finding], error) {
	return store.QueryList[model.Finding](ctx, st, store.Findings, f.query(digest), cur)
}

// SortByPriority is the order of SortedFindings: most urgent first
// (model.ByPriority).
const SortByPriority = "priority"

// MaxSorted is the most findings SortedFindings sorts: a selection of
// more fails with ErrTooMany.
const MaxSorted = 20000

// ErrTooMany: more findings match than SortedFindings sorts; narrow the
// filter (a priority, kev, a minimum EPSS score or severity, a status).
var ErrTooMany = errors.New("too many findings to sort")

// SortedFindings returns one page of the findings f selects, of one image
// or of every image when digest is "", most urgent first
// (model.ByPriority). Each page reads every selected finding (at most
// MaxSorted, else ErrTooMany) and sorts them; the continuation token is
// the position of the next page. A token that is not one gives an error
// matching store.ErrInvalid.
func SortedFindings(ctx context.Context, st store.Store, digest string, f FindingFilter, cur store.Cursor) (store.List[model.Finding], error) {
	return sortedFindings(ctx, st, digest, f, cur, MaxSorted)
}

func sortedFindings(ctx context.Context, st store.Store, digest string, f FindingFilter, cur store.Cursor, most int) (store.List[model.Finding], error) {
	offset := 0
	if cur.Continuation != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(cur.Continuation, "pos-"))
		if err != nil || n < 0 || !strings.HasPrefix(cur.Continuation, "pos-") {
			return store.List[model.Finding]{}, fmt.Errorf("%w: continuation token %q is not one of a sorted list", store.ErrInvalid, cur.Continuation)
		}
		offset = n
	}
	limit := cur.Limit
	if limit <= 0 {
		limit = store.DefaultLimit
	}
	q := f.query(digest)
	q.Limit = 1000
	var all []model.Finding
	if err := store.Each(ctx, st, store.Findings, q, func(fd model.Finding) error {
		if len(all) == most {
			return fmt.Errorf("%w: more than %d match", ErrTooMany, most)
		}
		all = append(all, fd)
		return nil
	}); err != nil {
		if errors.Is(err, ErrTooMany) {
			return store.List[model.Finding]{}, err
		}
		return store.List[model.Finding]{}, fmt.Errorf("read findings to sort: %w", err)
	}
	slices.SortFunc(all, func(a, b model.Finding) int { return model.ByPriority(&a, &b) })
	out := store.List[model.Finding]{Items: all[min(offset, len(all)):min(offset+limit, len(all))]}
	if offset+limit < len(all) {
		out.Continuation = "pos-" + strconv.Itoa(offset+limit)
	}
	if out.Items == nil {
		out.Items = []model.Finding{}
	}
	return out, nil
}

// Exposure summarises the open findings of an image.
type Exposure struct {
	Counts         model.Counts // by severity
	KnownExploited int          // of them known to be exploited (e.g. CISA KEV)
	VulnIDs        []string     // their vulnerability ids, distinct and sorted
}

// Total is the number of open findings.
func (e Exposure) Total() int {
	n := 0
	for _, c := range e.Counts {
		n += c
	}
	return n
}

// OpenFindings summarises the open findings of an image at min severity or
// worse ("" for all), leaving out those a VEX statement suppresses. An
// image never scanned has none; use GetImage to tell it from a clean one.
func OpenFindings(ctx context.Context, st store.Store, digest string, min model.Severity) (Exposure, error) {
	e := Exposure{Counts: model.Counts{}}
	q := store.Query{PartitionKey: digest, Filters: []store.Filter{{Field: "status", Op: store.Eq, Value: model.FindingOpen}}, Limit: 1000}
	if min != "" {
		q.Filters = append(q.Filters, store.Filter{Field: "severityRank", Op: store.Ge, Value: min.Rank()})
	}
	err := store.Each(ctx, st, store.Findings, q, func(f model.Finding) error {
		if f.Suppressed != nil {
			return nil
		}
		e.Counts[f.Severity]++
		if f.KnownExploited {
			e.KnownExploited++
		}
		e.VulnIDs = append(e.VulnIDs, f.VulnID)
		return nil
	})
	if err != nil {
		return Exposure{}, fmt.Errorf("read open findings of %s: %w", digest, err)
	}
	slices.Sort(e.VulnIDs)
	e.VulnIDs = slices.Compact(e.VulnIDs)
	return e, nil
}
