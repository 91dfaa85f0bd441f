package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/broker/brokertest"
	"github.com/motorpool/motorpool/internal/testproxy"
)

// setUp is a config with an exchange of the test's own, and a prefix for its queues (".q" and
// ".r"), all deleted when the test ends.
func setUp(t *testing.T) (broker.Config, string) {
	t.Helper()
	return brokertest.Config(t, ".q", ".r")
}

// collector records deliveries; fail makes the handler fail for a message id.
type collector struct {
	mu   sync.Mutex
	got  []broker.Delivery
	fail map[string]bool
	seen chan struct{}
}

func newCollector() *collector {
	return &collector{fail: map[string]bool{}, seen: make(chan struct{}, 1000)}
}

func (c *collector) handle(_ context.Context, d broker.Delivery) error {
	c.mu.Lock()
	c.got = append(c.got, d)
	fail := c.fail[d.ID]
	c.mu.Unlock()
	c.seen <- struct{}{}
	if fail {
		return errors.New("handler failed")
	}
	return nil
}

func (c *collector) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for _, d := range c.got {
		ids = append(ids, d.ID)
	}
	return ids
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not waiting for a timing
	}
}

func msgs(prefix string, n int, key string) []broker.Message {
	var out []broker.Message
	for i := range n {
		out = append(out, broker.Message{ID: fmt.Sprintf("%s-%d", prefix, i), RoutingKey: key,
			ContentType: "application/cloudevents+json", Body: []byte(`{"n":` + fmt.Sprint(i) + `}`), Time: time.Now()})
	}
	return out
}

func declare(t *testing.T, cfg broker.Config, subs ...broker.Subscription) {
	t.Helper()
	if err := broker.Declare(t.Context(), cfg, subs...); err != nil {
		t.Fatal(err)
	}
}

// consume runs a consumer until the test ends.
func consume(t *testing.T, cfg broker.Config, sub broker.Subscription, c *collector) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- broker.Consume(ctx, cfg, sub, c.handle, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Consume: %v", err)
		}
	})
}

// TestPublishConsume: confirmed messages reach the subscriptions bound to their types, in
// order, with their ids, bodies and types; a subscription gets nothing it is not bound to.
func TestPublishConsume(t *testing.T) {
	cfg, name := setUp(t)
	vehicles, all := newCollector(), newCollector()
	// Declared before publishing: a message published before its queue exists goes nowhere.
	consume(t, cfg, broker.Subscription{Queue: name + ".q", Keys: []string{"VEHICLE_CREATED", "VEHICLE_DELETED"}, MaxDeliveries: 3}, vehicles)
	consume(t, cfg, broker.Subscription{Queue: name + ".r", Keys: []string{"#"}, MaxDeliveries: 3}, all)
	declare(t, cfg, broker.Subscription{Queue: name + ".q", Keys: []string{"VEHICLE_CREATED", "VEHICLE_DELETED"}, MaxDeliveries: 3},
		broker.Subscription{Queue: name + ".r", Keys: []string{"#"}, MaxDeliveries: 3})
	p := broker.NewPublisher(cfg)
	defer p.Close()
	batch := append(msgs("v", 5, "VEHICLE_CREATED"), msgs("u", 3, "USER_CREATED")...)
	if err := p.Publish(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "8 deliveries to the catch-all queue", func() bool { return len(all.ids()) == 8 })
	waitFor(t, "5 deliveries to the vehicles queue", func() bool { return len(vehicles.ids()) == 5 })
	if got, want := vehicles.ids(), []string{"v-0", "v-1", "v-2", "v-3", "v-4"}; !slices.Equal(got, want) {
		t.Errorf("vehicles queue got %v, want %v", got, want)
	}
	d := vehicles.got[2]
	if d.RoutingKey != "VEHICLE_CREATED" || string(d.Body) != `{"n":2}` || d.ContentType != "application/cloudevents+json" || d.Redelivered {
		t.Errorf("delivery %+v", d)
	}
}

