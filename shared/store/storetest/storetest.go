// Package storetest is the contract every store.Store implementation must
// pass. An implementation's tests call Run with a function that opens a
// fresh, empty store; Run calls it once per subtest.
package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/palisade-sec/palisade/shared/model"
	"github.com/palisade-sec/palisade/shared/store"
)

// The model types that say their own keys.
var (
	_ store.Keyed    = model.Alert{}
	_ store.Keyed    = model.State{}
	_ store.Keyed    = model.Parked{}
	_ store.Expiring = model.Alert{}
	_ store.Expiring = model.State{}
)

// Run runs the contract suite. open must return an empty store and arrange
// for it to be closed when its test ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"UpsertIsIdempotent", testUpsert},
		{"Conditions", testConditions},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
		{"Filters", testFilters},
		{"InvalidQuery", testInvalidQuery},
		{"PartitionRestriction", testPartition},
		{"Paging", testPaging},
		{"TooLarge", testTooLarge},
		{"Invalid", testInvalid},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentConditionalUpdates", testConcurrentConditional},
		{"TimeToLive", testTTL},
		{"WriteBatch", testWriteBatch},
		{"GetMany", testGetMany},
		{"WriteBatchOnePartition", testBatchPartition},
		{"WriteBatchOnePartitionOneByOne", func(t *testing.T, s store.Store) { testBatchPartition(t, plain{s}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

const digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

var when = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// roundTripCases returns one item of each stored model type.
func roundTripCases() []struct {
	name string
	c    store.Container
	pk   string
	id   string
	in   any
	out  func() any
} {
	image := model.Image{
		ID: model.ImageID(digestA), Digest: digestA, Registry: "contoso.azurecr.io", Repository: "shop/web",
		Tags: []string{"1.2.3", "latest"}, OS: "debian 12.5", OSFamily: "debian", Platform: "linux/amd64",
		Status: model.ImageActive, DBVersion: "2026-03-14T00:00:00Z",
		Counts:   model.Counts{model.SeverityCritical: 1, model.SeverityHigh: 2},
		Packages: 142, PushedAt: when, PushedUnix: when.Unix(), ScannedAt: when.Add(time.Minute), ScannedUnix: when.Add(time.Minute).Unix(),
	}
	chunk := model.InventoryChunk{
		ID: digestA + ":0", Digest: digestA, Index: 0, Chunks: 1, OSFamily: "debian", OSName: "12.5",
		Groups: []model.PackageGroup{{Type: "debian", Class: "os-pkgs", Packages: []model.Package{
			{Name: "openssl", Version: "3.0.11", Release: "1~deb12u2", Arch: "amd64", SrcName: "openssl"},
		}}},
	}
	finding := model.Finding{
		ID: model.FindingID(digestA, "CVE-2024-0727", "openssl", "", "3.0.11"), Digest: digestA,
		VulnID: "CVE-2024-0727", PkgName: "openssl", InstalledVersion: "3.0.11", FixedVersion: "3.0.13",
		Severity: model.SeverityMedium, SeverityRank: model.SeverityMedium.Rank(), CVSSScore: 5.5,
		CVSSVector: "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H", Remediation: "Upgrade openssl to 3.0.13.",
		Status: model.FindingOpen, FirstSeen: when, LastSeen: when, KnownExploited: true,
	}
	alert := model.Alert{
		ID: model.AlertID("aks-prod", "ReverseShell", "shop/web", when), Cluster: "aks-prod", Type: "ReverseShell",
		RefType: "K8S.NODE_ReverseShell", Title: "Possible reverse shell", Severity: model.SeverityHigh,
		SeverityRank: model.SeverityHigh.Rank(), Tactics: []string{"Execution"}, Source: "runtime",
		Entity: "shop/web", WindowStart: when, Count: 3, FirstSeen: when, LastSeen: when, LastSeenUnix: when.Unix(),
		Evidence: map[string]string{"proc.cmdline": "bash -i"}, Vulnerabilities: &model.Counts{model.SeverityHigh: 1},
		Status: model.AlertActive, TTL: 3600,
	}
	posture := model.PostureResult{
		ID: model.HashID("aks-prod", "CIS-5.2.1", "Pod/shop/web"), Cluster: "aks-prod", CheckID: "CIS-5.2.1",
		Title: "Privileged containers", Severity: model.SeverityHigh, Resource: "Pod/shop/web",
		Status: model.PostureFail, EvaluatedAt: when, EvaluatedUnix: when.Unix(),
	}
	state := model.State{ID: "vulndb", Kind: "dbversion", UpdatedAt: when, Data: json.RawMessage(`{"version":"2026-03-14"}`)}
	parked := model.Parked{ID: "p1", Kind: model.KindParked, Function: "scanimage", Reason: "bad digest", Sample: "{}", At: when}

	return []struct {
		name string
		c    store.Container
		pk   string
		id   string
		in   any
		out  func() any
	}{
		{"Image", store.Images, image.Digest, image.ID, image, func() any { return new(model.Image) }},
		{"InventoryChunk", store.Inventory, chunk.Digest, chunk.ID, chunk, func() any { return new(model.InventoryChunk) }},
		{"Finding", store.Findings, finding.Digest, finding.ID, finding, func() any { return new(model.Finding) }},
		{"Alert", store.Alerts, alert.Cluster, alert.ID, alert, func() any { return new(model.Alert) }},
		{"PostureResult", store.Posture, posture.Cluster, posture.ID, posture, func() any { return new(model.PostureResult) }},
		{"State", store.State, state.Kind, state.ID, state, func() any { return new(model.State) }},
		{"Parked", store.State, parked.Kind, parked.ID, parked, func() any { return new(model.Parked) }},
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	for _, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			etag, err := s.Put(ctx, tc.c, tc.pk, tc.id, tc.in, store.Cond{})
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if etag == "" {
				t.Error("Put returned an empty ETag")
			}
			got := tc.out()
			getTag, err := s.Get(ctx, tc.c, tc.pk, tc.id, got)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if getTag != etag {
				t.Errorf("Get ETag = %q, Put returned %q", getTag, etag)
			}
			if diff := cmp.Diff(tc.in, deref(got)); diff != "" {
				t.Errorf("Get returned a different item (-put +got):\n%s", diff)
			}

			// The same item through Query, decoded the way callers do.
			page, err := s.Query(ctx, tc.c, store.Query{PartitionKey: tc.pk, Filters: []store.Filter{{Field: "id", Op: store.Eq, Value: tc.id}}})
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			if len(page.Items) != 1 {
				t.Fatalf("Query returned %d items, want 1", len(page.Items))
			}
			fromQuery := tc.out()
			if err := json.Unmarshal(page.Items[0], fromQuery); err != nil {
				t.Fatalf("decode queried item: %v", err)
			}
			if diff := cmp.Diff(tc.in, deref(fromQuery)); diff != "" {
				t.Errorf("Query returned a different item (-put +got):\n%s", diff)
			}
		})
	}
}

// deref returns the value p points to.
func deref(p any) any {
	switch v := p.(type) {
	case *model.Image:
		return *v
	case *model.InventoryChunk:
		return *v
	case *model.Finding:
		return *v
	case *model.Alert:
		return *v
	case *model.PostureResult:
		return *v
	case *model.State:
		return *v
	case *model.Parked:
		return *v
	}
	panic(fmt.Sprintf("storetest: no deref for %T", p))
}

// doc is a free-form item for filter and paging tests.
type doc map[string]any

func item(pk, id string, fields doc) doc {
	d := doc{"id": id, "digest": pk}
	for k, v := range fields {
		d[k] = v
	}
	return d
}

func mustPut(t *testing.T, s store.Store, c store.Container, pk, id string, v any) string {
	t.Helper()
	etag, err := s.Put(t.Context(), c, pk, id, v, store.Cond{})
	if err != nil {
		t.Fatalf("Put %s/%s: %v", pk, id, err)
	}
	return etag
}

// ids runs q to the end and returns the ids seen, sorted, failing the test
// if an id is seen twice.
func ids(t *testing.T, s store.Store, c store.Container, q store.Query) []string {
	t.Helper()
	var out []string
	err := store.Each(t.Context(), s, c, q, func(d doc) error {
		out = append(out, d["id"].(string))
		return nil
	})
	if err != nil {
		t.Fatalf("query %+v: %v", q, err)
	}
	slices.Sort(out)
	if i := firstDuplicate(out); i >= 0 {
		t.Fatalf("query %+v returned %q more than once", q, out[i])
	}
	return out
}

func firstDuplicate(sorted []string) int {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return i
		}
	}
	return -1
}

