package falco

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/falcosecurity/client-go/pkg/api/outputs"
	"github.com/falcosecurity/client-go/pkg/client"
	"github.com/rs/zerolog"

	"github.com/palisade-sec/palisade/shared/backoff"
	"github.com/palisade-sec/palisade/shared/logging"
)

// GRPCOptions configures the gRPC input.
type GRPCOptions struct {
	// Address is Falco's gRPC server: "unix:///run/falco/falco.sock", or
	// "host:port" for the network server, which Falco only offers with mTLS.
	Address string
	// CertFile, KeyFile and CARootFile are the client certificate, its key
	// and the CA that signed Falco's certificate (network address only).
	CertFile, KeyFile, CARootFile string
	// PollInterval is how long the stream may be idle before the input asks
	// Falco again for new events (Falco's sub service answers requests).
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the delay between reconnections.
	MinBackoff, MaxBackoff time.Duration
}

func (o *GRPCOptions) defaults() {
	if o.Address == "" {
		o.Address = "unix:///run/falco/falco.sock"
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
}

// GRPCInput subscribes to Falco's outputs service and passes every event to
// a Receiver, reconnecting with backoff whenever the stream breaks (Falco
// restarting, socket missing).
type GRPCInput struct {
	opts GRPCOptions
	recv Receiver
	log  zerolog.Logger
}

// NewGRPCInput returns an input for opts (defaults applied).
func NewGRPCInput(opts GRPCOptions, recv Receiver, log zerolog.Logger) *GRPCInput {
	opts.defaults()
	return &GRPCInput{opts: opts, recv: recv, log: log.With().Str(logging.FieldComponent, "grpc-input").Logger()}
}

// clientConfig maps the address onto client-go's configuration.
func (g *GRPCInput) clientConfig() (*client.Config, error) {
	if strings.HasPrefix(g.opts.Address, "unix://") {
		return &client.Config{UnixSocketPath: g.opts.Address}, nil
	}
	host, port, err := net.SplitHostPort(g.opts.Address)
	if err != nil {
		return nil, fmt.Errorf("falco grpc address %q: %w", g.opts.Address, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("falco grpc address %q: port: %w", g.opts.Address, err)
	}
	if g.opts.CertFile == "" || g.opts.KeyFile == "" || g.opts.CARootFile == "" {
		return nil, errors.New("falco grpc over the network needs a client certificate, key and CA (Falco requires mTLS)")
	}
	return &client.Config{
		Hostname: host, Port: uint16(p),
		CertFile: g.opts.CertFile, KeyFile: g.opts.KeyFile, CARootFile: g.opts.CARootFile,
	}, nil
}

// Run receives until ctx ends. It returns an error only for a configuration
// that can never work; connection problems are retried.
func (g *GRPCInput) Run(ctx context.Context) error {
	cfg, err := g.clientConfig()
	if err != nil {
		return err
	}
	c, err := client.NewForConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("falco grpc client: %w", err)
	}
	defer c.Close()
	oc, err := c.Outputs()
	if err != nil {
		return fmt.Errorf("falco grpc outputs client: %w", err)
	}
	bo := backoff.Backoff{Min: g.opts.MinBackoff, Max: g.opts.MaxBackoff}
	for {
		n, err := g.watch(ctx, oc)
		if ctx.Err() != nil {
			return nil
		}
		if n > 0 {
			bo.Reset()
		}
		d := bo.Next()
		g.log.Warn().Err(err).Int(logging.FieldCount, n).Dur("retry_in", d).Msg("falco grpc stream ended; reconnecting")
		if !backoff.Sleep(ctx, d) {
			return nil
		}
	}
}

// watch runs one subscription and returns how many events it delivered and
// why it ended.
func (g *GRPCInput) watch(ctx context.Context, oc outputs.ServiceClient) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := oc.Sub(ctx)
	if err != nil {
		return 0, fmt.Errorf("subscribe: %w", err)
	}
	if err := stream.Send(&outputs.Request{}); err != nil {
		return 0, fmt.Errorf("subscribe request: %w", err)
	}
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	go func() {
		// Falco answers each request with what it has queued, so ask again
		// whenever the stream has been quiet for a poll interval.
		t := time.NewTicker(g.opts.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if now.UnixNano()-last.Load() >= int64(g.opts.PollInterval) {
					if stream.Send(&outputs.Request{}) != nil {
						return // Recv reports the stream's error.
					}
				}
			}
		}
	}()
	n := 0
	for {
		res, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, errors.New("falco closed the stream")
			}
			return n, fmt.Errorf("receive: %w", err)
		}
		last.Store(time.Now().UnixNano())
		ev, err := FromResponse(res)
		if err != nil {
			g.recv.Invalid("grpc", err)
			continue
		}
		n++
		g.recv.Receive(ev, "grpc")
	}
}
