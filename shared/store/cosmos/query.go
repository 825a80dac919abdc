package cosmos

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/palisade-sec/palisade/shared/store"
)

// Query returns one page of the items of c matching q. With a partition key
// it is a single-partition query; without one the gateway fans it out over
// every partition, which it can do for the plain filters built here.
func (s *Store) Query(ctx context.Context, c store.Container, q store.Query) (store.Page, error) {
	cc, err := s.container(c)
	if err != nil {
		return store.Page{}, err
	}
	if err := store.CheckQuery(q); err != nil {
		return store.Page{}, err
	}
	filters := q.Filters
	key := azcosmos.NewPartitionKey()
	if q.PartitionKey != "" {
		key = azcosmos.NewPartitionKeyString(q.PartitionKey)
		// Cosmos DB scopes the query by the key alone; the same condition in
		// the SQL costs nothing there and keeps servers that ignore the
		// partition key header (the loopback test server) honest.
		filters = append([]store.Filter{{Field: c.PartitionKeyField(), Op: store.Eq, Value: q.PartitionKey}}, filters...)
	}
	sql, params := buildSQL(filters)
	limit := q.Limit
	if limit == 0 {
		limit = store.DefaultLimit
	}
	opts := &azcosmos.QueryOptions{
		QueryParameters: params,
		PageSizeHint:    int32(limit),
	}
	if q.Continuation != "" {
		opts.ContinuationToken = &q.Continuation
	}
	pager := cc.NewQueryItemsPager(sql, key, opts)
	resp, err := pager.NextPage(ctx)
	if err != nil {
		return store.Page{}, fmt.Errorf("query %s (%s): %w", c, sql, err)
	}
	page := store.Page{Items: make([]json.RawMessage, len(resp.Items))}
	for i, it := range resp.Items {
		page.Items[i] = it
	}
	if resp.ContinuationToken != nil {
		page.Continuation = *resp.ContinuationToken
	}
	return page, nil
}

var sqlOps = map[store.Op]string{
	store.Eq: "=", store.Ne: "!=", store.Gt: ">", store.Ge: ">=", store.Lt: "<", store.Le: "<=",
}

// buildSQL turns filters (checked by store.CheckQuery, so every field is a
// dotted path of identifiers) into a parameterised query. Fields are written
// as c["a"]["b"] so that names that are SQL keywords (value, select, ...)
// work. Ne also matches a missing field, as in the embedded store.
func buildSQL(filters []store.Filter) (string, []azcosmos.QueryParameter) {
	if len(filters) == 0 {
		return "SELECT * FROM c", nil
	}
	var b strings.Builder
	b.WriteString("SELECT * FROM c WHERE ")
	params := make([]azcosmos.QueryParameter, 0, len(filters))
	for i, f := range filters {
		if i > 0 {
			b.WriteString(" AND ")
		}
		field := fieldRef(f.Field)
		name := "@p" + strconv.Itoa(i)
		if f.Op == store.Ne {
			fmt.Fprintf(&b, "(NOT IS_DEFINED(%s) OR %s != %s)", field, field, name)
		} else {
			fmt.Fprintf(&b, "%s %s %s", field, sqlOps[f.Op], name)
		}
		params = append(params, azcosmos.QueryParameter{Name: name, Value: f.Value})
	}
	return b.String(), params
}

func fieldRef(path string) string {
	var b strings.Builder
	b.WriteString("c")
	for _, part := range strings.Split(path, ".") {
		b.WriteString(`["`)
		b.WriteString(part)
		b.WriteString(`"]`)
	}
	return b.String()
}

// maxIDsPerQuery bounds the ids one GetMany query asks for.
const maxIDsPerQuery = 100

// GetMany reads the items at keys with one query a partition key (and a
// hundred ids), instead of one point read an item.
func (s *Store) GetMany(ctx context.Context, c store.Container, keys []store.Key) ([]store.Item, error) {
	cc, err := s.container(c)
	if err != nil {
		return nil, err
	}
	byPK := map[string][]int{}
	var pks []string
	for i, k := range keys {
		if k.PK == "" || k.ID == "" {
			return nil, fmt.Errorf("%w: %s item needs an id and a %s (got id %q, %s %q)", store.ErrInvalid, c, c.PartitionKeyField(), k.ID, c.PartitionKeyField(), k.PK)
		}
		if err := store.CheckID(c, k.ID); err != nil {
			return nil, err
		}
		if _, ok := byPK[k.PK]; !ok {
			pks = append(pks, k.PK)
		}
		byPK[k.PK] = append(byPK[k.PK], i)
	}
	out := make([]store.Item, len(keys))
	field := c.PartitionKeyField()
	for _, pk := range pks {
		idx := byPK[pk]
		for len(idx) > 0 {
			chunk := idx[:min(len(idx), maxIDsPerQuery)]
			idx = idx[len(chunk):]
			ids := make([]string, len(chunk))
			where := map[string]int{}
			for j, i := range chunk {
				ids[j] = keys[i].ID
				where[keys[i].ID] = i
			}
			sql := "SELECT * FROM c WHERE c." + field + " = @pk AND ARRAY_CONTAINS(@ids, c.id)"
			pager := cc.NewQueryItemsPager(sql, azcosmos.NewPartitionKeyString(pk), &azcosmos.QueryOptions{
				QueryParameters: []azcosmos.QueryParameter{{Name: "@pk", Value: pk}, {Name: "@ids", Value: ids}},
				PageSizeHint:    int32(len(ids)),
			})
			for pager.More() {
				resp, err := pager.NextPage(ctx)
				if err != nil {
					return nil, fmt.Errorf("read %d %s items in partition %q: %w", len(ids), c, pk, err)
				}
				for _, raw := range resp.Items {
					var head struct {
						ID   string `json:"id"`
						ETag string `json:"_etag"`
					}
					if err := json.Unmarshal(raw, &head); err != nil {
						return nil, fmt.Errorf("decode %s item in partition %q: %w", c, pk, err)
					}
					if i, ok := where[head.ID]; ok {
						out[i] = store.Item{Raw: raw, ETag: head.ETag}
					}
				}
			}
		}
	}
	return out, nil
}
