// Package invalidation drops the cache entries a committed change made stale, derived from the
// change's events (the outbox's), not from what a handler remembers. It does so twice over:
//
//   - at once, on the writer's goroutine, when the store reports the commit (Committed, a
//     storage.Committed observer), so that the write's answer is never followed by a stale
//     read, on any instance sharing the cache;
//   - again when the event is delivered to the cache consumer (Handler), from the outbox
//     through RabbitMQ or the in-process relay, so that an invalidation that failed (the cache
//     was away, the process died between commit and invalidation) still happens.
//
// Until an invalidation has reached the cache, this instance bypasses the keys it names
// (Bypassed), and retries them (Run). Invalidating is idempotent, so doing it twice, or once
// per instance, changes nothing but a family's version.
package invalidation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/cachekeys"
	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/storage"
)

// Cache is what the invalidator needs of storage.Cache.
type Cache interface {
	Invalidate(ctx context.Context, keys, families []string) error
}

// Config tunes an Invalidator; the zero value takes the defaults.
type Config struct {
	Timeout time.Duration // bounds one call to the cache (2 s)
	// QuickTimeout bounds the in-process consumer's call (250 ms): it runs inside the outbox's
	// claim, which on SQLite holds the write lock, so a cache that does not answer must cost
	// writes little; the event simply comes again.
	QuickTimeout time.Duration
	RetryEach    time.Duration // how often Run retries the pending keys (500 ms)
	MaxBackoff   time.Duration // the longest wait of a waiting Handler between tries (5 s)
	// After is the clock of the waits (time.After); tests give one that does not sleep.
	After func(time.Duration) <-chan time.Time
	Log   *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.QuickTimeout <= 0 {
		c.QuickTimeout = 250 * time.Millisecond
	}
	if c.RetryEach <= 0 {
		c.RetryEach = 500 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.After == nil {
		c.After = time.After
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Invalidator invalidates the cache from events, and remembers what it could not invalidate.
// It is safe for concurrent use.
type Invalidator struct {
	cache Cache
	cfg   Config

	mu      sync.Mutex
	gen     uint64
	pending map[string]uint64 // "key k" or "family f" → the generation it was last marked at
	wake    chan struct{}
}

var _ storage.Committed = (*Invalidator)(nil).Committed

// New returns an invalidator of cache.
func New(cache Cache, cfg Config) *Invalidator {
	return &Invalidator{cache: cache, cfg: cfg.withDefaults(), pending: map[string]uint64{}, wake: make(chan struct{}, 1)}
}

// Committed implements storage.Committed: it invalidates what evs name before the write
// returns. On failure the write has still succeeded: the keys are marked pending (bypassed
// here, retried by Run), and the events, which are in the outbox, invalidate them again when
// the cache consumer gets them, on whichever instance.
func (i *Invalidator) Committed(ctx context.Context, evs []events.Event) {
	set, err := cachekeys.ForAll(evs)
	if err != nil {
		// Events the store just wrote always decode; this would be a bug, which the consumer
		// will dead-letter and an operator see.
		i.cfg.Log.Error("cache invalidation: an event of this commit names no keys", "error", err.Error())
		return
	}
	if set.Empty() {
		return
	}
	if err := i.apply(context.WithoutCancel(ctx), set); err != nil {
		i.cfg.Log.Warn("cache invalidation failed; bypassing the keys until a retry or the event's delivery succeeds",
			"keys", strings.Join(set.Keys, ","), "families", strings.Join(set.Families, ","), "error", err.Error())
	}
}

// apply invalidates set. On success it clears the pending marks of set's members that no
// failure has marked again meanwhile; on failure it marks them all.
func (i *Invalidator) apply(ctx context.Context, set cachekeys.Set) error {
	return i.applyWithin(ctx, set, i.cfg.Timeout)
}

func (i *Invalidator) applyWithin(ctx context.Context, set cachekeys.Set, timeout time.Duration) error {
	names := markNames(set)
	i.mu.Lock()
	seen := make(map[string]uint64, len(names))
	for _, n := range names {
		if g, ok := i.pending[n]; ok {
			seen[n] = g
		}
	}
	i.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := i.cache.Invalidate(ctx, set.Keys, set.Families)
	i.mu.Lock()
	defer i.mu.Unlock()
	if err != nil {
		i.gen++
		for _, n := range names {
			i.pending[n] = i.gen
		}
		select {
		case i.wake <- struct{}{}:
		default:
		}
		return err
	}
	for n, g := range seen {
		if i.pending[n] == g {
			delete(i.pending, n)
		}
	}
	return nil
}

func markNames(set cachekeys.Set) []string {
	out := make([]string, 0, len(set.Keys)+len(set.Families))
	for _, k := range set.Keys {
		out = append(out, "key "+k)
	}
	for _, f := range set.Families {
		out = append(out, "family "+f)
	}
	return out
}

// Bypassed reports whether key (or family; either may be "") awaits an invalidation on this
// instance: until it lands, reads here must not be served from the cache.
func (i *Invalidator) Bypassed(key, family string) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.pending) == 0 {
		return false
	}
	if _, ok := i.pending["key "+key]; ok && key != "" {
		return true
	}
	_, ok := i.pending["family "+family]
	return ok && family != ""
}

// Pending is how many keys and families await an invalidation here.
func (i *Invalidator) Pending() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.pending)
}

