package storagetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/storage"
)

// commitLog records what a storage.Committed observer heard, and checks, while it is being
// called, that the write is visible to another connection: that it runs after the commit.
type commitLog struct {
	t     *testing.T
	plain storage.Store // the unobserved store, for the visibility check
	mu    sync.Mutex
	calls [][]events.Event
}

func (l *commitLog) committed(ctx context.Context, evs []events.Event) {
	for _, ev := range evs {
		id, err := ev.AggregateID()
		if err != nil {
			l.t.Errorf("observer got %s with subject %q", ev.Type, ev.Subject)
			continue
		}
		var readErr error
		switch ev.Type.Aggregate() {
		case events.AggregateUser:
			_, readErr = l.plain.GetUser(context.WithoutCancel(ctx), id)
		case events.AggregateVehicle:
			_, readErr = l.plain.GetVehicle(context.WithoutCancel(ctx), id)
		}
		deleted := ev.Type == events.UserDeleted || ev.Type == events.VehicleDeleted
		switch {
		case deleted && !errors.Is(readErr, storage.ErrNotFound):
			l.t.Errorf("observer called for %s of %s before the deletion is visible (read: %v)", ev.Type, ev.Subject, readErr)
		case !deleted && readErr != nil:
			l.t.Errorf("observer called for %s of %s before the record is visible: %v", ev.Type, ev.Subject, readErr)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, slices.Clone(evs))
}

func (l *commitLog) take() [][]events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls = nil
	return c
}

// testOutboxCommitObserved: a store returned by storage.Observable's Observe calls its
// observer once after each successful write, after the commit, with exactly the events the
// write recorded (those Relay hands out later, in the same order); a failed write, a read and
// a relay call it not at all.
func testOutboxCommitObserved(t *testing.T, plain OutboxStore) {
	ctx := t.Context()
	ob, ok := plain.(storage.Observable)
	if !ok {
		t.Fatalf("%T does not implement storage.Observable", plain)
	}
	log := &commitLog{t: t, plain: plain}
	s := ob.Observe(log.committed)
	if _, ok := s.(storage.Outbox); !ok {
		t.Fatalf("Observe returned %T, which is not the backend's outbox", s)
	}
	var heard []events.Event
	once := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		calls := log.take()
		if len(calls) != 1 {
			t.Fatalf("%s: observer called %d times, want once", what, len(calls))
		}
		if len(calls[0]) == 0 {
			t.Fatalf("%s: observer called with no events", what)
		}
		heard = append(heard, calls[0]...)
	}
	root := mustCreateAdmin(t, s, "root@example.com")
	once("CreateUser (admin)", nil)
	u := mustCreateUser(t, s, "ada@example.com")
	once("CreateUser", nil)
	g := mustCreateUser(t, s, "grace@example.com")
	once("CreateUser", nil)
	_, err := s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: "lovelace@example.com", Name: "Ada"})
	once("UpdateUser", err)
	u, err = s.SetPassword(ctx, u.ID, "hash-2", u.PasswordVersion+1)
	once("SetPassword", err)
	v := mustCreateVehicle(t, s, u.ID, "VIN-1")
	once("CreateVehicle", nil)
	mustCreateVehicle(t, s, u.ID, "VIN-2")
	once("CreateVehicle", nil)
	_, err = s.UpdateVehicle(ctx, v.ID, vehicleUpdate(&g.ID, "VIN-1"))
	once("UpdateVehicle", err)
	once("DeleteVehicle", s.DeleteVehicle(ctx, v.ID))
	mustCreateVehicle(t, s, u.ID, "VIN-3")
	once("CreateVehicle", nil)
	once("DeleteUser", s.DeleteUser(ctx, u.ID))
	if n := len(heard); n != 13 { // 3 users, 3 vehicles, 1+1+1 updates, 1 deletion, 2+1 by DeleteUser
		t.Errorf("observer heard %d events, want 13: %v", n, describe(heard))
	}

	// Failures, reads and relays call nothing.
	member := storage.RoleUser
	_, err = s.CreateUser(ctx, storage.NewUser{Email: "GRACE@example.com", Name: "X", PasswordHash: "h"})
	_, err2 := s.UpdateUser(ctx, root.ID, storage.UserUpdate{Email: root.Email, Name: "X", Role: &member})
	_, err3 := s.CreateVehicle(ctx, newVehicle(9999, "VIN-9"))
	err4 := s.DeleteUser(ctx, root.ID)
	err5 := s.DeleteVehicle(ctx, 9999)
	_, err6 := s.SetPassword(ctx, g.ID, "h", g.PasswordVersion+5)
	for i, err := range []error{err, err2, err3, err4, err5, err6} {
		if err == nil {
			t.Errorf("failing write #%d succeeded", i+1)
		}
	}
	if _, err := s.GetUser(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	relayed := drain(t, s.(storage.Outbox))
	if calls := log.take(); len(calls) != 0 {
		t.Errorf("failed writes, a read and relays called the observer %d times: %v", len(calls), calls)
	}
	ids := func(evs []events.Event) []string {
		out := make([]string, len(evs))
		for i, e := range evs {
			out[i] = e.ID + " " + string(e.Type) + "@" + e.Subject
		}
		return out
	}
	if !slices.Equal(ids(heard), ids(relayed)) {
		t.Errorf("observer heard\n%v\nthe relay handed out\n%v", ids(heard), ids(relayed))
	}
}
