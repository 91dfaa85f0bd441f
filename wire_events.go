package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/impl"
	"github.com/motorpool/motorpool/relay"
	"github.com/motorpool/motorpool/storage"
)

// eventsDeps is the events' relay, running for the life of the server.
type eventsDeps struct {
	relay  *relay.Relay
	checks []impl.Check
	stop   func() // stops the relay, then relays what is left (a few seconds at most)
}

// startEvents relays the outbox's events: to RabbitMQ when RABBITMQ_URL is set, else within
// the process. Either way an event leaves the outbox only once it is delivered, so a restart
// or a crash loses none.
//
// consumers are this service's subscriptions, handled here: subscribed to the in-process relay,
// or consumed from their durable queues on RabbitMQ.
func startEvents(ctx context.Context, cfg config, log *slog.Logger, out storage.Outbox, metrics *api.Metrics, consumers ...consumer) (*eventsDeps, error) {
	m := relay.NewMetrics(out.Backlog)
	if err := metrics.Register(m); err != nil {
		return nil, fmt.Errorf("events metrics: %w", err)
	}
	local := relay.NewLocal(m)
	var pub relay.Publisher = local
	d := &eventsDeps{checks: []impl.Check{{Name: "outbox", Ping: outboxLag(out, cfg.Events.MaxLag)}}}
	var closePub func()
	cctx, stopConsumers := context.WithCancel(context.WithoutCancel(ctx))
	var consuming sync.WaitGroup
	if cfg.Events.Broker.URL != "" {
		p := &declaringPublisher{Publisher: broker.NewPublisher(cfg.Events.Broker), cfg: cfg.Events.Broker}
		pub, closePub = p, func() { _ = p.Close() }
		d.checks = append(d.checks, impl.Check{Name: "broker", Ping: p.Ping})
		for _, c := range consumers {
			p.subs = append(p.subs, c.sub)
			consuming.Add(1)
			go func() {
				defer consuming.Done()
				if err := broker.Consume(cctx, cfg.Events.Broker, c.sub, c.handler(true), m); err != nil && !errors.Is(err, context.Canceled) {
					log.Error("event consumer stopped", "queue", c.sub.Queue, "error", err.Error())
				}
			}()
		}
	} else {
		for _, c := range consumers {
			if err := local.Subscribe(c.sub, c.handler(false)); err != nil {
				stopConsumers()
				return nil, err
			}
		}
	}
	d.relay = relay.New(out, pub, relay.Config{}, m)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.relay.Run(rctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("event relay stopped", "error", err.Error())
		}
	}()
	d.stop = func() {
		cancel()
		<-done
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		if err := d.relay.Drain(dctx); err != nil {
			log.Warn("events left in the outbox at shutdown; the next instance relays them", "error", err.Error())
		}
		// What the consumers have not acknowledged stays in their queues for the next one.
		stopConsumers()
		consuming.Wait()
		if closePub != nil {
			closePub()
		}
	}
	return d, nil
}

// consumer is one of this service's subscriptions. handler(wait) is its handler: with wait
// (on RabbitMQ) it may hold a delivery while what it applies events to is away; without (in
// process, inside the outbox's claim) it must answer at once (see invalidation.Handler).
type consumer struct {
	sub     broker.Subscription
	handler func(wait bool) broker.Handler
}

// outboxLag is the readiness check of the relay: the oldest event waiting must be younger
// than maxLag.
func outboxLag(out storage.Outbox, maxLag time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		n, oldest, err := out.Backlog(ctx)
		if err != nil {
			return err
		}
		if age := time.Since(oldest); n > 0 && age > maxLag {
			return fmt.Errorf("%d events waiting in the outbox, the oldest for %s (RELAY_MAX_LAG %s)", n, age.Round(time.Second), maxLag)
		}
		return nil
	}
}