// TestDeadLetter: a message its handler keeps refusing is delivered MaxDeliveries times, then
// moved to the dead-letter queue; the others are delivered once.
func TestDeadLetter(t *testing.T) {
	cfg, name := setUp(t)
	c := newCollector()
	c.fail["bad-0"] = true
	sub := broker.Subscription{Queue: name + ".q", Keys: []string{"#"}, MaxDeliveries: 3}
	consume(t, cfg, sub, c)
	declare(t, cfg, sub)
	p := broker.NewPublisher(cfg)
	defer p.Close()
	if err := p.Publish(t.Context(), append(msgs("bad", 1, "USER_DELETED"), msgs("ok", 2, "USER_CREATED")...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dead letter", func() bool {
		n, err := broker.DeadLetters(t.Context(), cfg, sub.Queue)
		return err == nil && n == 1
	})
	count := map[string]int{}
	for _, id := range c.ids() {
		count[id]++
	}
	if count["bad-0"] != 3 || count["ok-0"] != 1 || count["ok-1"] != 1 {
		t.Errorf("deliveries %v, want bad-0 three times and the others once", count)
	}
	last := c.got[len(c.got)-1]
	for _, d := range c.got {
		if d.ID == "bad-0" {
			last = d
		}
	}
	if !last.Redelivered || last.Deliveries != 2 {
		t.Errorf("the last delivery of bad-0: redelivered %v, %d deliveries before; want true, 2", last.Redelivered, last.Deliveries)
	}
}

// behindProxy is cfg reaching the broker through a proxy the test controls.
func behindProxy(t *testing.T, cfg broker.Config) (broker.Config, *testproxy.Proxy) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := testproxy.New(t, u.Host)
	u.Host = p.Addr()
	cfg.URL = u.String()
	return cfg, p
}

// TestOutage: with the broker cut off, Publish fails within its context (never hangs) and
// reports ErrUnavailable; once the broker is back, the same publisher and consumer carry on
// by themselves, and nothing confirmed is lost.
func TestOutage(t *testing.T) {
	direct, name := setUp(t)
	cfg, proxy := behindProxy(t, direct)
	c := newCollector()
	sub := broker.Subscription{Queue: name + ".q", Keys: []string{"#"}, MaxDeliveries: 5}
	consume(t, cfg, sub, c)
	declare(t, direct, sub)
	p := broker.NewPublisher(cfg)
	defer p.Close()
	if err := p.Publish(t.Context(), msgs("before", 2, "USER_CREATED")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first two", func() bool { return len(c.ids()) == 2 })

	for _, cut := range []struct {
		name string
		do   func()
	}{{"refused", proxy.Refuse}, {"held", proxy.Hold}} {
		cut.do()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		start := time.Now()
		err := p.Publish(ctx, msgs("lost-"+cut.name, 1, "USER_CREATED"))
		cancel()
		if !errors.Is(err, broker.ErrUnavailable) {
			t.Errorf("%s: Publish = %v, want ErrUnavailable", cut.name, err)
		}
		if took := time.Since(start); took > 4*time.Second {
			t.Errorf("%s: Publish took %v with a 2 s context", cut.name, took)
		}
		if err := proxy.Restore(); err != nil {
			t.Fatal(err)
		}
	}
	// Sent again after the outage, as the relay would.
	waitFor(t, "a publish after the outage", func() bool {
		return p.Publish(t.Context(), msgs("after", 3, "USER_CREATED")) == nil
	})
	waitFor(t, "the messages published after the outage", func() bool {
		ids := c.ids()
		return slices.Contains(ids, "after-0") && slices.Contains(ids, "after-1") && slices.Contains(ids, "after-2")
	})
}

func TestConfigCheck(t *testing.T) {
	for _, u := range []string{"", "http://x", "amqp://", "not a url"} {
		if (broker.Config{URL: u}).Check() == nil {
			t.Errorf("Check(%q) = nil", u)
		}
	}
	if err := (broker.Config{URL: "amqps://u:p@mq.example:5671/v"}).Check(); err != nil {
		t.Error(err)
	}
}
