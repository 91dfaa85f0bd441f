package relay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/relay"
)

// outbox is an Outbox in memory that keeps the contract: the oldest first, removed only when
// publish succeeded, one holder at a time.
type outbox struct {
	hold sync.Mutex // the claim
	mu   sync.Mutex
	evs  []events.Event
}

func (o *outbox) add(t *testing.T, typ events.Type, id int64) events.Event {
	t.Helper()
	e, err := events.New(typ, id, 1, time.Now(), map[string]int64{"id": id})
	if err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	o.evs = append(o.evs, e)
	o.mu.Unlock()
	return e
}

func (o *outbox) waiting() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.evs)
}

func (o *outbox) Relay(ctx context.Context, max int, publish func(context.Context, []events.Event) error) (int, error) {
	o.hold.Lock()
	defer o.hold.Unlock()
	o.mu.Lock()
	batch := slices.Clone(o.evs[:min(max, len(o.evs))])
	o.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}
	if err := publish(ctx, batch); err != nil {
		return 0, err
	}
	o.mu.Lock()
	o.evs = o.evs[len(batch):]
	o.mu.Unlock()
	return len(batch), nil
}

// failing fails its first n publishes, then passes them on.
type failing struct {
	relay.Publisher
	mu sync.Mutex
	n  int
}

func (f *failing) Publish(ctx context.Context, msgs []broker.Message) error {
	f.mu.Lock()
	fail := f.n > 0
	f.n--
	f.mu.Unlock()
	if fail {
		return broker.ErrUnavailable
	}
	return f.Publisher.Publish(ctx, msgs)
}

// record is a handler that keeps what it got; failFor makes it fail for a message id that
// many times.
type record struct {
	mu      sync.Mutex
	got     []broker.Delivery
	failFor map[string]int
}

func (r *record) handle(_ context.Context, d broker.Delivery) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, d)
	if r.failFor[d.ID] > 0 {
		r.failFor[d.ID]--
		return errors.New("refused")
	}
	return nil
}

func (r *record) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, d := range r.got {
		out = append(out, d.ID)
	}
	return out
}

func subscribe(t *testing.T, l *relay.Local, queue string, keys []string, r *record) {
	t.Helper()
	if err := l.Subscribe(broker.Subscription{Queue: queue, Keys: keys, MaxDeliveries: 3}, r.handle); err != nil {
		t.Fatal(err)
	}
}

// TestDrainLocal: every event reaches the subscriptions bound to its type, in the outbox's
// order, as a CloudEvent that decodes to the same event; the outbox is then empty.
func TestDrainLocal(t *testing.T) {
	out := &outbox{}
	var want []events.Event
	for i := range 5 {
		want = append(want, out.add(t, events.UserCreated, int64(i+1)), out.add(t, events.VehicleCreated, int64(i+1)))
	}
	l := relay.NewLocal(nil)
	users, all := &record{}, &record{}
	subscribe(t, l, "users", []string{"USER_CREATED", "USER_DELETED"}, users)
	subscribe(t, l, "all", []string{"#"}, all)
	r := relay.New(out, l, relay.Config{Batch: 3}, nil)
	if err := r.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if out.waiting() != 0 {
		t.Fatalf("%d events still waiting", out.waiting())
	}
	var wantAll, wantUsers []string
	for _, e := range want {
		wantAll = append(wantAll, e.ID)
		if e.Type == events.UserCreated {
			wantUsers = append(wantUsers, e.ID)
		}
	}
	if got := all.ids(); !slices.Equal(got, wantAll) {
		t.Errorf("all got %v, want %v", got, wantAll)
	}
	if got := users.ids(); !slices.Equal(got, wantUsers) {
		t.Errorf("users got %v, want %v", got, wantUsers)
	}
	d := all.got[3]
	e, err := events.Unmarshal(d.Body)
	if err != nil || e.ID != want[3].ID || e.Type != want[3].Type || string(e.Data) != string(want[3].Data) ||
		d.ContentType != relay.ContentType || d.RoutingKey != string(want[3].Type) {
		t.Errorf("delivery %+v decodes to %+v, %v; want %+v", d, e, err, want[3])
	}
}

// TestPublishFailureKeepsEvents: a failed publish leaves the events waiting, and the next try
// delivers them.
func TestPublishFailureKeepsEvents(t *testing.T) {
	out := &outbox{}
	e := out.add(t, events.UserDeleted, 7)
	l := relay.NewLocal(nil)
	got := &record{}
	subscribe(t, l, "q", []string{"#"}, got)
	r := relay.New(out, &failing{Publisher: l, n: 1}, relay.Config{}, nil)
	if n, err := r.Once(t.Context()); !errors.Is(err, broker.ErrUnavailable) || n != 0 {
		t.Fatalf("Once = %d, %v; want 0, ErrUnavailable", n, err)
	}
	if out.waiting() != 1 || len(got.ids()) != 0 {
		t.Fatalf("after a failed publish: %d waiting, %d delivered; want 1, 0", out.waiting(), len(got.ids()))
	}
	if n, err := r.Once(t.Context()); err != nil || n != 1 {
		t.Fatalf("Once = %d, %v; want 1, nil", n, err)
	}
	if ids := got.ids(); !slices.Equal(ids, []string{e.ID}) || out.waiting() != 0 {
		t.Errorf("delivered %v, %d waiting", ids, out.waiting())
	}
}

