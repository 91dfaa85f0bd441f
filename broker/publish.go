package broker

import (
	"context"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/trace"
)

// Message is one event on the wire.
type Message struct {
	ID          string // the event's id: the AMQP message-id, by which consumers can tell duplicates
	RoutingKey  string // the event's type
	ContentType string // application/cloudevents+json for a structured CloudEvent
	Body        []byte
	Time        time.Time
	// Headers are the trace context the message carries (traceparent, tracestate): on
	// publish, its event's, which the publish span continues and sends on in the AMQP
	// headers; on delivery, the publish span's, read back from them. Nil when untraced.
	Headers map[string]string
}

// Publisher publishes with publisher confirms on one connection, opened when first needed and
// again after a failure. It is safe for concurrent use; publishes are serialized.
type Publisher struct {
	cfg  Config
	mu   sync.Mutex
	conn *amqp.Connection
	ch   *amqp.Channel
}

// NewPublisher returns a publisher to cfg's broker; it connects on the first Publish.
func NewPublisher(cfg Config) *Publisher { return &Publisher{cfg: cfg.withDefaults()} }

// Publish sends msgs as persistent messages to the exchange and returns nil only once the
// broker has confirmed every one, so that they are safe to forget. On an error (always
// ErrUnavailable, wrapped) any of them may still have been delivered: the
// caller sends them again, and consumers tell duplicates by Message.ID (at-least-once). ctx
// bounds the whole call.
func (p *Publisher) Publish(ctx context.Context, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.open(ctx); err != nil {
		return err
	}
	err := p.publish(ctx, msgs)
	if err != nil {
		p.reset() // the channel's state is unknown: start over on the next call
	}
	return err
}

func (p *Publisher) publish(ctx context.Context, msgs []Message) (err error) {
	confirms := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	spans := make([]trace.Span, 0, len(msgs))
	defer func() { endSpans(spans, err) }() // a message's span lasts until the broker confirmed it
	for _, m := range msgs {
		span, hdr := startPublish(ctx, p.cfg.Exchange, m)
		spans = append(spans, span)
		dc, err := p.ch.PublishWithDeferredConfirmWithContext(ctx, p.cfg.Exchange, m.RoutingKey, false, false, amqp.Publishing{
			MessageId: m.ID, ContentType: m.ContentType, Body: m.Body, Timestamp: m.Time,
			DeliveryMode: amqp.Persistent, Headers: hdr,
		})
		if err != nil {
			return fmt.Errorf("%w: publish: %w", ErrUnavailable, err)
		}
		confirms = append(confirms, dc)
	}
	for i, dc := range confirms {
		ack, err := dc.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("%w: waiting for the broker's confirmation: %w", ErrUnavailable, err)
		}
		if !ack {
			// A nack: the channel closed under the message, or the broker could not take it
			// (a queue full and rejecting publishes). Either way it is worth sending again.
			return fmt.Errorf("%w: the broker did not take message %s (%s)", ErrUnavailable, msgs[i].ID, msgs[i].RoutingKey)
		}
	}
	return nil
}

// open connects, puts the channel in confirm mode and declares the exchange, unless done.
func (p *Publisher) open(ctx context.Context) error {
	if p.ch != nil && !p.ch.IsClosed() {
		return nil
	}
	p.reset()
	conn, ch, err := dial(ctx, p.cfg)
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		closeConn(conn)
		return fmt.Errorf("%w: confirm mode: %w", ErrUnavailable, err)
	}
	if err := declareExchange(ch, p.cfg); err != nil {
		closeConn(conn)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	p.conn, p.ch = conn, ch
	return nil
}

func (p *Publisher) reset() {
	if p.conn != nil {
		closeConn(p.conn)
	}
	p.conn, p.ch = nil, nil
}

// Ping opens the publisher's connection if it has none (a readiness check): nil means the
// broker is reachable and the exchange declared.
func (p *Publisher) Ping(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open(ctx)
}

// Close closes the connection; a later Publish opens another.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reset()
	return nil
}
