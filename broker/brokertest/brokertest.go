// Package brokertest gives tests RabbitMQ: the server at $TEST_RABBITMQ_URL (the local one
// by default), and an exchange and queue names of their own, deleted when the test ends.
package brokertest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/motorpool/motorpool/broker"
)

// DefaultURL is the broker tests use when TEST_RABBITMQ_URL is unset.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// URL is the broker's URL. When it cannot be reached it skips tb, or fails it when $CI is
// set, so that CI never passes without having run the broker tests.
func URL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("TEST_RABBITMQ_URL")
	if u == "" {
		u = DefaultURL
	}
	conn, err := amqp.Dial(u)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("brokertest: RabbitMQ at %s is unreachable: %v", u, err)
		}
		tb.Skipf("brokertest: skipping, RabbitMQ is unreachable (set TEST_RABBITMQ_URL): %v", err)
	}
	_ = conn.Close()
	return u
}

// Config is a broker config on URL(tb) with an exchange of tb's own, and a name prefix for
// its queues. When tb ends the exchange, its dead-letter exchange and the queues the prefix
// names with suffixes (each with its ".dead" queue) are deleted.
func Config(tb testing.TB, suffixes ...string) (broker.Config, string) {
	tb.Helper()
	url := URL(tb)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "motorpool.test." + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		conn, err := amqp.Dial(url)
		if err != nil {
			tb.Errorf("brokertest: cleanup: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			tb.Errorf("brokertest: cleanup: %v", err)
			return
		}
		for _, s := range suffixes {
			_, _ = ch.QueueDelete(name+s, false, false, false)
			_, _ = ch.QueueDelete(name+s+".dead", false, false, false)
		}
		_ = ch.ExchangeDelete(name, false, false)
		_ = ch.ExchangeDelete(name+".dead", false, false)
	})
	return broker.Config{URL: url, Exchange: name, DialTimeout: 3 * time.Second}, name
}
