package storagetest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/storage"
)

// createUsers creates n users, one after another, so that their USER_CREATED events are
// recorded in that order.
func createUsers(t *testing.T, s storage.Store, n int) []storage.User {
	t.Helper()
	us := make([]storage.User, n)
	for i := range us {
		us[i] = mustCreateUser(t, s, "user"+strconv.Itoa(i)+"@example.com")
	}
	return us
}

func ids(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

func subjects(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Subject
	}
	return out
}

func userSubjects(us []storage.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = strconv.FormatInt(u.ID, 10)
	}
	return out
}

func checkBacklog(t *testing.T, s storage.Outbox, wantN int, wantOldest time.Time) {
	t.Helper()
	n, oldest, err := s.Backlog(t.Context())
	if err != nil || n != wantN || !oldest.Equal(wantOldest) {
		t.Errorf("Backlog = %d, %v, %v; want %d, %v, nil", n, oldest, err, wantN, wantOldest)
	}
}

// testRelayEmpty: with nothing waiting, Relay publishes nothing; a batch size must be positive.
func testRelayEmpty(t *testing.T, s OutboxStore) {
	checkBacklog(t, s, 0, time.Time{})
	n, err := s.Relay(t.Context(), 10, func(context.Context, []events.Event) error {
		t.Error("publish called with nothing waiting")
		return nil
	})
	if err != nil || n != 0 {
		t.Errorf("Relay on an empty outbox = %d, %v; want 0, nil", n, err)
	}
	for _, max := range []int{0, -1} {
		if _, err := s.Relay(t.Context(), max, func(context.Context, []events.Event) error { return nil }); err == nil {
			t.Errorf("Relay(max %d) succeeded, want an error", max)
		}
	}
}

// testRelayOrderAndBatches: Relay hands out at most max events, the oldest first, and removes
// what it published; Backlog follows.
func testRelayOrderAndBatches(t *testing.T, s OutboxStore) {
	us := createUsers(t, s, 7)
	checkBacklog(t, s, 7, us[0].CreatedAt)
	for start := 0; start < len(us); start += 3 {
		want := us[start:min(start+3, len(us))]
		got := relayOnce(t, s, 3)
		if !slices.Equal(subjects(got), userSubjects(want)) {
			t.Errorf("Relay(3) handed out users %v, want %v", subjects(got), userSubjects(want))
		}
		if rest := us[start+len(want):]; len(rest) > 0 {
			checkBacklog(t, s, len(rest), rest[0].CreatedAt)
		}
	}
	checkBacklog(t, s, 0, time.Time{})
	if got := relayOnce(t, s, 3); len(got) != 0 {
		t.Errorf("Relay after the last batch handed out %d events again", len(got))
	}
}

// testRelayPublishErrorKeeps: a batch whose publish fails stays, whole and in order, and the
// next Relay hands out the same events.
func testRelayPublishErrorKeeps(t *testing.T, s OutboxStore) {
	us := createUsers(t, s, 3)
	var first []events.Event
	n, err := s.Relay(t.Context(), 10, func(_ context.Context, evs []events.Event) error {
		first = append(first, evs...)
		return errBroker
	})
	if !errors.Is(err, errBroker) || n != 0 {
		t.Errorf("Relay with a failing publish = %d, %v; want 0 and the publish error", n, err)
	}
	if len(first) != 3 {
		t.Fatalf("publish got %d events, want 3", len(first))
	}
	checkBacklog(t, s, 3, us[0].CreatedAt)
	again := relayOnce(t, s, 10)
	if !slices.Equal(ids(again), ids(first)) {
		t.Errorf("after the failure Relay handed out %v, want the same events %v", ids(again), ids(first))
	}
	checkBacklog(t, s, 0, time.Time{})
}

