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

// eventsDeps is the events' relays, one per database, running for the life of the server.
type eventsDeps struct {
	checks []impl.Check
	stop   func() // stops the relays, then relays what is left (a few seconds at most)
}

// namedOutbox is a database's outbox; name names its readiness check.
type namedOutbox struct {
	storage.Outbox
	name string
	wake *waker // told of the relay, which commits through this process then wake
}

// startEvents relays the outboxes' events: to RabbitMQ when RABBITMQ_URL is set, else within
// the process. Either way an event leaves its outbox only once it is delivered, so a restart
// or a crash loses none.
//
// consumers are this service's subscriptions, handled here: subscribed to the in-process relay,
// or consumed from their durable queues on RabbitMQ. declare are queues of other services that
// this one's events must reach even before those services first connect.
func startEvents(ctx context.Context, cfg config, log *slog.Logger, outs []namedOutbox, metrics *api.Metrics, declare []broker.Subscription, consumers ...consumer) (*eventsDeps, error) {
	m := relay.NewMetrics(backlogs(outs))
	if err := metrics.Register(m); err != nil {
		return nil, fmt.Errorf("events metrics: %w", err)
	}
	local := relay.NewLocal(m)
	var pub relay.Publisher = local
	d := &eventsDeps{}
	for _, out := range outs {
		d.checks = append(d.checks, impl.Check{Name: out.name, Ping: outboxLag(out, cfg.Events.MaxLag)})
	}
	var closePub func()
	cctx, stopConsumers := context.WithCancel(context.WithoutCancel(ctx))
	var consuming sync.WaitGroup
	if cfg.Events.Broker.URL != "" {
		p := &declaringPublisher{Publisher: broker.NewPublisher(cfg.Events.Broker), cfg: cfg.Events.Broker, subs: declare}
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
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var relaying sync.WaitGroup
	relays := make([]*relay.Relay, len(outs))
	for i, out := range outs {
		relays[i] = relay.New(out, pub, relay.Config{}, m)
		if out.wake != nil {
			out.wake.r.Store(relays[i])
		}
		relaying.Add(1)
		go func() {
			defer relaying.Done()
			if err := relays[i].Run(rctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("event relay stopped", "outbox", out.name, "error", err.Error())
			}
		}()
	}
	d.stop = func() {
		cancel()
		relaying.Wait()
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		for i, r := range relays {
			if err := r.Drain(dctx); err != nil {
				log.Warn("events left in the outbox at shutdown; the next instance relays them", "outbox", outs[i].name, "error", err.Error())
			}
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

// backlogs is the outboxes' backlog together: the events waiting in all, and the oldest.
func backlogs(outs []namedOutbox) func(context.Context) (int, time.Time, error) {
	return func(ctx context.Context) (int, time.Time, error) {
		total, oldest := 0, time.Time{}
		for _, out := range outs {
			n, t, err := out.Backlog(ctx)
			if err != nil {
				return 0, time.Time{}, err
			}
			total += n
			if n > 0 && (oldest.IsZero() || t.Before(oldest)) {
				oldest = t
			}
		}
		return total, oldest, nil
	}
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