func testUpsert(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := mustPut(t, s, store.Findings, "d1", "f1", item("d1", "f1", doc{"status": "open"}))
	second := mustPut(t, s, store.Findings, "d1", "f1", item("d1", "f1", doc{"status": "resolved"}))
	if first == second {
		t.Errorf("a second write kept ETag %q", first)
	}
	var got doc
	etag, err := s.Get(ctx, store.Findings, "d1", "f1", &got)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if etag != second || got["status"] != "resolved" {
		t.Errorf("Get = %v with ETag %q; want the second write, ETag %q", got, etag, second)
	}
	if got := ids(t, s, store.Findings, store.Query{}); !slices.Equal(got, []string{"f1"}) {
		t.Errorf("container holds %q, want exactly [f1]", got)
	}
}

func testConditions(t *testing.T, s store.Store) {
	ctx := t.Context()
	put := func(status string, cond store.Cond) (string, error) {
		return s.Put(ctx, store.Alerts, "c1", "a1", doc{"id": "a1", "cluster": "c1", "status": status}, cond)
	}
	status := func() string {
		var d doc
		if _, err := s.Get(ctx, store.Alerts, "c1", "a1", &d); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return "<missing>"
			}
			t.Fatalf("Get: %v", err)
		}
		return d["status"].(string)
	}

	if _, err := put("v1", store.Cond{IfMatch: `"1"`}); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("IfMatch on a missing item: err = %v, want ErrPrecondition", err)
	}
	if got := status(); got != "<missing>" {
		t.Errorf("failed IfMatch created the item (status %q)", got)
	}
	v1, err := put("v1", store.Cond{IfNoneMatch: true})
	if err != nil {
		t.Fatalf("IfNoneMatch on a missing item: %v", err)
	}
	if _, err := put("v1b", store.Cond{IfNoneMatch: true}); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("IfNoneMatch on an existing item: err = %v, want ErrPrecondition", err)
	}
	v2, err := put("v2", store.Cond{IfMatch: v1})
	if err != nil {
		t.Fatalf("IfMatch with the current ETag: %v", err)
	}
	if v2 == v1 {
		t.Errorf("conditional replace kept ETag %q", v1)
	}
	if _, err := put("v3", store.Cond{IfMatch: v1}); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("IfMatch with a stale ETag: err = %v, want ErrPrecondition", err)
	}
	if got := status(); got != "v2" {
		t.Errorf("status = %q after failed conditional writes, want v2", got)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustPut(t, s, store.Posture, "c1", "r1", doc{"id": "r1", "cluster": "c1"})
	mustPut(t, s, store.Posture, "c1", "r2", doc{"id": "r2", "cluster": "c1"})
	if err := s.Delete(ctx, store.Posture, "c1", "r1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	var d doc
	if _, err := s.Get(ctx, store.Posture, "c1", "r1", &d); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, store.Posture, "c1", "r1"); err != nil {
		t.Errorf("deleting a missing item: %v, want nil", err)
	}
	if got := ids(t, s, store.Posture, store.Query{}); !slices.Equal(got, []string{"r2"}) {
		t.Errorf("after Delete the container holds %q, want [r2]", got)
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustPut(t, s, store.Images, "d1", "i1", item("d1", "i1", nil))
	for _, tc := range []struct{ name, pk, id string }{
		{"MissingID", "d1", "nope"},
		{"OtherPartition", "d2", "i1"},
		{"EmptyContainer", "d1", "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			_, err := s.Get(ctx, store.Images, tc.pk, tc.id, &d)
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get(%s, %s): err = %v, want ErrNotFound", tc.pk, tc.id, err)
			}
		})
	}
	if got := ids(t, s, store.Inventory, store.Query{}); len(got) != 0 {
		t.Errorf("empty container returned %q", got)
	}
}

