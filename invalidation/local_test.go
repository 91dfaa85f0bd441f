package invalidation_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/invalidation"
	"github.com/motorpool/motorpool/relay"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/sqlite"
)

// TestLocalKeepsFailedInvalidations: relayed in process, an event whose invalidation cannot
// reach the cache stays in the outbox, however often the relay tries and past the
// subscription's MaxDeliveries; after a restart (a new process's invalidator, relay and
// consumer on the same database) with the cache back, it is relayed and invalidates.
func TestLocalKeepsFailedInvalidations(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "motorpool.db")
	open := func() *sqlite.Store {
		s, err := sqlite.Open(ctx, sqlite.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	start := func(db *sqlite.Store, c *fakeCache) (storage.Store, *relay.Relay, *relay.Local) {
		inv := invalidation.New(c, invalidation.Config{})
		local := relay.NewLocal(nil)
		if err := local.Subscribe(broker.Subscription{Queue: "motorpool.cache", Keys: []string{"#"}, MaxDeliveries: 3}, inv.Handler(false)); err != nil {
			t.Fatal(err)
		}
		return db.Observe(inv.Committed), relay.New(db, local, relay.Config{}, nil), local
	}

	db := open()
	c := &fakeCache{down: true}
	store, r, local := start(db, c)
	u, err := store.CreateUser(ctx, storage.NewUser{Email: "ada@example.com", Name: "Ada", PasswordHash: "h"})
	if err != nil {
		t.Fatalf("CreateUser with the cache down: %v (the write must commit)", err)
	}
	for try := range 5 {
		if n, err := r.Once(ctx); n != 0 || !errors.Is(err, broker.ErrLater) {
			t.Fatalf("relay try %d with the cache down = %d, %v; want 0, ErrLater", try, n, err)
		}
	}
	if n, _, err := db.Backlog(ctx); err != nil || n != 1 {
		t.Fatalf("Backlog = %d, %v; want the event still waiting", n, err)
	}
	if local.DeadLetters("motorpool.cache") != 0 {
		t.Fatal("a cache outage dead-lettered the invalidation")
	}
	_ = db.Close() // the process stops (or dies) with the event in the outbox

	db = open()
	defer db.Close()
	c = &fakeCache{}
	_, r, _ = start(db, c)
	if err := r.Drain(ctx); err != nil {
		t.Fatalf("Drain after the restart: %v", err)
	}
	calls := c.took()
	if len(calls) != 1 || calls[0][0] != "user:1" || u.ID != 1 {
		t.Errorf("invalidations after the restart %v, want the created user's", calls)
	}
	if n, _, _ := db.Backlog(ctx); n != 0 {
		t.Errorf("Backlog = %d after the drain, want 0", n)
	}
}
