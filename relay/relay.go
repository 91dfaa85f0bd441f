// Package relay moves committed events from the outbox to their consumers: to RabbitMQ
// (broker.Publisher), or within one process straight to the consumers (Local). An event
// leaves the outbox only once its publish succeeded, so it is delivered at least once.
package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/events"
)

// Outbox is where the events wait (storage.Outbox).
type Outbox interface {
	Relay(ctx context.Context, max int, publish func(ctx context.Context, evs []events.Event) error) (int, error)
}

// Publisher takes messages and returns nil once they are safe (broker.Publisher, Local).
type Publisher interface {
	Publish(ctx context.Context, msgs []broker.Message) error
}

// Observer hears what the relay does; its methods must be cheap.
type Observer interface {
	Relayed(n int)
	RelayFailed(err error)
}

// ContentType is the content type of a structured CloudEvent.
const ContentType = "application/cloudevents+json"

// Message is e as it goes on the wire.
func Message(e events.Event) (broker.Message, error) {
	b, err := events.Marshal(e)
	if err != nil {
		return broker.Message{}, err
	}
	m := broker.Message{ID: e.ID, RoutingKey: string(e.Type), ContentType: ContentType, Body: b, Time: e.Time}
	if e.TraceParent != "" { // the request that wrote it was traced: its publish joins that trace
		m.Headers = map[string]string{"traceparent": e.TraceParent}
		if e.TraceState != "" {
			m.Headers["tracestate"] = e.TraceState
		}
	}
	return m, nil
}

// Config tunes a Relay; the zero value takes the defaults.
type Config struct {
	Batch          int           // events per publish (100)
	Interval       time.Duration // how often an idle relay looks for events written elsewhere (200 ms)
	PublishTimeout time.Duration // bounds one claim-and-publish (5 s)
	MaxBackoff     time.Duration // longest wait after failures in a row (5 s)
	// Coalesce is how long a woken relay waits for more commits to join the batch (5 ms).
	Coalesce time.Duration
}

func (c Config) withDefaults() Config {
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.Interval <= 0 {
		c.Interval = 200 * time.Millisecond
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.Coalesce <= 0 {
		c.Coalesce = 5 * time.Millisecond
	}
	return c
}

// Relay publishes the outbox's events. Any number of relays, in any number of processes, may
// run on one outbox: the outbox hands each waiting event to one of them at a time.
type Relay struct {
	out  Outbox
	pub  Publisher
	cfg  Config
	obs  Observer
	wake chan struct{}
}

// New returns a relay from out to pub; obs may be nil.
func New(out Outbox, pub Publisher, cfg Config, obs Observer) *Relay {
	return &Relay{out: out, pub: pub, cfg: cfg.withDefaults(), obs: obs, wake: make(chan struct{}, 1)}
}

// Wake tells a running relay that an event was committed: it relays within Coalesce instead
// of at its next look (Interval), so an event written through this process leaves in
// milliseconds; events written elsewhere still wait for a look. It never blocks, and wakes
// given while the relay works count once. It does not cut short the backoff after failures.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Once claims and publishes one batch, and reports how many events it relayed.
func (r *Relay) Once(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	n, err := r.out.Relay(ctx, r.cfg.Batch, r.publish)
	if r.obs != nil {
		if err != nil {
			r.obs.RelayFailed(err)
		} else if n > 0 {
			r.obs.Relayed(n)
		}
	}
	return n, err
}

func (r *Relay) publish(ctx context.Context, evs []events.Event) error {
	msgs := make([]broker.Message, len(evs))
	for i, e := range evs {
		m, err := Message(e)
		if err != nil {
			return fmt.Errorf("relay: event %s: %w", e.ID, err)
		}
		msgs[i] = m
	}
	return r.pub.Publish(ctx, msgs)
}

// Run relays until ctx ends, and returns its error. A full batch is followed at once by the
// next; an empty outbox waits for Interval; failures in a row wait longer each time, up to
// MaxBackoff.
func (r *Relay) Run(ctx context.Context) error {
	failures := 0
	for {
		n, err := r.Once(ctx)
		wait := r.cfg.Interval
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			failures++
			wait = min(r.cfg.Interval<<min(failures, 10), r.cfg.MaxBackoff)
		case n == r.cfg.Batch:
			failures = 0
			continue
		default:
			failures = 0
		}
		var woken <-chan struct{}
		if failures == 0 {
			woken = r.wake
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		case <-woken:
			// Let the commits of the next few milliseconds join this one's batch.
			t.Reset(r.cfg.Coalesce)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}

// Drain relays until the outbox has nothing left for it, or the first failure: for shutdown
// and tests.
func (r *Relay) Drain(ctx context.Context) error {
	for {
		n, err := r.Once(ctx)
		if err != nil {
			return err
		}
		if n < r.cfg.Batch {
			return nil
		}
	}
}