func testFilters(t *testing.T, s store.Store) {
	items := []doc{
		item("d1", "a", doc{"value": "kw", "n": 1, "s": "apple", "b": true, "sev": "HIGH", "nested": doc{"x": 5, "deeper": doc{"y": "k"}}}),
		item("d1", "b", doc{"n": 9, "s": "banana", "b": false, "sev": "LOW", "nested": doc{"x": 50}}),
		item("d2", "c", doc{"n": 10, "s": "cherry", "b": true, "sev": "HIGH"}),
		item("d2", "d", doc{"n": 2.5, "s": "10"}),
		item("d3", "e", doc{"s": "9", "nested": "not an object"}),
	}
	for _, d := range items {
		mustPut(t, s, store.Findings, d["digest"].(string), d["id"].(string), d)
	}
	f := func(field string, op store.Op, v any) store.Filter {
		return store.Filter{Field: field, Op: op, Value: v}
	}
	tests := []struct {
		name    string
		pk      string
		filters []store.Filter
		want    []string
	}{
		{"None", "", nil, []string{"a", "b", "c", "d", "e"}},
		{"EqNumber", "", []store.Filter{f("n", store.Eq, 9)}, []string{"b"}},
		{"EqFloat", "", []store.Filter{f("n", store.Eq, 2.5)}, []string{"d"}},
		{"NeNumberMatchesMissing", "", []store.Filter{f("n", store.Ne, 9)}, []string{"a", "c", "d", "e"}},
		{"GtNumberIsNumeric", "", []store.Filter{f("n", store.Gt, 2)}, []string{"b", "c", "d"}},
		{"GeInt64", "", []store.Filter{f("n", store.Ge, int64(9))}, []string{"b", "c"}},
		{"LtNumber", "", []store.Filter{f("n", store.Lt, 9)}, []string{"a", "d"}},
		{"LeNumber", "", []store.Filter{f("n", store.Le, 9.0)}, []string{"a", "b", "d"}},
		{"EqString", "", []store.Filter{f("s", store.Eq, "banana")}, []string{"b"}},
		{"NeString", "", []store.Filter{f("sev", store.Ne, "HIGH")}, []string{"b", "d", "e"}},
		{"GtStringIsLexical", "", []store.Filter{f("s", store.Gt, "2")}, []string{"a", "b", "c", "e"}},
		{"LtString", "", []store.Filter{f("s", store.Lt, "banana")}, []string{"a", "d", "e"}},
		{"GeString", "", []store.Filter{f("s", store.Ge, "banana")}, []string{"b", "c"}},
		{"LeString", "", []store.Filter{f("s", store.Le, "apple")}, []string{"a", "d", "e"}},
		{"EqBoolTrue", "", []store.Filter{f("b", store.Eq, true)}, []string{"a", "c"}},
		{"EqBoolFalse", "", []store.Filter{f("b", store.Eq, false)}, []string{"b"}},
		{"NeBoolMatchesMissing", "", []store.Filter{f("b", store.Ne, true)}, []string{"b", "d", "e"}},
		{"DottedPath", "", []store.Filter{f("nested.x", store.Gt, 10)}, []string{"b"}},
		{"DeeperPath", "", []store.Filter{f("nested.deeper.y", store.Eq, "k")}, []string{"a"}},
		{"PathThroughNonObject", "", []store.Filter{f("nested.x", store.Ne, 5)}, []string{"b", "c", "d", "e"}},
		{"MissingFieldEq", "", []store.Filter{f("absent", store.Eq, "x")}, nil},
		{"MissingFieldRange", "", []store.Filter{f("absent", store.Ge, 0)}, nil},
		{"MissingFieldNe", "", []store.Filter{f("absent", store.Ne, "x")}, []string{"a", "b", "c", "d", "e"}},
		{"TypeMismatchEq", "", []store.Filter{f("n", store.Eq, "9")}, nil},
		{"TypeMismatchRange", "", []store.Filter{f("s", store.Gt, 0)}, nil},
		{"TypeMismatchNe", "", []store.Filter{f("s", store.Ne, 9)}, []string{"a", "b", "c", "d", "e"}},
		{"KeywordFieldName", "", []store.Filter{f("value", store.Eq, "kw")}, []string{"a"}},
		{"AllMustMatch", "", []store.Filter{f("sev", store.Eq, "HIGH"), f("n", store.Gt, 5)}, []string{"c"}},
		{"WithPartition", "d2", nil, []string{"c", "d"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(t, s, store.Findings, store.Query{PartitionKey: tc.pk, Filters: tc.filters})
			if diff := cmp.Diff(tc.want, got, cmpEmpty); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })

func testInvalidQuery(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		c    store.Container
		q    store.Query
	}{
		{"UnknownContainer", store.Container("nope"), store.Query{}},
		{"NoField", store.Findings, store.Query{Filters: []store.Filter{{Op: store.Eq, Value: 1}}}},
		{"UnknownOp", store.Findings, store.Query{Filters: []store.Filter{{Field: "n", Op: "LIKE", Value: 1}}}},
		{"FieldWithSpace", store.Findings, store.Query{Filters: []store.Filter{{Field: "a b", Op: store.Eq, Value: 1}}}},
		{"FieldInjection", store.Findings, store.Query{Filters: []store.Filter{{Field: `n = 1 OR 1=1 --`, Op: store.Eq, Value: 1}}}},
		{"FieldBracket", store.Findings, store.Query{Filters: []store.Filter{{Field: `n"]`, Op: store.Eq, Value: 1}}}},
		{"EmptyPathPart", store.Findings, store.Query{Filters: []store.Filter{{Field: "a..b", Op: store.Eq, Value: 1}}}},
		{"SliceValue", store.Findings, store.Query{Filters: []store.Filter{{Field: "n", Op: store.Eq, Value: []string{"x"}}}}},
		{"NilValue", store.Findings, store.Query{Filters: []store.Filter{{Field: "n", Op: store.Eq}}}},
		{"NegativeLimit", store.Findings, store.Query{Limit: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Query(t.Context(), tc.c, tc.q)
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Query: err = %v, want ErrInvalid", err)
			}
		})
	}
}

