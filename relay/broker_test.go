package relay_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/broker/brokertest"
	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/relay"
)

// TestRelayThroughRabbitMQ: events relayed to the broker reach a durable subscription as
// CloudEvents that decode to the events recorded, and leave the outbox.
func TestRelayThroughRabbitMQ(t *testing.T) {
	cfg, name := brokertest.Config(t, ".q")
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