// testRelayConcurrent: relays running together hand out every event exactly once, each batch
// in order.
func testRelayConcurrent(t *testing.T, s OutboxStore) {
	const total, relays = 40, 4
	createUsers(t, s, total)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]int{}
	)
	for range relays {
		wg.Go(func() {
			for {
				n, err := s.Relay(t.Context(), 3, func(_ context.Context, evs []events.Event) error {
					mu.Lock()
					defer mu.Unlock()
					for i, ev := range evs {
						seen[ev.ID]++
						if i > 0 && subjectID(t, ev) <= subjectID(t, evs[i-1]) {
							t.Errorf("batch out of order: %v", subjects(evs))
						}
					}
					return nil
				})
				if err != nil {
					t.Errorf("Relay: %v", err)
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != total {
		t.Errorf("concurrent relays handed out %d distinct events, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s handed out %d times", id, n)
		}
	}
	checkBacklog(t, s, 0, time.Time{})
}

func subjectID(t *testing.T, ev events.Event) int64 {
	id, err := ev.AggregateID()
	if err != nil {
		t.Error(err)
	}
	return id
}

// holdBatch starts a Relay of at most max events whose publish holds them until release is
// closed and then fails. It returns once the batch is claimed, with the events it holds and a
// channel that yields the Relay's error.
func holdBatch(t *testing.T, s storage.Outbox, max int, release <-chan struct{}) ([]events.Event, <-chan error) {
	t.Helper()
	claimed := make(chan []events.Event, 1)
	done := make(chan error, 1)
	go func() {
		_, err := s.Relay(context.Background(), max, func(_ context.Context, evs []events.Event) error {
			claimed <- evs
			<-release
			return errBroker
		})
		done <- err
	}()
	select {
	case evs := <-claimed:
		return evs, done
	case err := <-done:
		t.Fatalf("Relay ended before publishing: %v", err)
	}
	return nil, nil
}

// testRelayFailsMidway: a relay holding a batch shares none of it; when it fails, its events
// go to the next relay, and none is lost. With SkipLocked the other relays and the writes go
// on meanwhile.
func testRelayFailsMidway(t *testing.T, s OutboxStore, skipLocked bool) {
	us := createUsers(t, s, 5)
	release := make(chan struct{})
	held, done := holdBatch(t, s, 2, release)
	defer func() {
		if release != nil {
			close(release)
			<-done
		}
	}()
	if !slices.Equal(subjects(held), userSubjects(us[:2])) {
		t.Fatalf("the held batch is users %v, want the first two %v", subjects(held), userSubjects(us[:2]))
	}
	var meanwhile []events.Event
	total := len(us)
	if skipLocked {
		total++
		// Bounded: a relay or a write that waited for the held batch would wait for ever.
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		late, err := s.CreateUser(ctx, storage.NewUser{Email: "late@example.com", Name: "Late", PasswordHash: "h"})
		if err != nil {
			t.Fatalf("CreateUser while a batch is held: %v", err)
		}
		if _, err := s.Relay(ctx, 10, func(_ context.Context, evs []events.Event) error {
			meanwhile = evs
			return nil
		}); err != nil {
			t.Fatalf("Relay while a batch is held: %v", err)
		}
		want := append(userSubjects(us[2:]), strconv.FormatInt(late.ID, 10))
		if !slices.Equal(subjects(meanwhile), want) {
			t.Errorf("while a batch was held, another relay handed out users %v, want %v", subjects(meanwhile), want)
		}
	}
	close(release)
	release = nil
	if err := <-done; !errors.Is(err, errBroker) {
		t.Errorf("the failed relay returned %v, want the publish error", err)
	}
	after := drain(t, s)
	if len(after) < len(held) || !slices.Equal(ids(after[:len(held)]), ids(held)) {
		t.Errorf("after the failure relays handed out %v, first the held %v", ids(after), ids(held))
	}
	got := map[string]int{}
	for _, ev := range append(meanwhile, after...) {
		got[ev.ID]++
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s handed out %d times by successful relays", id, n)
		}
	}
	if len(got) != total {
		t.Errorf("successful relays handed out %d distinct events, want every one of the %d", len(got), total)
	}
}

// testRelayContextEnds: a relay whose context ends while it publishes (a relay shut down or
// timed out mid-way) keeps its batch: another relay gets it, soon.
func testRelayContextEnds(t *testing.T, s OutboxStore) {
	us := createUsers(t, s, 3)
	ctx, cancel := context.WithCancel(t.Context())
	n, err := s.Relay(ctx, 10, func(ctx context.Context, evs []events.Event) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	})
	if err == nil || n != 0 {
		t.Errorf("Relay whose context ended while publishing = %d, %v; want 0 and an error", n, err)
	}
	// The server may need a moment to notice the connection the cancellation closed and to
	// release its locks, so poll.
	var got []events.Event
	for deadline := time.Now().Add(5 * time.Second); len(got) < len(us) && time.Now().Before(deadline); {
		got = append(got, relayOnce(t, s, 10)...)
		if len(got) < len(us) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !slices.Equal(subjects(got), userSubjects(us)) {
		t.Errorf("after the cancelled relay, relays handed out users %v, want %v", subjects(got), userSubjects(us))
	}
}
