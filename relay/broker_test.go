package relay_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/relay"
)

// TestRelayThroughRabbitMQ: events relayed to the broker reach a durable subscription as
// CloudEvents that decode to the events recorded, and leave the outbox.
func TestRelayThroughRabbitMQ(t *testing.T) {
	url := os.Getenv("TEST_RABBITMQ_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("RabbitMQ is unreachable: %v", err)
		}
		t.Skipf("RabbitMQ is unreachable (set TEST_RABBITMQ_URL): %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "motorpool.test." + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(name+".q", false, false, false)
			_, _ = ch.QueueDelete(name+".q.dead", false, false, false)
			_ = ch.ExchangeDelete(name, false, false)
			_ = ch.ExchangeDelete(name+".dead", false, false)
		}
	})
	cfg := broker.Config{URL: url, Exchange: name}
	sub := broker.Subscription{Queue: name + ".q", Keys: []string{"#"}, MaxDeliveries: 3}
	if err := broker.Declare(t.Context(), cfg, sub); err != nil {
		t.Fatal(err)
	}
	out := &outbox{}
	var want []events.Event
	for i := range 20 {
		want = append(want, out.add(t, events.VehicleCreated, int64(i+1)))
	}
	pub := broker.NewPublisher(cfg)
	defer pub.Close()
	if err := relay.New(out, pub, relay.Config{Batch: 8}, nil).Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if out.waiting() != 0 {
		t.Fatalf("%d events still waiting", out.waiting())
	}
	got := make(chan events.Event, len(want))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- broker.Consume(ctx, cfg, sub, func(_ context.Context, d broker.Delivery) error {
			e, err := events.Unmarshal(d.Body)
			if err != nil {
				t.Errorf("delivery %s: %v", d.ID, err)
				return nil
			}
			got <- e
			return nil
		}, nil)
	}()
	var ids []string
	for range want {
		select {
		case e := <-got:
			ids = append(ids, e.ID)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d events arrived", len(ids), len(want))
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Consume = %v", err)
	}
	var wantIDs []string
	for _, e := range want {
		wantIDs = append(wantIDs, e.ID)
	}
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("arrived %v, want %v (one relay publishes in the outbox's order)", ids, wantIDs)
	}
}