func testPartition(t *testing.T, s store.Store) {
	// "a" is a prefix of "ab": a partition must not leak into its neighbour.
	for _, pk := range []string{"a", "ab", "b"} {
		for i := range 3 {
			id := fmt.Sprintf("%s-%d", pk, i)
			mustPut(t, s, store.Alerts, pk, id, doc{"id": id, "cluster": pk, "i": i})
		}
	}
	tests := []struct {
		pk      string
		filters []store.Filter
		want    []string
	}{
		{"a", nil, []string{"a-0", "a-1", "a-2"}},
		{"ab", nil, []string{"ab-0", "ab-1", "ab-2"}},
		{"ab", []store.Filter{{Field: "i", Op: store.Ge, Value: 1}}, []string{"ab-1", "ab-2"}},
		{"zz", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.pk, func(t *testing.T) {
			got := ids(t, s, store.Alerts, store.Query{PartitionKey: tc.pk, Filters: tc.filters})
			if diff := cmp.Diff(tc.want, got, cmpEmpty); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func testPaging(t *testing.T, s store.Store) {
	const n, partitions = 250, 5
	want := make([]string, 0, n)
	for i := range n {
		id := fmt.Sprintf("item-%03d", i)
		pk := fmt.Sprintf("p%d", i%partitions)
		mustPut(t, s, store.State, pk, id, doc{"id": id, "kind": pk, "i": i})
		want = append(want, id)
	}
	slices.Sort(want)

	tests := []struct {
		name  string
		q     store.Query
		want  []string
		pages int // at least
	}{
		{"AllPartitions", store.Query{Limit: 100}, want, 3},
		{"OnePartition", store.Query{PartitionKey: "p0", Limit: 20}, everyNth(want, partitions), 3},
		{"Filtered", store.Query{Limit: 100, Filters: []store.Filter{{Field: "i", Op: store.Lt, Value: 120}}}, want[:120], 2},
		{"DefaultLimit", store.Query{}, want, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			limit := tc.q.Limit
			if limit == 0 {
				limit = store.DefaultLimit
			}
			var got []string
			pages := 0
			q := tc.q
			for {
				page, err := s.Query(t.Context(), store.State, q)
				if err != nil {
					t.Fatalf("page %d: %v", pages+1, err)
				}
				pages++
				if len(page.Items) > limit {
					t.Errorf("page %d has %d items, limit %d", pages, len(page.Items), limit)
				}
				for _, raw := range page.Items {
					var d doc
					if err := json.Unmarshal(raw, &d); err != nil {
						t.Fatal(err)
					}
					got = append(got, d["id"].(string))
				}
				if page.Continuation == "" {
					break
				}
				if pages > 2*n {
					t.Fatal("paging does not end")
				}
				q.Continuation = page.Continuation
			}
			slices.Sort(got)
			if i := firstDuplicate(got); i >= 0 {
				t.Errorf("item %s seen more than once", got[i])
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if pages < tc.pages {
				t.Errorf("%d pages, want at least %d", pages, tc.pages)
			}
		})
	}
}

func everyNth(sorted []string, n int) []string {
	var out []string
	for i, s := range sorted {
		if i%n == 0 {
			out = append(out, s)
		}
	}
	return out
}

func testTooLarge(t *testing.T, s store.Store) {
	ctx := t.Context()
	big := item("d1", "big", doc{"blob": strings.Repeat("x", 3<<20)})
	_, err := s.Put(ctx, store.Inventory, "d1", "big", big, store.Cond{})
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("Put of a 3 MB item: err = %v, want ErrTooLarge", err)
	}
	var d doc
	if _, err := s.Get(ctx, store.Inventory, "d1", "big", &d); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after refused Put: err = %v, want ErrNotFound", err)
	}
	// Just under the limit is fine.
	fits := item("d1", "fits", doc{"blob": strings.Repeat("y", store.MaxItemBytes-200)})
	mustPut(t, s, store.Inventory, "d1", "fits", fits)
	if _, err := s.Get(ctx, store.Inventory, "d1", "fits", &d); err != nil {
		t.Fatalf("Get of an item under the limit: %v", err)
	}
	if got := len(d["blob"].(string)); got != store.MaxItemBytes-200 {
		t.Errorf("read back %d bytes of blob, wrote %d", got, store.MaxItemBytes-200)
	}
}

func testInvalid(t *testing.T, s store.Store) {
	tests := []struct {
		name   string
		c      store.Container
		pk, id string
		v      any
	}{
		{"IDMismatch", store.Images, "d1", "i1", item("d1", "other", nil)},
		{"PartitionKeyMismatch", store.Images, "d1", "i1", item("d2", "i1", nil)},
		{"PartitionKeyFieldMissing", store.Alerts, "c1", "i1", doc{"id": "i1"}},
		{"EmptyID", store.Images, "d1", "", item("d1", "", nil)},
		{"EmptyPartitionKey", store.Images, "", "i1", item("", "i1", nil)},
		{"UnknownContainer", store.Container("nope"), "d1", "i1", item("d1", "i1", nil)},
		{"NotAnObject", store.Images, "d1", "i1", "just a string"},
		{"SlashInID", store.Images, "d1", "a/b", item("d1", "a/b", nil)},
		{"HashInID", store.Images, "d1", "a#b", item("d1", "a#b", nil)},
		{"LongID", store.Images, "d1", strings.Repeat("i", 256), item("d1", strings.Repeat("i", 256), nil)},
		{"KeyedIDMismatch", store.Alerts, "c1", "a1", model.Alert{ID: "a2", Cluster: "c1"}},
		{"KeyedPartitionKeyMismatch", store.State, "k1", "s1", model.State{ID: "s1", Kind: "k2"}},
		{"UnencodableAlert", store.Alerts, "c1", "a1", model.Alert{ID: "a1", Cluster: "c1", LastSeen: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Put(t.Context(), tc.c, tc.pk, tc.id, tc.v, store.Cond{})
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("Put: err = %v, want ErrInvalid", err)
			}
		})
	}
	if got := ids(t, s, store.Images, store.Query{}); len(got) != 0 {
		t.Errorf("invalid puts wrote %q", got)
	}
	var d doc
	if _, err := s.Get(t.Context(), store.Images, "", "i1", &d); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Get with no partition key: err = %v, want ErrInvalid", err)
	}
}

