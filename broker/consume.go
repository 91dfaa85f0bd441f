package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Subscription is a durable consumer: one per service and purpose, shared by its instances
// (the broker hands each message to one of them).
type Subscription struct {
	Queue string   // the quorum queue's name, e.g. motorpool.vehicles.projection
	Keys  []string // routing keys (event types; topic patterns such as VEHICLE_* are not: use "#" for all)
	// MaxDeliveries is how many times a message is delivered before it is dead-lettered to
	// Queue+".dead" (a handler error or a consumer lost mid-message counts as a delivery).
	MaxDeliveries int
	// Prefetch is how many unacknowledged messages an instance holds at once (16 when zero).
	Prefetch int
}

// Delivery is a message handed to a Handler.
type Delivery struct {
	Message
	// Redelivered: the broker delivered it before (to this or another instance) without an ack.
	Redelivered bool
	// Deliveries is how many times the broker has delivered it before this one (x-delivery-count).
	Deliveries int64
}

// Handler handles one delivery: nil acknowledges it; an error returns it to the queue, to be
// delivered again until MaxDeliveries. A handler must be idempotent: at-least-once delivery
// hands it duplicates.
type Handler func(ctx context.Context, d Delivery) error

// ErrLater, wrapped in a Handler's error, says the message is sound but cannot be handled now
// (what the handler applies it to is away). The in-process relay (relay.Local) does not count
// such a failure towards MaxDeliveries: the events stay in the outbox and come again, however
// long the outage. RabbitMQ counts every delivery handed back, so a handler consuming from it
// should rather wait for its dependency (until ctx ends) than return ErrLater.
var ErrLater = errors.New("cannot be handled now")

// Observer hears what a consumer does; every method must be cheap and safe for concurrent use.
type Observer interface {
	Delivered(queue string, d Delivery, lag time.Duration, err error)
	Disconnected(queue string, err error)
}

// Consume declares the subscription's topology and handles its deliveries until ctx ends,
// connecting again (after retry, then up to 30 s between tries) whenever the connection is
// lost. It returns ctx's error, or at once an error for a subscription that cannot work.
func Consume(ctx context.Context, cfg Config, sub Subscription, h Handler, obs Observer) error {
	cfg = cfg.withDefaults()
	if sub.Queue == "" || len(sub.Keys) == 0 || sub.MaxDeliveries < 1 {
		return errors.New("broker: a subscription needs a queue, routing keys and MaxDeliveries ≥ 1")
	}
	if sub.Prefetch <= 0 {
		sub.Prefetch = 16
	}
	backoff := 100 * time.Millisecond
	for {
		err := consumeOnce(ctx, cfg, sub, h, obs, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if obs != nil {
			obs.Disconnected(sub.Queue, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// consumeOnce runs one connection's worth of consuming; connected is called once it is up.
func consumeOnce(ctx context.Context, cfg Config, sub Subscription, h Handler, obs Observer, connected func()) error {
	conn, ch, err := dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeConn(conn)
	if err := declareSubscription(ch, cfg, sub); err != nil {
		return err
	}
	if err := ch.Qos(sub.Prefetch, 0, false); err != nil {
		return fmt.Errorf("%w: qos: %w", ErrUnavailable, err)
	}
	deliveries, err := ch.ConsumeWithContext(ctx, sub.Queue, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("%w: consume %s: %w", ErrUnavailable, sub.Queue, err)
	}
	connected()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case d, ok := <-deliveries:
			if !ok {
				return fmt.Errorf("%w: the broker closed the channel", ErrUnavailable)
			}
			handle(ctx, sub.Queue, d, h, obs)
		}
	}
}

// handle runs h on d and settles d: ack on success, back to the queue on an error (the
// broker counts the delivery and dead-letters it past MaxDeliveries).
func handle(ctx context.Context, queue string, d amqp.Delivery, h Handler, obs Observer) {
	del := Delivery{Message: Message{ID: d.MessageId, RoutingKey: d.RoutingKey, ContentType: d.ContentType,
		Body: d.Body, Time: d.Timestamp, Headers: traceHeaders(d.Headers)}, Redelivered: d.Redelivered}
	if n, ok := d.Headers["x-delivery-count"].(int64); ok {
		del.Deliveries = n
	}
	err := Process(ctx, "rabbitmq", queue, del, h)
	if obs != nil {
		var lag time.Duration
		if !d.Timestamp.IsZero() {
			lag = time.Since(d.Timestamp)
		}
		obs.Delivered(queue, del, lag, err)
	}
	if err != nil {
		_ = d.Nack(false, true)
		return
	}
	_ = d.Ack(false)
}

// declareSubscription declares the exchange, the queue with its dead-letter route, the
// dead-letter exchange and queue, and the bindings.
func declareSubscription(ch *amqp.Channel, cfg Config, sub Subscription) error {
	dead := cfg.Exchange + ".dead"
	steps := []func() error{
		func() error { return declareExchange(ch, cfg) },
		func() error { return ch.ExchangeDeclare(dead, amqp.ExchangeDirect, true, false, false, false, nil) },
		func() error {
			_, err := ch.QueueDeclare(sub.Queue+".dead", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
			return err
		},
		func() error { return ch.QueueBind(sub.Queue+".dead", sub.Queue, dead, false, nil) },
		func() error {
			_, err := ch.QueueDeclare(sub.Queue, true, false, false, false, amqp.Table{
				"x-queue-type": "quorum", "x-delivery-limit": int64(sub.MaxDeliveries - 1),
				"x-dead-letter-exchange": dead, "x-dead-letter-routing-key": sub.Queue,
				// Dead letters are moved, not dropped, even if the dead-letter queue is slow.
				"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
			})
			return err
		},
	}
	for _, k := range sub.Keys {
		steps = append(steps, func() error { return ch.QueueBind(sub.Queue, k, cfg.Exchange, false, nil) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("%w: declare %s: %w", ErrUnavailable, sub.Queue, err)
		}
	}
	return nil
}

// Declare declares the subscriptions' topology. The publishing side calls it too, before its
// first publish: a message published while no queue is bound to its type is dropped by the
// broker, so a consumer that starts later must find its queue already collecting.
func Declare(ctx context.Context, cfg Config, subs ...Subscription) error {
	cfg = cfg.withDefaults()
	conn, ch, err := dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeConn(conn)
	for _, sub := range subs {
		if err := declareSubscription(ch, cfg, sub); err != nil {
			return err
		}
	}
	return nil
}

// DeadLetters is how many messages wait in the subscription's dead-letter queue.
func DeadLetters(ctx context.Context, cfg Config, queue string) (int, error) {
	cfg = cfg.withDefaults()
	conn, ch, err := dial(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer closeConn(conn)
	q, err := ch.QueueDeclarePassive(queue+".dead", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	if err != nil {
		return 0, fmt.Errorf("broker: %s.dead: %w", queue, err)
	}
	return q.Messages, nil
}
