package falco

import (
	"context"
	"math/rand/v2"
	"time"
)

// Receiver takes what the inputs receive. Receive must not block for long:
// the inputs call it on Falco's delivery path.
type Receiver interface {
	// Receive takes one decoded event; input names the input ("grpc", "http").
	Receive(ev Event, input string)
	// Invalid counts one input that could not be decoded.
	Invalid(input string, err error)
}

// Backoff is an exponential backoff with full jitter.
type Backoff struct {
	Min, Max time.Duration
	attempt  int
}

// Next returns the delay before the next attempt.
func (b *Backoff) Next() time.Duration {
	d := b.Min << min(b.attempt, 30)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	b.attempt++
	// Half fixed, half random: spreads reconnecting sensors without ever
	// retrying at once.
	return d/2 + rand.N(d/2+1)
}

// Reset starts the sequence again after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// sleep waits d or until ctx ends, reporting whether the full d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
