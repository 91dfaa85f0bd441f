package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
func startEvents(ctx context.Context, cfg config, log *slog.Logger, out storage.Outbox, metrics *api.Metrics) (*eventsDeps, error) {
	m := relay.NewMetrics(out.Backlog)
	if err := metrics.Register(m); err != nil {
		return nil, fmt.Errorf("events metrics: %w", err)
	}
	var pub relay.Publisher = relay.NewLocal(m)
	d := &eventsDeps{checks: []impl.Check{{Name: "outbox", Ping: outboxLag(out, cfg.Events.MaxLag)}}}
	var closePub func()
	if cfg.Events.Broker.URL != "" {
		p := broker.NewPublisher(cfg.Events.Broker)
		pub, closePub = p, func() { _ = p.Close() }
		d.checks = append(d.checks, impl.Check{Name: "broker", Ping: p.Ping})
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
		if closePub != nil {
			closePub()
		}
	}
	return d, nil
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
