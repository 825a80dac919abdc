package funchost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/palisade-sec/palisade/shared/logging"
)

// DeliverEventGrid delivers one Event Grid batch as the host does: each
// event is its own invocation, all in parallel. Any failure fails the
// delivery, and Event Grid then sends the whole batch again.
func (h *Host) DeliverEventGrid(ctx context.Context, function string, events []json.RawMessage, asString bool) error {
	f, ok := h.App.Functions[function]
	if !ok {
		return fmt.Errorf("no function named %q", function)
	}
	trig, _ := f.Trigger()
	if trig.Type != "eventGridTrigger" {
		return fmt.Errorf("function %s has a %s, not an eventGridTrigger", function, trig.Type)
	}
	errs := make([]error, len(events))
	var wg sync.WaitGroup
	for i, ev := range events {
		wg.Go(func() {
			p, err := EventGridPayload(trig.Name, function, ev, asString, h.Now())
			if err == nil {
				_, err = h.Invoke(ctx, function, p)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// EventGridSchedule is Event Grid's retry schedule after a failed delivery.
var eventGridSchedule = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}

// EventGridRetryDelay is the wait before delivery attempt n (1-based) of a
// batch that failed n times: 10 s, 30 s, 1 m, 5 m, 10 m, 30 m, then hourly.
func EventGridRetryDelay(n int) time.Duration {
	if n-1 < len(eventGridSchedule) {
		return eventGridSchedule[max(n-1, 0)]
	}
	return time.Hour
}

// PublishEventGrid plays Event Grid for a batch: it delivers it and, while
// the delivery fails, delivers the whole batch again after the retry
// schedule (scaled by h.RetryScale), up to maxAttempts or ctx's end.
func (h *Host) PublishEventGrid(ctx context.Context, function string, events []json.RawMessage, maxAttempts int) error {
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if err = h.DeliverEventGrid(ctx, function, events, false); err == nil {
			return nil
		}
		delay := h.scaled(EventGridRetryDelay(attempt))
		h.Log.Warn().Err(err).Str(logging.FieldFunction, function).Int("attempt", attempt).Dur("retry_in", delay).Msg("event grid delivery failed; the whole batch will be sent again")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
	return fmt.Errorf("event grid gave up after %d attempts: %w", maxAttempts, err)
}

// DeliverEventHubs delivers one Event Hubs batch as the trigger does. With
// a retry policy, a failed invocation is posted again with
// Metadata.RetryContext until it succeeds or the retries run out. Either way
// the batch is then checkpointed: it is never delivered again, so the
// returned error is only for reporting. attempts counts invocations.
func (h *Host) DeliverEventHubs(ctx context.Context, function string, pc PartitionContext, events []EventHubEvent) (attempts int, err error) {
	f, ok := h.App.Functions[function]
	if !ok {
		return 0, fmt.Errorf("no function named %q", function)
	}
	trig, _ := f.Trigger()
	if trig.Type != "eventHubTrigger" {
		return 0, fmt.Errorf("function %s has a %s, not an eventHubTrigger", function, trig.Type)
	}
	p, err := EventHubPayload(trig, function, pc, events, h.Now())
	if err != nil {
		return 1, fmt.Errorf("%w: %s: %v", ErrInvocation, function, err)
	}
	retry := f.Retry
	if retry == nil {
		retry = h.App.Host.Retry
	}
	for {
		attempts++
		if retry != nil {
			rc, _ := json.Marshal(map[string]any{"RetryCount": attempts - 1, "MaxRetryCount": retry.MaxRetryCount, "Exception": nil})
			p.Metadata["RetryContext"] = rc
		}
		_, err = h.Invoke(ctx, function, p)
		if err == nil || retry == nil || (retry.MaxRetryCount >= 0 && attempts > retry.MaxRetryCount) {
			if err != nil {
				h.Log.Error().Err(err).Str(logging.FieldFunction, function).Int("attempts", attempts).Msg("event hubs batch failed; checkpointed anyway, as the trigger does")
			}
			return attempts, err
		}
		select {
		case <-ctx.Done():
			return attempts, ctx.Err()
		case <-time.After(h.scaled(retryDelay(retry, attempts))):
		}
	}
}

func retryDelay(r *Retry, attempt int) time.Duration {
	if r.Strategy == "exponentialBackoff" {
		lo, _ := parseTimeSpan(r.MinimumInterval)
		hi, _ := parseTimeSpan(r.MaximumInterval)
		d := time.Duration(float64(lo) * math.Pow(2, float64(attempt-1)))
		if hi > 0 && d > hi {
			d = hi
		}
		return d
	}
	d, _ := parseTimeSpan(r.DelayInterval)
	return d
}

// RunTimers runs every timer-triggered function on its NCRONTAB schedule
// (with %SETTING% references resolved through getenv) until ctx ends.
// runOnStartup functions also run at once.
func (h *Host) RunTimers(ctx context.Context, getenv func(string) string) error {
	var wg sync.WaitGroup
	for _, name := range h.App.Names() {
		trig, _ := h.App.Functions[name].Trigger()
		if trig.Type != "timerTrigger" {
			continue
		}
		expr, err := ExpandSetting(trig.Schedule, getenv)
		if err != nil {
			return fmt.Errorf("function %s: %w", name, err)
		}
		sched, err := ParseSchedule(expr)
		if err != nil {
			return fmt.Errorf("function %s: %w", name, err)
		}
		h.Log.Info().Str(logging.FieldFunction, name).Str("schedule", expr).Time("next", sched.Next(h.Now())).Msg("timer scheduled")
		wg.Go(func() { h.runTimer(ctx, name, trig, sched) })
	}
	wg.Wait()
	return nil
}

func (h *Host) runTimer(ctx context.Context, name string, trig Binding, sched Schedule) {
	var last time.Time
	if trig.RunOnStartup {
		h.fireTimer(ctx, name, trig.Name, last, sched.Next(h.Now()), false)
		last = h.Now()
	}
	for {
		due := sched.Next(h.Now())
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(due)):
		}
		now := h.Now()
		h.fireTimer(ctx, name, trig.Name, last, sched.Next(now), now.Sub(due) > 10*time.Second)
		last = now
	}
}

// FireTimer invokes a timer function once, as its schedule would.
func (h *Host) FireTimer(ctx context.Context, function string) error {
	f, ok := h.App.Functions[function]
	if !ok {
		return fmt.Errorf("no function named %q", function)
	}
	trig, _ := f.Trigger()
	if trig.Type != "timerTrigger" {
		return fmt.Errorf("function %s has a %s, not a timerTrigger", function, trig.Type)
	}
	_, err := h.Invoke(ctx, function, TimerPayload(trig.Name, function, time.Time{}, h.Now(), false, h.Now()))
	return err
}

func (h *Host) fireTimer(ctx context.Context, name, binding string, last, next time.Time, pastDue bool) {
	if _, err := h.Invoke(ctx, name, TimerPayload(binding, name, last, next, pastDue, h.Now())); err != nil {
		// Timer failures are not retried, as in the host.
		h.Log.Error().Err(err).Str(logging.FieldFunction, name).Msg("timer invocation failed")
	}
}

// scaled shortens platform delays for tests (RetryScale 0 means 1).
func (h *Host) scaled(d time.Duration) time.Duration {
	if h.RetryScale > 0 {
		return time.Duration(float64(d) * h.RetryScale)
	}
	return d
}
