// Package cosmos is the Cosmos DB (NoSQL API) store, used in Azure.
//
// New creates the database and the containers of design.md §3 when they are
// missing, partitioned on each container's partition key field. Items are
// stored as given; what Get and Query return also carries the system
// properties Cosmos DB adds (_rid, _self, _etag, _attachments, _ts), which
// the model types ignore when decoding.
//
// Throttling (HTTP 429) and other transient failures are retried by the
// azcore retry policy, which waits as long as the x-ms-retry-after-ms or
// Retry-After header asks, up to Options.MaxRetries times and never past the
// context's deadline.
package cosmos

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/palisade-sec/palisade/shared/store"
)

var (
	_ store.Store       = (*Store)(nil)
	_ store.Batcher     = (*Store)(nil)
	_ store.MultiGetter = (*Store)(nil)
)

// Options configures New.
type Options struct {
	// Endpoint is the account endpoint, e.g.
	// https://ACCOUNT.documents.azure.com:443/. Required.
	Endpoint string
	// Key is the account key. Empty: authenticate with Credential.
	Key string
	// Credential is the process's Entra ID credential (managed identity,
	// workload identity, az login), used when Key is empty.
	Credential azcore.TokenCredential
	// Database is created when missing. Default "palisade".
	Database string
	// HTTPClient sends the requests. Default: azcosmos's client.
	HTTPClient *http.Client
	// InsecureLoopbackTLS skips TLS certificate verification, for local
	// Cosmos DB servers with self-signed certificates. New refuses it unless
	// the endpoint's host is a loopback address. Ignored when HTTPClient is
	// set.
	InsecureLoopbackTLS bool
	// MaxRetries bounds the retries of a throttled (429) or otherwise
	// transiently failed request. Default 9; negative means none.
	MaxRetries int
	// MaxRetryDelay caps one wait between retries. A throttled response
	// asking for a longer wait is returned as an error. Default 30s.
	MaxRetryDelay time.Duration
}

func (o Options) withDefaults() Options {
	if o.Database == "" {
		o.Database = "palisade"
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 9
	}
	if o.MaxRetryDelay <= 0 {
		o.MaxRetryDelay = 30 * time.Second
	}
	return o
}

// Store is the Cosmos DB store. Create it with New.
type Store struct {
	client     *azcosmos.Client
	database   string
	containers map[store.Container]*azcosmos.ContainerClient
	batches    batchState
}

// New connects to the account, creates the database and containers when
// missing, and returns the store.
func New(ctx context.Context, o Options) (*Store, error) {
	o = o.withDefaults()
	u, err := url.Parse(o.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("cosmos endpoint %q is not an http(s) URL", o.Endpoint)
	}
	copts := &azcosmos.ClientOptions{}
	copts.Retry = policy.RetryOptions{
		MaxRetries:    int32(o.MaxRetries),
		RetryDelay:    200 * time.Millisecond,
		MaxRetryDelay: o.MaxRetryDelay,
		// Not 500: a write that failed inside the service may have happened.
		StatusCodes: []int{
			http.StatusRequestTimeout,
			http.StatusTooManyRequests,
			449, // Retry With: a concurrent update conflicted inside the service
			http.StatusBadGateway,
			http.StatusServiceUnavailable,
			http.StatusGatewayTimeout,
		},
	}
	switch {
	case o.HTTPClient != nil:
		copts.Transport = o.HTTPClient
	case o.InsecureLoopbackTLS:
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("cosmos endpoint %s: refusing to skip TLS verification for a host that is not loopback (127.0.0.1, ::1, localhost)", o.Endpoint)
		}
		copts.Transport = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback only, checked above
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}}
	}

	var client *azcosmos.Client
	if o.Key != "" {
		cred, err := azcosmos.NewKeyCredential(o.Key)
		if err != nil {
			return nil, fmt.Errorf("cosmos account key: %w", err)
		}
		client, err = azcosmos.NewClientWithKey(o.Endpoint, cred, copts)
		if err != nil {
			return nil, fmt.Errorf("cosmos client for %s: %w", o.Endpoint, err)
		}
	} else {
		if o.Credential == nil {
			return nil, fmt.Errorf("cosmos %s: no account key and no Entra ID credential", o.Endpoint)
		}
		var err error
		client, err = azcosmos.NewClient(o.Endpoint, o.Credential, copts)
		if err != nil {
			return nil, fmt.Errorf("cosmos client for %s: %w", o.Endpoint, err)
		}
	}

	s := &Store{client: client, database: o.Database, containers: map[store.Container]*azcosmos.ContainerClient{}}
	if err := s.ensure(ctx); err != nil {
		client.Close()
		return nil, err
	}
	return s, nil
}

// ensure creates the database and containers that are missing. It reads
// before it creates: with Entra ID data-plane roles only (as the Terraform
// grants), reads of metadata are allowed but creation is not, and the
// database and containers already exist.
func (s *Store) ensure(ctx context.Context) error {
	db, err := s.client.NewDatabase(s.database)
	if err != nil {
		return fmt.Errorf("cosmos database %s: %w", s.database, err)
	}
	if _, err := db.Read(ctx, nil); statusOf(err) == http.StatusNotFound {
		_, err = s.client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: s.database}, nil)
		if err != nil && statusOf(err) != http.StatusConflict {
			return fmt.Errorf("create cosmos database %s (it does not exist; create it, e.g. with the Terraform in infra/, or use a key that may): %w", s.database, err)
		}
	} else if err != nil {
		return fmt.Errorf("read cosmos database %s: %w", s.database, err)
	}
	for _, c := range store.Containers() {
		cc, err := db.NewContainer(string(c))
		if err != nil {
			return fmt.Errorf("cosmos container %s/%s: %w", s.database, c, err)
		}
		if _, err := cc.Read(ctx, nil); statusOf(err) == http.StatusNotFound {
			// A default TTL of -1 turns TTL on without expiring anything, so
			// that items that carry "ttl" (alerts) expire and others stay.
			ttl := int32(-1)
			props := azcosmos.ContainerProperties{
				ID:                     string(c),
				PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/" + c.PartitionKeyField()}},
				DefaultTimeToLive:      &ttl,
			}
			if _, err := db.CreateContainer(ctx, props, nil); err != nil && statusOf(err) != http.StatusConflict {
				return fmt.Errorf("create cosmos container %s/%s: %w", s.database, c, err)
			}
		} else if err != nil {
			return fmt.Errorf("read cosmos container %s/%s: %w", s.database, c, err)
		}
		s.containers[c] = cc
	}
	return nil
}

