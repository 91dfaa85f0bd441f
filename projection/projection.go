// Package projection keeps the vehicles database's projection of the users
// (storage.UserProjection) from the users domain's events, in the two-database layout: a
// USER_CREATED makes its user a possible owner, a USER_DELETED deletes their vehicles (each
// with its VEHICLE_DELETED) and forgets them for good. Both are idempotent and commute, so
// redeliveries, duplicates and events out of order change nothing.
package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/storage"
)

// Config tunes a Handler; the zero value takes the defaults.
type Config struct {
	// Applied hears of each event once the projection has applied it, to drop what that makes
	// stale in a cache (a cached 404 of the user's vehicles); nil: nobody.
	Applied    func(ctx context.Context, ev events.Event)
	MaxBackoff time.Duration // the longest wait between tries while the database is away (5 s)
	// After is the clock of the waits (time.After); tests give one that does not sleep.
	After func(time.Duration) <-chan time.Time
	Log   *slog.Logger
}

// Subscription is the projection's queue, <exchange>.vehicles.projection, shared by the
// vehicles service's instances: one of them applying an event suffices.
func Subscription(exchange string) broker.Subscription {
	if exchange == "" {
		exchange = broker.DefaultExchange
	}
	return broker.Subscription{
		Queue:         exchange + ".vehicles.projection",
		Keys:          []string{string(events.UserCreated), string(events.UserDeleted)},
		MaxDeliveries: 5,
	}
}

// Handler applies the users' events to p. A database that does not answer is not the
// message's fault and must not use up its deliveries: with wait (RabbitMQ) the handler tries
// again, with backoff, until the database answers or ctx ends; without (relay.Local) it fails
// at once with broker.ErrLater, and the event stays in the outbox. A malformed event fails,
// and is dead-lettered after the subscription's deliveries.
func Handler(p storage.UserProjection, cfg Config) func(wait bool) broker.Handler {
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return func(wait bool) broker.Handler {
		return func(ctx context.Context, d broker.Delivery) error {
			ev, err := events.Unmarshal(d.Body)
			if err != nil {
				return fmt.Errorf("projection: message %s: %w", d.ID, err)
			}
			apply, err := applier(p, ev)
			if err != nil || apply == nil {
				return err
			}
			backoff := 100 * time.Millisecond
			for tries := 1; ; tries++ {
				err := apply(ctx)
				if err == nil {
					if cfg.Applied != nil {
						cfg.Applied(ctx, ev)
					}
					return nil
				}
				if !errors.Is(err, storage.ErrUnavailable) {
					return fmt.Errorf("projection: event %s: %w", ev.ID, err)
				}
				if !wait {
					return fmt.Errorf("projection: event %s: %w: %w", ev.ID, broker.ErrLater, err)
				}
				if tries == 1 {
					cfg.Log.Warn("projection: the vehicles database does not answer; holding the event until it does",
						"event", ev.ID, "type", string(ev.Type), "error", err.Error())
				}
				select {
				case <-ctx.Done():
					return errors.Join(ctx.Err(), err)
				case <-cfg.After(backoff):
				}
				backoff = min(2*backoff, cfg.MaxBackoff)
			}
		}
	}
}

// applier is what ev does to the projection; nil for an event it does not follow.
func applier(p storage.UserProjection, ev events.Event) (func(context.Context) error, error) {
	if ev.Type != events.UserCreated && ev.Type != events.UserDeleted {
		return nil, nil
	}
	u, err := ev.User()
	if err != nil {
		return nil, fmt.Errorf("projection: event %s: %w", ev.ID, err)
	}
	if u.ID <= 0 {
		return nil, fmt.Errorf("projection: event %s: no user id", ev.ID)
	}
	if ev.Type == events.UserCreated {
		return func(ctx context.Context) error { return p.ApplyUserCreated(ctx, u.ID) }, nil
	}
	return func(ctx context.Context) error { return p.ApplyUserDeleted(ctx, u.ID) }, nil
}