// TestLocalRedeliveryAndDeadLetters: a handler that fails is given the message again, marked
// redelivered, until MaxDeliveries; past that the message is dead-lettered for that
// subscription alone, and the outbox is not held by it.
func TestLocalRedeliveryAndDeadLetters(t *testing.T) {
	out := &outbox{}
	flaky, bad := out.add(t, events.VehicleUpdated, 1), out.add(t, events.VehicleDeleted, 2)
	l := relay.NewLocal(nil)
	picky := &record{failFor: map[string]int{flaky.ID: 2, bad.ID: 100}}
	calm := &record{}
	subscribe(t, l, "picky", []string{"#"}, picky)
	subscribe(t, l, "calm", []string{"#"}, calm)
	r := relay.New(out, l, relay.Config{}, nil)
	for try := 0; out.waiting() > 0; try++ {
		if try > 10 {
			t.Fatal("the outbox never drained")
		}
		_, _ = r.Once(t.Context())
	}
	count := map[string]int{}
	for _, d := range picky.got {
		count[d.ID]++
	}
	if count[flaky.ID] != 3 || count[bad.ID] != 3 {
		t.Errorf("picky deliveries %v: want the flaky one 3 times (2 failures, then done) and the bad one 3 (MaxDeliveries)", count)
	}
	last := picky.got[len(picky.got)-1]
	if last.ID != bad.ID || !last.Redelivered || last.Deliveries != 2 {
		t.Errorf("the last delivery %+v, want the bad one, redelivered after 2", last)
	}
	if l.DeadLetters("picky") != 1 || l.DeadLetters("calm") != 0 {
		t.Errorf("dead letters: picky %d, calm %d; want 1, 0", l.DeadLetters("picky"), l.DeadLetters("calm"))
	}
	if !slices.Contains(calm.ids(), bad.ID) {
		t.Error("the calm subscription never got the message the picky one refused")
	}
}

// TestRun: a running relay publishes events as they are written, within its interval, and
// stops when its context ends.
func TestRun(t *testing.T) {
	out := &outbox{}
	l := relay.NewLocal(nil)
	got := &record{}
	subscribe(t, l, "q", []string{"#"}, got)
	r := relay.New(out, l, relay.Config{Interval: 5 * time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for i := range 3 {
		e := out.add(t, events.UserUpdated, int64(i))
		deadline := time.Now().Add(5 * time.Second)
		for !slices.Contains(got.ids(), e.ID) {
			if time.Now().After(deadline) {
				t.Fatalf("event %d not relayed within 5 s (interval 5 ms)", i)
			}
			time.Sleep(time.Millisecond) // polling for the delivery
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
}

// TestWake: a woken relay relays at once, though its next look is an hour away, and wakes
// given while it works are not lost.
func TestWake(t *testing.T) {
	out := &outbox{}
	l := relay.NewLocal(nil)
	delivered := make(chan string, 10)
	if err := l.Subscribe(broker.Subscription{Queue: "q", Keys: []string{"#"}, MaxDeliveries: 3}, func(_ context.Context, d broker.Delivery) error {
		delivered <- d.ID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := relay.New(out, l, relay.Config{Interval: time.Hour, Coalesce: time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for i := range 3 {
		e := out.add(t, events.UserCreated, int64(i))
		r.Wake()
		r.Wake() // a second wake before the relay ran is the same wake
		select {
		case id := <-delivered:
			if id != e.ID {
				t.Fatalf("delivered %s, want %s", id, e.ID)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d not relayed 10 s after the wake (interval 1 h)", i)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
}

func ExampleMessage() {
	e, _ := events.New(events.VehicleCreated, 7, 1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), map[string]int{"id": 7})
	m, _ := relay.Message(e)
	fmt.Println(m.RoutingKey, m.ContentType)
	// Output: VEHICLE_CREATED application/cloudevents+json
}

// TestLocalLaterIsNotCounted: a handler that answers broker.ErrLater (its dependency is away)
// keeps the events in the outbox however often it does, and is never dead-lettered for it;
// once it handles them, they leave.
func TestLocalLaterIsNotCounted(t *testing.T) {
	out := &outbox{}
	e := out.add(t, events.UserUpdated, 7)
	l := relay.NewLocal(nil)
	away := true
	var tries int
	if err := l.Subscribe(broker.Subscription{Queue: "cache", Keys: []string{"#"}, MaxDeliveries: 2},
		func(_ context.Context, d broker.Delivery) error {
			tries++
			if away {
				return fmt.Errorf("cache: %w", broker.ErrLater)
			}
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	r := relay.New(out, l, relay.Config{}, nil)
	for range 10 {
		if n, err := r.Once(t.Context()); !errors.Is(err, broker.ErrLater) || n != 0 {
			t.Fatalf("Once with the handler's dependency away = %d, %v; want 0, ErrLater", n, err)
		}
	}
	if out.waiting() != 1 || l.DeadLetters("cache") != 0 {
		t.Fatalf("after 10 tries: %d waiting, %d dead; want 1, 0", out.waiting(), l.DeadLetters("cache"))
	}
	away = false
	if n, err := r.Once(t.Context()); err != nil || n != 1 {
		t.Fatalf("Once with the dependency back = %d, %v; want 1, nil", n, err)
	}
	if tries != 11 || out.waiting() != 0 {
		t.Errorf("%d tries, %d waiting; want 11, 0 (event %s)", tries, out.waiting(), e.ID)
	}
}