func testConcurrentWriters(t *testing.T, s store.Store) {
	const writers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Go(func() {
			pk := fmt.Sprintf("c%d", w%2)
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				if _, err := s.Put(t.Context(), store.Alerts, pk, id, doc{"id": id, "cluster": pk}, store.Cond{}); err != nil {
					errs <- err
				}
				// Every writer also upserts the same shared item.
				if _, err := s.Put(t.Context(), store.Alerts, "c0", "shared", doc{"id": "shared", "cluster": "c0", "by": w}, store.Cond{}); err != nil {
					errs <- err
				}
				var d doc
				if _, err := s.Get(t.Context(), store.Alerts, pk, id, &d); err != nil {
					errs <- fmt.Errorf("read own write %s: %w", id, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := ids(t, s, store.Alerts, store.Query{})
	if len(got) != writers*each+1 {
		t.Errorf("container holds %d items, want %d", len(got), writers*each+1)
	}
}

// testConcurrentConditionalUpdates increments a counter from many
// goroutines with read-modify-write under IfMatch. Lost updates show up as
// a final count below the number of increments.
func testConcurrentConditional(t *testing.T, s store.Store) {
	const workers, each = 4, 8
	type counter struct {
		ID   string `json:"id"`
		Kind string `json:"kind"`
		N    int    `json:"n"`
	}
	mustPut(t, s, store.State, "counter", "c", counter{ID: "c", Kind: "counter"})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				for attempt := 0; ; attempt++ {
					if attempt > 200 {
						errs <- errors.New("no progress after 200 conditional attempts")
						return
					}
					var c counter
					etag, err := s.Get(t.Context(), store.State, "counter", "c", &c)
					if err != nil {
						errs <- err
						return
					}
					c.N++
					_, err = s.Put(t.Context(), store.State, "counter", "c", c, store.Cond{IfMatch: etag})
					if errors.Is(err, store.ErrPrecondition) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var c counter
	if _, err := s.Get(t.Context(), store.State, "counter", "c", &c); err != nil {
		t.Fatal(err)
	}
	if c.N != workers*each {
		t.Errorf("counter = %d after %d conditional increments", c.N, workers*each)
	}
}

// testTTL: an item with a ttl disappears that many seconds after its last
// write, from reads and queries alike, and can then be created again; a
// ttl of -1 or none keeps an item; a rewrite without ttl keeps it too; a
// ttl Cosmos DB refuses is invalid. It waits for real time to pass (about
// three seconds): Cosmos DB expires items by its own clock, counting from
// the whole second of the write (_ts), so a ttl of n lives at least n-1
// seconds.
func testTTL(t *testing.T, s store.Store) {
	ctx := t.Context()
	put := func(id string, ttl any, cond store.Cond) error {
		it := doc{"id": id, "kind": "ttl"}
		if ttl != nil {
			it["ttl"] = ttl
		}
		_, err := s.Put(ctx, store.State, "ttl", id, it, cond)
		return err
	}
	for id, ttl := range map[string]any{"short": 3, "forever": -1, "none": nil, "long": 3600, "rewritten": 1} {
		if err := put(id, ttl, store.Cond{}); err != nil {
			t.Fatalf("put %s: %v", id, err)
		}
	}
	if err := put("rewritten", nil, store.Cond{}); err != nil {
		t.Fatal(err)
	}
	// Items that say their own ttl (store.Expiring) are held to the same.
	for _, it := range []model.State{{ID: "keyed-short", Kind: "ttl", TTL: 3}, {ID: "keyed-forever", Kind: "ttl", TTL: -1}} {
		if _, err := s.Put(ctx, store.State, "ttl", it.ID, it, store.Cond{}); err != nil {
			t.Fatalf("put %s: %v", it.ID, err)
		}
	}
	var got doc
	if _, err := s.Get(ctx, store.State, "ttl", "short", &got); err != nil {
		t.Fatalf("short-lived item gone at once: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Get(ctx, store.State, "ttl", "short", &got)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("item with ttl 3 still there after 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// "rewritten" is past the expiry of its first write.
	want := []string{"forever", "keyed-forever", "long", "none", "rewritten"}
	if diff := cmp.Diff(want, ids(t, s, store.State, store.Query{PartitionKey: "ttl"})); diff != "" {
		t.Errorf("items after expiry (-want +got)\n%s", diff)
	}
	if err := put("short", 3600, store.Cond{IfNoneMatch: true}); err != nil {
		t.Errorf("create over an expired item: %v", err)
	}
	for _, bad := range []any{0, -2, 1.5, "60", 1 << 31} {
		if err := put("bad", bad, store.Cond{}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("ttl %v: err %v, want ErrInvalid", bad, err)
		}
	}
	for _, bad := range []int{-2, 1 << 31} {
		it := model.State{ID: "bad", Kind: "ttl", TTL: bad}
		if _, err := s.Put(ctx, store.State, "ttl", it.ID, it, store.Cond{}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("State with ttl %d: err %v, want ErrInvalid", bad, err)
		}
	}
}