// Retry invalidates every pending key and family at once, and clears them if it succeeded.
func (i *Invalidator) Retry(ctx context.Context) error {
	i.mu.Lock()
	var set cachekeys.Set
	for n := range i.pending {
		if k, ok := strings.CutPrefix(n, "key "); ok {
			set.Keys = append(set.Keys, k)
		} else {
			set.Families = append(set.Families, strings.TrimPrefix(n, "family "))
		}
	}
	i.mu.Unlock()
	if set.Empty() {
		return nil
	}
	if err := i.apply(ctx, set); err != nil {
		return err
	}
	i.cfg.Log.Info("cache invalidation retried successfully", "keys", len(set.Keys), "families", len(set.Families))
	return nil
}

// Run retries the pending keys every RetryEach, and soon after a failure, until ctx ends.
func (i *Invalidator) Run(ctx context.Context) {
	t := time.NewTicker(i.cfg.RetryEach)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-i.wake:
		}
		_ = i.Retry(ctx)
	}
}

// Handler is the cache consumer: it invalidates what the delivered event names (and clears
// this instance's marks of it). An event that does not decode fails the delivery, which
// dead-letters it after its subscription's MaxDeliveries. A cache that does not answer is not
// the message's fault, and must not use up its deliveries:
//
//   - wait (RabbitMQ, which counts every delivery handed back): retry, with backoff up to
//     MaxBackoff, until the cache answers or ctx ends; give the subscription a small
//     Prefetch, so that an instance cut off from the cache holds few messages meanwhile;
//   - !wait (relay.Local, which runs inside the outbox's claim): fail at once with an error
//     wrapping broker.ErrLater, which Local does not count; the event stays in the outbox,
//     also across a restart, and is relayed again.
func (i *Invalidator) Handler(wait bool) broker.Handler {
	return func(ctx context.Context, d broker.Delivery) error {
		ev, err := events.Unmarshal(d.Body)
		if err != nil {
			return fmt.Errorf("invalidation: message %s: %w", d.ID, err)
		}
		set, err := cachekeys.For(ev)
		if err != nil {
			return fmt.Errorf("invalidation: event %s: %w", ev.ID, err)
		}
		if set.Empty() {
			return nil // a type this version does not know: nothing of ours to drop
		}
		backoff := 100 * time.Millisecond
		timeout := i.cfg.Timeout
		if !wait {
			timeout = i.cfg.QuickTimeout
		}
		for tries := 1; ; tries++ {
			err := i.applyWithin(ctx, set, timeout)
			if err == nil {
				return nil
			}
			if !wait {
				return fmt.Errorf("invalidation: event %s: %w: %w", ev.ID, broker.ErrLater, err)
			}
			if tries == 1 {
				i.cfg.Log.Warn("cache consumer: the cache does not answer; holding the event until it does",
					"event", ev.ID, "type", string(ev.Type), "error", err.Error())
			}
			select {
			case <-ctx.Done():
				return errors.Join(ctx.Err(), err)
			case <-i.cfg.After(backoff):
			}
			backoff = min(2*backoff, i.cfg.MaxBackoff)
		}
	}
}
