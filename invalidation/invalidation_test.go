package invalidation_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/invalidation"
	"github.com/motorpool/motorpool/relay"
)

// fakeCache records invalidations and fails while down; during runs inside each call.
type fakeCache struct {
	mu     sync.Mutex
	down   bool
	calls  [][]string // keys then families, per call that succeeded
	during func()
}

var errDown = errors.New("cache unreachable")

func (c *fakeCache) Invalidate(_ context.Context, keys, families []string) error {
	c.mu.Lock()
	during := c.during
	c.during = nil
	c.mu.Unlock()
	if during != nil {
		during()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return errDown
	}
	c.calls = append(c.calls, append(slices.Clone(keys), families...))
	return nil
}

func (c *fakeCache) setDown(down bool) {
	c.mu.Lock()
	c.down = down
	c.mu.Unlock()
}

func (c *fakeCache) took() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

// clock is an After that never sleeps: it records the waits asked for, and runs tick.
type clock struct {
	waits []time.Duration
	tick  func(n int)
}

func (c *clock) after(d time.Duration) <-chan time.Time {
	c.waits = append(c.waits, d)
	if c.tick != nil {
		c.tick(len(c.waits))
	}
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

func userUpdated(t *testing.T, id int64, email, previous string) events.Event {
	t.Helper()
	ev, err := events.New(events.UserUpdated, id, 2, time.Now(), events.User{ID: id, Email: email, Name: "Ada", Role: "user", PreviousEmail: previous})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func delivery(t *testing.T, ev events.Event) broker.Delivery {
	t.Helper()
	m, err := relay.Message(ev)
	if err != nil {
		t.Fatal(err)
	}
	return broker.Delivery{Message: m}
}

func TestCommittedInvalidates(t *testing.T) {
	c := &fakeCache{}
	inv := invalidation.New(c, invalidation.Config{})
	inv.Committed(t.Context(), []events.Event{userUpdated(t, 7, "lovelace@example.com", "ada@example.com")})
	want := [][]string{{"user:7", "user:email:lovelace@example.com", "user:email:ada@example.com", "users:all"}}
	if d := cmp.Diff(want, c.took()); d != "" {
		t.Errorf("invalidations (-want +got):\n%s", d)
	}
	if inv.Pending() != 0 || inv.Bypassed("user:7", "") {
		t.Errorf("after a successful invalidation: %d pending, user:7 bypassed %v", inv.Pending(), inv.Bypassed("user:7", ""))
	}
	inv.Committed(t.Context(), nil)
	if calls := c.took(); len(calls) != 0 {
		t.Errorf("a commit of no events invalidated %v", calls)
	}
}

// TestCommittedFailureIsKept: a failed invalidation marks its keys and families pending (and
// bypassed) until Retry reaches the cache.
func TestCommittedFailureIsKept(t *testing.T) {
	c := &fakeCache{down: true}
	inv := invalidation.New(c, invalidation.Config{})
	inv.Committed(t.Context(), []events.Event{userUpdated(t, 7, "ada@example.com", "ada@example.com")})
	if n := inv.Pending(); n != 3 {
		t.Errorf("Pending = %d, want 3 (user:7, user:email:ada@example.com, users:all)", n)
	}
	for _, kf := range [][2]string{{"user:7", ""}, {"user:email:ada@example.com", ""}, {"", "users:all"}, {"user:page", "users:all"}} {
		if !inv.Bypassed(kf[0], kf[1]) {
			t.Errorf("Bypassed(%q, %q) = false while its invalidation is pending", kf[0], kf[1])
		}
	}
	if inv.Bypassed("user:8", "vehicles:all") || inv.Bypassed("", "") {
		t.Error("keys no invalidation names are bypassed")
	}
	if err := inv.Retry(t.Context()); !errors.Is(err, errDown) || inv.Pending() != 3 {
		t.Errorf("Retry with the cache down = %v, %d pending; want errDown, 3", err, inv.Pending())
	}
	c.setDown(false)
	if err := inv.Retry(t.Context()); err != nil || inv.Pending() != 0 {
		t.Errorf("Retry with the cache back = %v, %d pending; want nil, 0", err, inv.Pending())
	}
	calls := c.took()
	if len(calls) != 1 || len(calls[0]) != 3 {
		t.Errorf("Retry invalidated %v, want the 3 pending in one call", calls)
	}
}

// TestRetryKeepsNewerFailures: a key that fails again while a retry of it is in flight stays
// pending: the retry's invalidation may have reached the cache before the newer commit.
func TestRetryKeepsNewerFailures(t *testing.T) {
	c := &fakeCache{down: true}
	inv := invalidation.New(c, invalidation.Config{})
	ev := userUpdated(t, 7, "ada@example.com", "ada@example.com")
	inv.Committed(t.Context(), []events.Event{ev})
	c.setDown(false)
	c.during = func() {
		c.setDown(true)
		inv.Committed(t.Context(), []events.Event{ev}) // fails: marks the keys again
		c.setDown(false)
	}
	if err := inv.Retry(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := inv.Pending(); n != 3 {
		t.Errorf("Pending = %d after a retry that raced a newer failure, want 3", n)
	}
	if err := inv.Retry(t.Context()); err != nil || inv.Pending() != 0 {
		t.Errorf("second Retry = %v, %d pending; want nil, 0", err, inv.Pending())
	}
}

// TestHandlerWaits: on RabbitMQ the consumer holds a delivery while the cache is away, backing
// off, then invalidates and clears this instance's marks; it never fails the delivery for it.
func TestHandlerWaits(t *testing.T) {
	c := &fakeCache{down: true}
	clk := &clock{}
	clk.tick = func(n int) {
		if n == 6 {
			c.setDown(false)
		}
	}
	inv := invalidation.New(c, invalidation.Config{After: clk.after, MaxBackoff: time.Second})
	ev := userUpdated(t, 7, "lovelace@example.com", "ada@example.com")
	inv.Committed(t.Context(), []events.Event{ev})
	if err := inv.Handler(true)(t.Context(), delivery(t, ev)); err != nil {
		t.Fatalf("Handler = %v, want nil once the cache is back", err)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	if !slices.Equal(clk.waits, want) {
		t.Errorf("waits %v, want %v", clk.waits, want)
	}
	if inv.Pending() != 0 {
		t.Errorf("Pending = %d after the consumer invalidated, want 0", inv.Pending())
	}
	if calls := c.took(); len(calls) != 1 || len(calls[0]) != 4 {
		t.Errorf("invalidations %v, want one of the event's 4 names", calls)
	}
}

func TestHandlerWaitEndsWithContext(t *testing.T) {
	c := &fakeCache{down: true}
	ctx, cancel := context.WithCancel(t.Context())
	clk := &clock{tick: func(n int) {
		if n == 3 {
			cancel()
		}
	}}
	inv := invalidation.New(c, invalidation.Config{After: func(d time.Duration) <-chan time.Time {
		ch := clk.after(d)
		if ctx.Err() != nil {
			return make(chan time.Time) // never: ctx's end must win
		}
		return ch
	}})
	err := inv.Handler(true)(ctx, delivery(t, userUpdated(t, 7, "a@example.com", "a@example.com")))
	if !errors.Is(err, context.Canceled) || errors.Is(err, broker.ErrLater) {
		t.Errorf("Handler after ctx ended = %v, want context.Canceled", err)
	}
}

// TestHandlerLater: in process the consumer fails at once with broker.ErrLater, which
// relay.Local does not count, and marks the keys here.
func TestHandlerLater(t *testing.T) {
	c := &fakeCache{down: true}
	inv := invalidation.New(c, invalidation.Config{After: func(time.Duration) <-chan time.Time {
		t.Error("the in-process handler waited")
		return nil
	}})
	err := inv.Handler(false)(t.Context(), delivery(t, userUpdated(t, 7, "a@example.com", "a@example.com")))
	if !errors.Is(err, broker.ErrLater) {
		t.Errorf("Handler with the cache down = %v, want ErrLater", err)
	}
	if !inv.Bypassed("user:7", "") {
		t.Error("user:7 not bypassed after the consumer failed to invalidate it")
	}
}

// TestHandlerMalformed: a body that is no event, or an event whose data does not decode,
// fails the delivery at once (not ErrLater: it dead-letters after MaxDeliveries), without a
// call to the cache; an unknown type is acknowledged and ignored.
func TestHandlerMalformed(t *testing.T) {
	c := &fakeCache{}
	inv := invalidation.New(c, invalidation.Config{})
	bad := userUpdated(t, 7, "a@example.com", "a@example.com")
	bad.Data = []byte(`{"id":"seven"}`)
	badMsg := delivery(t, bad)
	unknown := bad
	unknown.Type = "FLEET_RENAMED"
	for name, d := range map[string]broker.Delivery{
		"not JSON":      {Message: broker.Message{ID: "m1", Body: []byte("{")}},
		"not an event":  {Message: broker.Message{ID: "m2", Body: []byte(`{"specversion":"0.3"}`)}},
		"bad user data": badMsg,
	} {
		for _, wait := range []bool{true, false} {
			err := inv.Handler(wait)(t.Context(), d)
			if err == nil || errors.Is(err, broker.ErrLater) {
				t.Errorf("%s (wait %v): Handler = %v, want a counted error", name, wait, err)
			}
		}
	}
	if err := inv.Handler(true)(t.Context(), delivery(t, unknown)); err != nil {
		t.Errorf("unknown type: Handler = %v, want nil", err)
	}
	if calls := c.took(); len(calls) != 0 {
		t.Errorf("malformed events invalidated %v", calls)
	}
}

// ctxCache fails when the context it is given has ended.
type ctxCache struct{ fakeCache }

func (c *ctxCache) Invalidate(ctx context.Context, keys, families []string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return c.fakeCache.Invalidate(ctx, keys, families)
}

// TestCommittedOutlivesTheWritesDeadline: the observer runs with the write's context, which
// DB_QUERY_TIMEOUT's wrapper (storage/deadline) may have all but used up, or the client may
// have cancelled, by the time the commit returns; the invalidation must still be made.
func TestCommittedOutlivesTheWritesDeadline(t *testing.T) {
	c := &ctxCache{}
	inv := invalidation.New(c, invalidation.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	inv.Committed(ctx, []events.Event{userUpdated(t, 7, "a@example.com", "a@example.com")})
	if calls := c.took(); len(calls) != 1 || inv.Pending() != 0 {
		t.Errorf("after a commit whose context had ended: invalidations %v, %d pending; want one, 0", calls, inv.Pending())
	}
}
