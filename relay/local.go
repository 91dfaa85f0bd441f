package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/motorpool/motorpool/broker"
)

// Local is a Publisher that delivers within the process, for a deployment without RabbitMQ:
// each subscription's handler gets the messages of the types it is bound to ("#" for all), as
// the broker would give them to its queue. A handler's error fails the Publish, so the events
// stay in the outbox and come again (to the subscriptions that had not handled them yet, while
// this process lives; after a restart to all: handlers are idempotent), until a message has
// failed MaxDeliveries times for one subscription (failures wrapping broker.ErrLater, and
// those of a Publish whose ctx ended, are not counted): then it is dead-lettered for that
// subscription (kept, counted) and skipped, so that one bad event cannot hold the outbox.
type Local struct {
	mu       sync.Mutex
	subs     []localSub
	failures map[string]int64    // by queue and message id
	handled  map[string]struct{} // by queue and message id, until its Publish succeeds
	dead     map[string][]broker.Message
	obs      broker.Observer
}

type localSub struct {
	sub broker.Subscription
	h   broker.Handler
}

// NewLocal returns an in-process publisher with no subscriptions; obs may be nil.
func NewLocal(obs broker.Observer) *Local {
	return &Local{failures: map[string]int64{}, handled: map[string]struct{}{}, dead: map[string][]broker.Message{}, obs: obs}
}

// Subscribe adds a subscription; call it before the first Publish.
func (l *Local) Subscribe(sub broker.Subscription, h broker.Handler) error {
	if sub.Queue == "" || len(sub.Keys) == 0 || sub.MaxDeliveries < 1 {
		return fmt.Errorf("relay: subscription %q needs routing keys and MaxDeliveries ≥ 1", sub.Queue)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subs = append(l.subs, localSub{sub, h})
	return nil
}

// Publish implements Publisher: it returns once every subscription has handled (or
// dead-lettered) every message, or at the first failure. A message a subscription handled
// before a failure is not given to it again when the same events come back.
func (l *Local) Publish(ctx context.Context, msgs []broker.Message) error {
	l.mu.Lock()
	subs := slices.Clone(l.subs)
	l.mu.Unlock()
	for _, m := range msgs {
		for _, s := range subs {
			if !slices.Contains(s.sub.Keys, "#") && !slices.Contains(s.sub.Keys, m.RoutingKey) {
				continue
			}
			if err := l.deliver(ctx, s, m); err != nil {
				return err
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range msgs {
		for _, s := range subs {
			delete(l.handled, s.sub.Queue+"\x00"+m.ID)
		}
	}
	return nil
}

func (l *Local) deliver(ctx context.Context, s localSub, m broker.Message) error {
	key := s.sub.Queue + "\x00" + m.ID
	l.mu.Lock()
	before := l.failures[key]
	_, done := l.handled[key]
	l.mu.Unlock()
	if done || before >= int64(s.sub.MaxDeliveries) {
		return nil // handled, or dead-lettered, on an earlier try
	}
	d := broker.Delivery{Message: m, Redelivered: before > 0, Deliveries: before}
	err := broker.Process(ctx, "", s.sub.Queue, d, s.h)
	if l.obs != nil {
		l.obs.Delivered(s.sub.Queue, d, 0, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		delete(l.failures, key)
		l.handled[key] = struct{}{}
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // not the handler's fault: it does not count
	}
	if errors.Is(err, broker.ErrLater) {
		// Not the message's fault either: it stays in the outbox, uncounted, for a later try.
		return fmt.Errorf("relay: %s: %s %s: %w", s.sub.Queue, m.RoutingKey, m.ID, err)
	}
	l.failures[key] = before + 1
	if before+1 >= int64(s.sub.MaxDeliveries) {
		l.dead[s.sub.Queue] = append(l.dead[s.sub.Queue], m)
		return nil
	}
	return fmt.Errorf("relay: %s: %s %s: %w", s.sub.Queue, m.RoutingKey, m.ID, err)
}

// DeadLetters is how many messages the subscription's handler refused MaxDeliveries times.
func (l *Local) DeadLetters(queue string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.dead[queue])
}
