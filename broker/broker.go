// Package broker carries motorpool's events over RabbitMQ (AMQP 0-9-1): a publisher that
// returns only once the broker has confirmed every message, and consumers on durable quorum
// queues with bounded redelivery and a dead-letter queue. It knows nothing of what the events
// mean: a message is an id, a routing key and a body.
//
// Topology, declared by both sides (declaring is idempotent):
//
//	exchange  Exchange (topic, durable): every event, routed by its type
//	queue     a subscription's Queue (quorum, durable), bound to Exchange by its Keys; a message
//	          delivered MaxDeliveries times without an ack is dead-lettered
//	exchange  Exchange+".dead" (direct, durable): the dead letters, routed by the queue's name
//	queue     Queue+".dead" (quorum, durable): a subscription's dead letters, kept for an operator
package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultExchange is the exchange events go through.
const DefaultExchange = "motorpool.events"

// Config says where the broker is and how patient to be with it.
type Config struct {
	// URL is amqp://user:password@host:port/vhost (amqps:// for TLS).
	URL string
	// Exchange is the topic exchange of the events (DefaultExchange when empty). Tests use
	// their own.
	Exchange string
	// DialTimeout bounds connecting (5 s when zero).
	DialTimeout time.Duration
	// Heartbeat is the AMQP heartbeat, which also notices a broker gone silent (10 s when zero).
	Heartbeat time.Duration
}

func (c Config) withDefaults() Config {
	if c.Exchange == "" {
		c.Exchange = DefaultExchange
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 10 * time.Second
	}
	return c
}

// Check reports a URL that is not an AMQP URL with a host, without dialling.
func (c Config) Check() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
		return errors.New("must be an amqp:// or amqps:// URL with a host")
	}
	return nil
}

// ErrUnavailable: the broker could not be reached or dropped the connection; the call may or
// may not have taken effect and can be retried.
var ErrUnavailable = errors.New("broker unavailable")

// dial connects and opens a channel, within ctx and DialTimeout.
func dial(ctx context.Context, c Config) (*amqp.Connection, *amqp.Channel, error) {
	d := net.Dialer{Timeout: c.DialTimeout}
	conn, err := amqp.DialConfig(c.URL, amqp.Config{
		Heartbeat:  c.Heartbeat,
		Properties: amqp.Table{"connection_name": "motorpool"},
		Dial: func(network, addr string) (net.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, c.DialTimeout)
			defer cancel()
			conn, err := d.DialContext(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The handshake must not hang on a broker that accepted and went silent.
			return conn, conn.SetDeadline(time.Now().Add(c.DialTimeout))
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		closeConn(conn)
		return nil, nil, fmt.Errorf("%w: open a channel: %w", ErrUnavailable, err)
	}
	return conn, ch, nil
}

// declareExchange declares the events' topic exchange.
func declareExchange(ch *amqp.Channel, c Config) error {
	if err := ch.ExchangeDeclare(c.Exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", c.Exchange, err)
	}
	return nil
}

// Ping connects and declares the exchange: what /readyz asks of the broker.
func Ping(ctx context.Context, c Config) error {
	c = c.withDefaults()
	conn, ch, err := dial(ctx, c)
	if err != nil {
		return err
	}
	defer closeConn(conn)
	return declareExchange(ch, c)
}

// closeConn closes conn, waiting a second at most for the broker's answer: a partitioned
// broker must not hold a caller.
func closeConn(conn *amqp.Connection) { _ = conn.CloseDeadline(time.Now().Add(time.Second)) }