// Close releases the client's caches.
func (s *Store) Close() error {
	s.client.Close()
	return nil
}

func (s *Store) container(c store.Container) (*azcosmos.ContainerClient, error) {
	cc, ok := s.containers[c]
	if !ok {
		return nil, fmt.Errorf("%w: unknown container %q", store.ErrInvalid, c)
	}
	return cc, nil
}

// Put writes v: an upsert, a create (IfNoneMatch) or a conditional replace
// (IfMatch).
func (s *Store) Put(ctx context.Context, c store.Container, pk, id string, v any, cond store.Cond) (string, error) {
	body, _, err := store.Validate(c, pk, id, v)
	if err != nil {
		return "", err
	}
	return s.putBody(ctx, c, pk, id, body, cond)
}

// putBody writes an item already encoded and checked by store.Validate.
func (s *Store) putBody(ctx context.Context, c store.Container, pk, id string, body []byte, cond store.Cond) (string, error) {
	cc, err := s.container(c)
	if err != nil {
		return "", err
	}
	key := azcosmos.NewPartitionKeyString(pk)
	var resp azcosmos.ItemResponse
	switch {
	case cond.IfMatch != "":
		etag := azcore.ETag(cond.IfMatch)
		resp, err = cc.ReplaceItem(ctx, key, id, body, &azcosmos.ItemOptions{IfMatchEtag: &etag})
		if code := statusOf(err); code == http.StatusNotFound || code == http.StatusPreconditionFailed {
			return "", fmt.Errorf("replace %s item %q in partition %q: item changed or gone (HTTP %d): %w", c, id, pk, code, store.ErrPrecondition)
		}
	case cond.IfNoneMatch:
		resp, err = cc.CreateItem(ctx, key, body, nil)
		if statusOf(err) == http.StatusConflict {
			return "", fmt.Errorf("create %s item %q in partition %q: it exists: %w", c, id, pk, store.ErrPrecondition)
		}
	default:
		resp, err = cc.UpsertItem(ctx, key, body, nil)
	}
	if err != nil {
		return "", s.writeError(c, pk, id, err)
	}
	return string(resp.ETag), nil
}

func (s *Store) writeError(c store.Container, pk, id string, err error) error {
	switch statusOf(err) {
	case http.StatusRequestEntityTooLarge:
		return fmt.Errorf("write %s item %q in partition %q: refused by Cosmos DB as too large: %w", c, id, pk, store.ErrTooLarge)
	case http.StatusBadRequest:
		return fmt.Errorf("write %s item %q in partition %q: %w: %w", c, id, pk, store.ErrInvalid, err)
	case http.StatusPreconditionFailed:
		return fmt.Errorf("write %s item %q in partition %q: %w", c, id, pk, store.ErrPrecondition)
	}
	return fmt.Errorf("write %s item %q in partition %q: %w", c, id, pk, err)
}

// Get reads the item at pk and id into v.
func (s *Store) Get(ctx context.Context, c store.Container, pk, id string, v any) (string, error) {
	cc, err := s.container(c)
	if err != nil {
		return "", err
	}
	if pk == "" || id == "" {
		return "", fmt.Errorf("%w: %s item needs an id and a %s (got id %q, %s %q)", store.ErrInvalid, c, c.PartitionKeyField(), id, c.PartitionKeyField(), pk)
	}
	if err := store.CheckID(c, id); err != nil {
		return "", err
	}
	resp, err := cc.ReadItem(ctx, azcosmos.NewPartitionKeyString(pk), id, nil)
	if statusOf(err) == http.StatusNotFound {
		return "", fmt.Errorf("get %s item %q in partition %q: %w", c, id, pk, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("get %s item %q in partition %q: %w", c, id, pk, err)
	}
	if err := json.Unmarshal(resp.Value, v); err != nil {
		return "", fmt.Errorf("decode %s item %q into %T: %w", c, id, v, err)
	}
	return string(resp.ETag), nil
}

// Delete removes the item at pk and id; a missing item is not an error.
func (s *Store) Delete(ctx context.Context, c store.Container, pk, id string) error {
	cc, err := s.container(c)
	if err != nil {
		return err
	}
	if pk == "" || id == "" {
		return fmt.Errorf("%w: %s item needs an id and a %s (got id %q, %s %q)", store.ErrInvalid, c, c.PartitionKeyField(), id, c.PartitionKeyField(), pk)
	}
	if err := store.CheckID(c, id); err != nil {
		return err
	}
	_, err = cc.DeleteItem(ctx, azcosmos.NewPartitionKeyString(pk), id, nil)
	if err != nil && statusOf(err) != http.StatusNotFound {
		return fmt.Errorf("delete %s item %q in partition %q: %w", c, id, pk, err)
	}
	return nil
}

// statusOf returns the HTTP status of a Cosmos DB error, or 0.
func statusOf(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
