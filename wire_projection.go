package main

import (
	"context"
	"log/slog"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/projection"
)

// eventConsumers are this service's subscriptions: the cache's, and, with a database per
// domain, the vehicles database's projection of the users.
func eventConsumers(cfg config, log *slog.Logger, w wired, caching *cacheDeps) []consumer {
	cs := caching.consumers(cfg)
	if w.projection != nil {
		pc := projection.Config{Log: log}
		if caching.inv != nil {
			// A user the projection has just learnt of may have a cached 404 for their
			// vehicles, read before: it goes once they are known.
			pc.Applied = func(ctx context.Context, ev events.Event) { caching.inv.Committed(ctx, []events.Event{ev}) }
		}
		cs = append(cs, consumer{sub: projection.Subscription(cfg.Events.Broker.Exchange), handler: projection.Handler(w.projection, pc)})
	}
	return cs
}

// declaredQueues are queues this process declares though it may not consume them: with a
// database per domain, every process declares the projection's, so that the users' events
// published before any vehicles instance first connected still reach it (RabbitMQ drops a
// message no queue is bound to).
func declaredQueues(cfg config) []broker.Subscription {
	if !cfg.twoDatabases() {
		return nil
	}
	return []broker.Subscription{projection.Subscription(cfg.Events.Broker.Exchange)}
}
