package projection_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/projection"
	"github.com/motorpool/motorpool/storage"
)

// fake records what is applied; fail makes the next calls fail with its errors, in turn.
type fake struct {
	applied []string
	fail    []error
}

func (f *fake) next(what string) error {
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		return err
	}
	f.applied = append(f.applied, what)
	return nil
}

func (f *fake) KnownUser(context.Context, int64) (bool, error)   { return false, nil }
func (f *fake) UserDeleted(context.Context, int64) (bool, error) { return false, nil }
func (f *fake) ApplyUserCreated(_ context.Context, id int64) error {
	return f.next(fmt.Sprint("created ", id))
}
func (f *fake) ApplyUserDeleted(_ context.Context, id int64) error {
	return f.next(fmt.Sprint("deleted ", id))
}

func delivery(t *testing.T, typ events.Type, data any) broker.Delivery {
	t.Helper()
	ev, err := events.New(typ, 12, 1, time.Now(), data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := events.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return broker.Delivery{Message: broker.Message{ID: ev.ID, RoutingKey: string(typ), Body: b}}
}

// The users' creations and deletions reach the projection, and each applied event is told to
// Applied; other events change nothing.
func TestAppliesUserEvents(t *testing.T) {
	f := &fake{}
	var told []events.Type
	h := projection.Handler(f, projection.Config{Applied: func(_ context.Context, ev events.Event) { told = append(told, ev.Type) }})(true)
	for _, d := range []broker.Delivery{
		delivery(t, events.UserCreated, events.User{ID: 12}),
		delivery(t, events.UserUpdated, events.User{ID: 12}),
		delivery(t, events.VehicleCreated, events.Vehicle{ID: 3, UserID: 12}),
		delivery(t, events.UserDeleted, events.User{ID: 12}),
		delivery(t, events.UserCreated, events.User{ID: 12}), // a redelivery: the projection ignores it
	} {
		if err := h(t.Context(), d); err != nil {
			t.Fatalf("%s: %v", d.RoutingKey, err)
		}
	}
	if diff := cmp.Diff([]string{"created 12", "deleted 12", "created 12"}, f.applied); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]events.Type{events.UserCreated, events.UserDeleted, events.UserCreated}, told); diff != "" {
		t.Errorf("Applied heard (-want +got):\n%s", diff)
	}
}

// A database that does not answer holds a RabbitMQ delivery, with backoff, until it does, and
// fails an in-process one with ErrLater, which the outbox keeps; neither reaches Applied first.
func TestOutageIsNotTheMessagesFault(t *testing.T) {
	down := fmt.Errorf("%w: postgres: connection refused", storage.ErrUnavailable)
	var waits []time.Duration
	after := func(d time.Duration) <-chan time.Time {
		waits = append(waits, d)
		ch := make(chan time.Time, 1)
		ch <- time.Time{}
		return ch
	}
	applied := 0
	f := &fake{fail: []error{down, down}}
	cfg := projection.Config{After: after, Applied: func(context.Context, events.Event) { applied++ }}
	if err := projection.Handler(f, cfg)(true)(t.Context(), delivery(t, events.UserDeleted, events.User{ID: 4})); err != nil {
		t.Fatalf("waiting handler: %v", err)
	}
	if diff := cmp.Diff([]time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, waits); diff != "" || applied != 1 {
		t.Errorf("waits (-want +got):\n%s; applied %d times", diff, applied)
	}

	f = &fake{fail: []error{down}}
	err := projection.Handler(f, cfg)(false)(t.Context(), delivery(t, events.UserCreated, events.User{ID: 4}))
	if !errors.Is(err, broker.ErrLater) || len(f.applied) != 0 || applied != 1 {
		t.Errorf("in-process handler: %v, applied %v (Applied %d), want ErrLater and nothing applied", err, f.applied, applied)
	}
}

// A malformed event, or a failure that is not an outage, is an error that uses up the
// message's deliveries (and ends in the dead-letter queue), not ErrLater.
func TestBadEventFails(t *testing.T) {
	h := projection.Handler(&fake{fail: []error{errors.New("constraint")}}, projection.Config{})(true)
	for name, d := range map[string]broker.Delivery{
		"not an event": {Message: broker.Message{ID: "x", Body: []byte("{")}},
		"no user id":   delivery(t, events.UserCreated, events.User{}),
		"refused":      delivery(t, events.UserCreated, events.User{ID: 1}),
	} {
		if err := h(t.Context(), d); err == nil || errors.Is(err, broker.ErrLater) {
			t.Errorf("%s: %v, want a counted failure", name, err)
		}
	}
}

func TestSubscription(t *testing.T) {
	got := projection.Subscription("")
	want := broker.Subscription{Queue: broker.DefaultExchange + ".vehicles.projection",
		Keys: []string{"USER_CREATED", "USER_DELETED"}, MaxDeliveries: 5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Subscription (-want +got):\n%s", diff)
	}
}
