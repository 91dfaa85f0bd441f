package main

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/invalidation"
	"github.com/motorpool/motorpool/storage"
)

// cacheDeps is the read cache and what keeps it fresh: an invalidator that the store tells of
// every commit, and that consumes the events again from the outbox.
type cacheDeps struct {
	cache storage.Cache             // nil when CACHE_ENABLED=false
	inv   *invalidation.Invalidator // nil without a cache
	close func()
}

// openCaching opens the cache and starts its invalidator's retries of failed invalidations.
func openCaching(ctx context.Context, cfg config, log *slog.Logger, obs storage.CacheObserver) (*cacheDeps, error) {
	cache, err := openCache(ctx, cfg, obs)
	if err != nil {
		return nil, err
	}
	d := &cacheDeps{cache: cache, close: func() {}}
	if cache == nil {
		return d, nil
	}
	d.inv = invalidation.New(cache, invalidation.Config{Log: log})
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.inv.Run(rctx)
	}()
	d.close = func() {
		cancel()
		<-done
		_ = cache.Close()
	}
	return d, nil
}

// committed is what each commit tells the cache: invalidate what its events name before the
// write returns; nil without a cache.
func (d *cacheDeps) committed() storage.Committed {
	if d.inv == nil {
		return nil
	}
	return d.inv.Committed
}

// consumers is the cache's subscription to every event, when there is a cache.
func (d *cacheDeps) consumers(cfg config) []consumer {
	if d.inv == nil {
		return nil
	}
	return []consumer{{sub: cacheSubscription(cfg), handler: d.inv.Handler}}
}

// cacheSubscription is the cache consumer's queue, <exchange>.<domains>.cache: one per service
// (the domains a process serves name it), shared by the service's instances, which share the
// cache, so one of them invalidating suffices. Prefetch 1: an instance cut off from the cache
// holds one event while it waits (Invalidator.Handler), not a batch the others could apply.
func cacheSubscription(cfg config) broker.Subscription {
	ex := cfg.Events.Broker.Exchange
	if ex == "" {
		ex = broker.DefaultExchange
	}
	names := make([]string, len(cfg.Domains))
	for i, d := range cfg.Domains {
		names[i] = string(d)
	}
	return broker.Subscription{Queue: ex + "." + strings.Join(names, "-") + ".cache", Keys: []string{"#"},
		MaxDeliveries: 5, Prefetch: 1}
}

// declaringPublisher declares this service's subscriptions before its first publish: RabbitMQ
// drops a message that no queue is bound to, so the queues must exist before the events go
// out, whether or not their consumers have connected yet.
type declaringPublisher struct {
	*broker.Publisher
	cfg      broker.Config
	subs     []broker.Subscription
	declared atomic.Bool
}

func (p *declaringPublisher) Publish(ctx context.Context, msgs []broker.Message) error {
	if len(p.subs) > 0 && !p.declared.Load() {
		if err := broker.Declare(ctx, p.cfg, p.subs...); err != nil {
			return err
		}
		p.declared.Store(true)
	}
	return p.Publisher.Publish(ctx, msgs)
}
