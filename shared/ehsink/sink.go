// Package ehsink sends queued messages to Event Hubs with the azeventhubs
// ProducerClient, for the cluster-side binaries (palisade-sensor,
// palisade-agent): batches bounded by size and by a flush interval, one
// partition key per sender (so its messages stay in order on one
// partition), each message's id as the Event Hubs message id (so a consumer
// can drop the duplicates that at-least-once delivery allows), Entra ID
// (workload identity) or a connection string, and retries with backoff for
// as long as the sender runs. A message leaves the queue (package queue,
// in memory or spooled on disk) only once Event Hubs has accepted its batch.
package ehsink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azeventhubs/v2"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/backoff"
	"github.com/palisade-sec/palisade/shared/ehsink/queue"
	"github.com/palisade-sec/palisade/shared/logging"
)

// MaxBatchBytes is the largest batch Event Hubs accepts (standard tier).
const MaxBatchBytes = 1 << 20

// Options configures the sink.
type Options struct {
	// ConnectionString, or Namespace (fully qualified, e.g.
	// "ns.servicebus.windows.net") with Credential. A nil Credential with a
	// Namespace means Entra ID through azidentity's default chain: workload
	// identity in AKS, a managed identity or AZURE_* variables elsewhere.
	ConnectionString string
	Namespace        string
	Credential       azcore.TokenCredential
	// EventHub is the hub name; it may be left empty when the connection
	// string names it (EntityPath).
	EventHub string
	// PartitionKey keeps one sender's messages in order on one partition
	// (at most 128 characters, the Event Hubs limit).
	PartitionKey string
	// ContentType is set on every message; default "application/json".
	ContentType string
	// ApplicationID names the client to Event Hubs (e.g. "palisade-sensor").
	ApplicationID string
	// MaxBatchBytes bounds a batch (at most MaxBatchBytes); MaxBatchEvents
	// bounds the events taken for one batch.
	MaxBatchBytes  int
	MaxBatchEvents int
	// FlushInterval is how long the first waiting event may wait for a
	// batch to fill.
	FlushInterval time.Duration
	// SendTimeout bounds one attempt to send a batch, the client's own
	// retries included.
	SendTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed attempts.
	MinBackoff, MaxBackoff time.Duration
	// ClientRetries is the client's own retry budget within one attempt, and
	// ClientRetryDelay its first delay (the client's default, 4 s, would
	// outlast SendTimeout before its third retry).
	ClientRetries    int32
	ClientRetryDelay time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.MaxBatchBytes <= 0 || o.MaxBatchBytes > MaxBatchBytes {
		o.MaxBatchBytes = MaxBatchBytes
	}
	if o.MaxBatchEvents <= 0 {
		o.MaxBatchEvents = 5000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.ClientRetries == 0 {
		o.ClientRetries = 3
	}
	if o.ClientRetryDelay <= 0 {
		o.ClientRetryDelay = 200 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ContentType == "" {
		o.ContentType = "application/json"
	}
	if o.ApplicationID == "" {
		o.ApplicationID = "palisade"
	}
}

// Observer is told what the sink does, for metrics.
type Observer interface {
	// Sent reports a batch Event Hubs accepted and how long the send took.
	Sent(events, bytes int, took time.Duration)
	// SendFailed reports a failed attempt.
	SendFailed(err error)
}

// Sink moves messages from a queue to Event Hubs.
type Sink struct {
	opts Options
	q    *queue.Queue
	pc   *azeventhubs.ProducerClient
	obs  Observer
	log  zerolog.Logger
}

// New creates the producer client. It does not connect: the first batch does.
func New(opts Options, q *queue.Queue, obs Observer, log zerolog.Logger) (*Sink, error) {
	opts.defaults()
	co := &azeventhubs.ProducerClientOptions{
		ApplicationID: opts.ApplicationID,
		RetryOptions: azeventhubs.RetryOptions{
			MaxRetries: opts.ClientRetries, RetryDelay: opts.ClientRetryDelay, MaxRetryDelay: opts.SendTimeout / 4,
		},
	}
	var pc *azeventhubs.ProducerClient
	var err error
	switch {
	case opts.ConnectionString != "":
		hub := opts.EventHub
		if hasEntityPath(opts.ConnectionString) {
			hub = "" // the client refuses a hub name given twice
		}
		pc, err = azeventhubs.NewProducerClientFromConnectionString(opts.ConnectionString, hub, co)
	case opts.Namespace != "" && opts.EventHub != "":
		cred := opts.Credential
		if cred == nil {
			if cred, err = azidentity.NewDefaultAzureCredential(nil); err != nil {
				return nil, fmt.Errorf("entra credential: %w", err)
			}
		}
		pc, err = azeventhubs.NewProducerClient(opts.Namespace, opts.EventHub, cred, co)
	default:
		return nil, errors.New("event hubs: need a connection string, or a namespace and hub name")
	}
	if err != nil {
		// The SDK's errors quote the connection string's parts: say only what failed.
		return nil, fmt.Errorf("event hubs producer client: %w", redact(err, opts.ConnectionString))
	}
	return &Sink{opts: opts, q: q, pc: pc, obs: obs, log: log.With().Str(logging.FieldComponent, "sink").Logger()}, nil
}

// redact keeps the secret out of an error that may quote its input.
func redact(err error, secret string) error {
	if secret != "" && strings.Contains(err.Error(), secret) {
		return errors.New("invalid connection string")
	}
	return err
}

// hasEntityPath reports whether a connection string names its hub.
func hasEntityPath(cs string) bool {
	for part := range strings.SplitSeq(cs, ";") {
		k, v, _ := strings.Cut(part, "=")
		if strings.EqualFold(strings.TrimSpace(k), "EntityPath") && strings.TrimSpace(v) != "" {
			return true
		}
	}
	return false
}

// Frame frames a message for the queue: the length of its id, the id (the
// Event Hubs message id, at most 255 bytes), then the body as sent. The
// sensor's spool holds these records, so the framing must stay readable by
// later versions.
func Frame(id string, body []byte) ([]byte, error) {
	if len(id) > 255 {
		return nil, fmt.Errorf("message id of %d bytes is too long", len(id))
	}
	rec := make([]byte, 0, 1+len(id)+len(body))
	rec = append(rec, byte(len(id)))
	rec = append(rec, id...)
	return append(rec, body...), nil
}

// split undoes Frame.
func split(rec []byte) (id string, body []byte, ok bool) {
	if len(rec) == 0 || len(rec) < 1+int(rec[0]) {
		return "", nil, false
	}
	n := int(rec[0])
	return string(rec[1 : 1+n]), rec[1+n:], true
}

// Run sends batches until ctx ends. It then returns; Drain sends the rest.
func (s *Sink) Run(ctx context.Context) {
	bo := backoff.Backoff{Min: s.opts.MinBackoff, Max: s.opts.MaxBackoff}
	var lingerUntil time.Time
	for ctx.Err() == nil {
		n, b := s.q.Pending()
		if n == 0 {
			lingerUntil = time.Time{}
			select {
			case <-s.q.Ready():
			case <-ctx.Done():
			}
			continue
		}
		if n < s.opts.MaxBatchEvents && b < int64(s.opts.MaxBatchBytes) {
			now := s.opts.Now()
			if lingerUntil.IsZero() {
				lingerUntil = now.Add(s.opts.FlushInterval)
			}
			if now.Before(lingerUntil) {
				t := time.NewTimer(lingerUntil.Sub(now))
				select {
				case <-s.q.Ready():
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
				continue
			}
		}
		lingerUntil = time.Time{}
		if err := s.sendOne(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.obs.SendFailed(err)
			d := bo.Next()
			s.log.Warn().Err(err).Dur("retry_in", d).Msg("send to event hubs failed")
			if !backoff.Sleep(ctx, d) {
				return
			}
			continue
		}
		bo.Reset()
	}
}

// Drain sends what is queued until the queue is empty or ctx ends, retrying
// failures. It reports how many events were left unsent.
func (s *Sink) Drain(ctx context.Context) int {
	bo := backoff.Backoff{Min: s.opts.MinBackoff, Max: s.opts.MaxBackoff}
	for {
		n, _ := s.q.Pending()
		if n == 0 || ctx.Err() != nil {
			return n
		}
		if err := s.sendOne(ctx); err != nil {
			if ctx.Err() != nil {
				n, _ := s.q.Pending()
				return n
			}
			s.obs.SendFailed(err)
			s.log.Warn().Err(err).Msg("send to event hubs failed while draining")
			backoff.Sleep(ctx, bo.Next())
		}
	}
}

// sendOne sends one batch of the oldest queued events.
func (s *Sink) sendOne(ctx context.Context) error {
	items, err := s.q.Take(s.opts.MaxBatchEvents, int64(s.opts.MaxBatchBytes))
	if err != nil {
		return fmt.Errorf("take from queue: %w", err)
	}
	if len(items) == 0 {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, s.opts.SendTimeout)
	defer cancel()
	start := s.opts.Now()
	key := s.opts.PartitionKey
	batch, err := s.pc.NewEventDataBatch(actx, &azeventhubs.EventDataBatchOptions{
		PartitionKey: &key, MaxBytes: uint64(s.opts.MaxBatchBytes),
	})
	if err != nil {
		s.q.Nack(items)
		return fmt.Errorf("new batch: %w", err)
	}
	contentType := s.opts.ContentType
	var bytes int
	for i := 0; i < len(items); i++ {
		id, body, ok := split(items[i].Data)
		if !ok {
			s.q.Drop(items[i:i+1], queue.ReasonRejected)
			items = append(items[:i], items[i+1:]...)
			i--
			continue
		}
		err := batch.AddEventData(&azeventhubs.EventData{Body: body, MessageID: &id, ContentType: &contentType}, nil)
		if errors.Is(err, azeventhubs.ErrEventDataTooLarge) {
			if batch.NumEvents() == 0 {
				s.log.Error().Str("id", id).Int("bytes", len(body)).Msg("event larger than a batch can hold: dropped")
				s.q.Drop(items[i:i+1], queue.ReasonTooLarge)
				items = append(items[:i], items[i+1:]...)
				i--
				continue
			}
			s.q.Nack(items[i:])
			items = items[:i]
			break
		}
		if err != nil {
			s.q.Nack(items)
			return fmt.Errorf("add event %s to batch: %w", id, err)
		}
		bytes += len(body)
	}
	if len(items) == 0 {
		return nil
	}
	if err := s.pc.SendEventDataBatch(actx, batch, nil); err != nil {
		s.q.Nack(items)
		return fmt.Errorf("send batch of %d events: %w", len(items), err)
	}
	s.q.Ack(items)
	s.obs.Sent(len(items), bytes, s.opts.Now().Sub(start))
	return nil
}

// Close closes the producer client.
func (s *Sink) Close(ctx context.Context) error {
	if err := s.pc.Close(ctx); err != nil {
		return fmt.Errorf("close event hubs producer: %w", err)
	}
	return nil
}
