package storagetest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/storage"
)

// OutboxStore is a Store together with the outbox its writes record their events in.
type OutboxStore interface {
	storage.Store
	storage.Outbox
}

// OutboxOptions describes how a backend's relays run together.
type OutboxOptions struct {
	// SkipLocked: while one relay holds a batch, another takes the next waiting events at once
	// and writes go on (PostgreSQL). Otherwise relays and writes wait their turn (SQLite).
	SkipLocked bool
}

// RunOutbox runs the storage.Outbox conformance suite: the events each write records, the
// relay's claims, and the commit observer (storage.Observable, which every backend must be). newStore must return a new, empty, migrated store and close it when its t
// ends. The subtests run in parallel.
func RunOutbox(t *testing.T, newStore func(t *testing.T) OutboxStore, opts OutboxOptions) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s OutboxStore)
	}{
		{"UserEvents", testOutboxUserEvents},
		{"VehicleEvents", testOutboxVehicleEvents},
		{"FailedWritesRecordNothing", testOutboxFailedWrites},
		{"DeleteUserCascades", testOutboxDeleteUserCascades},
		{"DeleteUserRacesCreateVehicle", testOutboxDeleteUserRacesCreateVehicle},
		{"ConcurrentUpdatesChain", testOutboxConcurrentUpdatesChain},
		{"RelayEmpty", testRelayEmpty},
		{"RelayOrderAndBatches", testRelayOrderAndBatches},
		{"RelayPublishErrorKeepsEvents", testRelayPublishErrorKeeps},
		{"RelayConcurrent", testRelayConcurrent},
		{"RelayFailsMidway", func(t *testing.T, s OutboxStore) { testRelayFailsMidway(t, s, opts.SkipLocked) }},
		{"RelayContextEnds", testRelayContextEnds},
		{"CommitObserved", testOutboxCommitObserved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// drain relays every waiting event in batches and returns them in the order handed out.
func drain(t *testing.T, s storage.Outbox) []events.Event {
	t.Helper()
	var all []events.Event
	for {
		batch := relayOnce(t, s, 100)
		if len(batch) == 0 {
			return all
		}
		all = append(all, batch...)
	}
}

// relayOnce relays one batch of at most max events and returns it.
func relayOnce(t *testing.T, s storage.Outbox, max int) []events.Event {
	t.Helper()
	var got []events.Event
	n, err := s.Relay(t.Context(), max, func(_ context.Context, evs []events.Event) error {
		got = append(got, evs...)
		return nil
	})
	if err != nil {
		t.Fatalf("Relay: %v", err)
	}
	if n != len(got) {
		t.Fatalf("Relay = %d, but published %d events", n, len(got))
	}
	return got
}

// about returns the events about one record, in the order given.
func about(evs []events.Event, a events.Aggregate, id int64) []events.Event {
	var out []events.Event
	for _, ev := range evs {
		if ev.Type.Aggregate() == a && ev.Subject == strconv.FormatInt(id, 10) {
			out = append(out, ev)
		}
	}
	return out
}

// describe lists events as TYPE#sequence, for failure messages.
func describe(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = string(ev.Type) + "#" + strconv.FormatInt(ev.Sequence, 10) + "@" + ev.Subject
	}
	return out
}

// checkEnvelope checks the attributes every event has: a UUID, the aggregate's source, the
// record's id as subject, the type and sequence wanted, a UTC time in [notBefore, now], and
// data that never holds a password hash.
func checkEnvelope(t *testing.T, ev events.Event, typ events.Type, id, seq int64, notBefore time.Time) {
	t.Helper()
	if ev.Type != typ || ev.Sequence != seq {
		t.Errorf("event %s #%d, want %s #%d", ev.Type, ev.Sequence, typ, seq)
	}
	if _, err := uuid.Parse(ev.ID); err != nil {
		t.Errorf("%s #%d: id %q is not a UUID", ev.Type, ev.Sequence, ev.ID)
	}
	if ev.Source != typ.Aggregate().Source() || ev.Subject != strconv.FormatInt(id, 10) {
		t.Errorf("%s #%d: source %q subject %q, want %q %q", ev.Type, ev.Sequence, ev.Source, ev.Subject, typ.Aggregate().Source(), strconv.FormatInt(id, 10))
	}
	checkTime(t, string(ev.Type)+" time", ev.Time, notBefore)
	if strings.Contains(strings.ToLower(string(ev.Data)), "hash") {
		t.Errorf("%s #%d data shows a password hash: %s", ev.Type, ev.Sequence, ev.Data)
	}
}

func userData(u storage.User, previousEmail string) events.User {
	return events.User{
		ID: u.ID, Email: u.Email, Name: u.Name, Role: string(u.Role),
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, PreviousEmail: previousEmail,
	}
}

func vehicleData(v storage.Vehicle, previousUserID int64) events.Vehicle {
	return events.Vehicle{
		ID: v.ID, UserID: v.UserID, Make: v.Make, Model: v.Model, Year: v.Year, VIN: v.VIN,
		LicensePlate: v.LicensePlate, Color: v.Color, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt,
		PreviousUserID: previousUserID,
	}
}

func checkUserEvent(t *testing.T, ev events.Event, typ events.Type, seq int64, notBefore time.Time, want events.User) {
	t.Helper()
	checkEnvelope(t, ev, typ, want.ID, seq, notBefore)
	got, err := ev.User()
	if err != nil {
		t.Fatalf("%s #%d: %v", typ, seq, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s #%d data (-want +got):\n%s", typ, seq, diff)
	}
}

func checkVehicleEvent(t *testing.T, ev events.Event, typ events.Type, seq int64, notBefore time.Time, want events.Vehicle) {
	t.Helper()
	checkEnvelope(t, ev, typ, want.ID, seq, notBefore)
	got, err := ev.Vehicle()
	if err != nil {
		t.Fatalf("%s #%d: %v", typ, seq, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s #%d data (-want +got):\n%s", typ, seq, diff)
	}
}

// testOutboxUserEvents: every kind of user write records one event, numbered from 1, with the
// user as the API shows them and, on updates, the email replaced.
func testOutboxUserEvents(t *testing.T, s OutboxStore) {
	ctx := t.Context()
	before := storage.Now()
	root := mustCreateAdmin(t, s, "root@example.com")
	u := mustCreateUser(t, s, "ada@example.com")
	type step struct {
		typ  events.Type
		user storage.User
		prev string
	}
	steps := []step{{events.UserCreated, u, ""}}
	update := func(what string, uu storage.UserUpdate) {
		t.Helper()
		got, err := s.UpdateUser(ctx, u.ID, uu)
		if err != nil {
			t.Fatalf("UpdateUser (%s): %v", what, err)
		}
		steps = append(steps, step{events.UserUpdated, got, steps[len(steps)-1].user.Email})
	}
	admin, member, hash := storage.RoleAdmin, storage.RoleUser, "hash-new"
	update("profile", storage.UserUpdate{Email: u.Email, Name: "Countess"})
	update("email", storage.UserUpdate{Email: "lovelace@example.com", Name: "Countess"})
	update("password", storage.UserUpdate{Email: "lovelace@example.com", Name: "Countess", PasswordHash: &hash})
	update("promotion", storage.UserUpdate{Email: "lovelace@example.com", Name: "Countess", Role: &admin})
	update("demotion", storage.UserUpdate{Email: "lovelace@example.com", Name: "Countess", Role: &member})
	last := steps[len(steps)-1].user
	reset, err := s.SetPassword(ctx, u.ID, "hash-reset", last.PasswordVersion)
	if err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	steps = append(steps, step{events.UserUpdated, reset, reset.Email})
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	steps = append(steps, step{events.UserDeleted, reset, ""})

	all := drain(t, s)
	got := about(all, events.AggregateUser, u.ID)
	if len(got) != len(steps) {
		t.Fatalf("%d events about the user, want %d: %v", len(got), len(steps), describe(got))
	}
	for i, st := range steps {
		checkUserEvent(t, got[i], st.typ, int64(i+1), before, userData(st.user, st.prev))
		if st.typ != events.UserDeleted && !got[i].Time.Equal(st.user.UpdatedAt) {
			t.Errorf("%s #%d time %v, want the write's %v", st.typ, i+1, got[i].Time, st.user.UpdatedAt)
		}
	}
	if rootEvs := about(all, events.AggregateUser, root.ID); len(rootEvs) != 1 {
		t.Errorf("events about the other user: %v, want their USER_CREATED", describe(rootEvs))
	} else {
		checkUserEvent(t, rootEvs[0], events.UserCreated, 1, before, userData(root, ""))
	}
	if len(all) != len(steps)+1 {
		t.Errorf("%d events in all, want %d", len(all), len(steps)+1)
	}
	seen := map[string]bool{}
	for _, ev := range all {
		if seen[ev.ID] {
			t.Errorf("event id %s used twice", ev.ID)
		}
		seen[ev.ID] = true
	}
}

// testOutboxVehicleEvents: a vehicle's writes record its events, numbered from 1, with the
// owner an update replaced; its owners' own events are not touched.
func testOutboxVehicleEvents(t *testing.T, s OutboxStore) {
	ctx := t.Context()
	before := storage.Now()
	a := mustCreateUser(t, s, "a@example.com")
	b := mustCreateUser(t, s, "b@example.com")
	v := mustCreateVehicle(t, s, a.ID, "VIN-1")
	kept, err := s.UpdateVehicle(ctx, v.ID, vehicleUpdate(nil, "VIN-1"))
	if err != nil {
		t.Fatalf("UpdateVehicle (same owner): %v", err)
	}
	moved, err := s.UpdateVehicle(ctx, v.ID, vehicleUpdate(&b.ID, "VIN-2"))
	if err != nil {
		t.Fatalf("UpdateVehicle (new owner): %v", err)
	}
	if err := s.DeleteVehicle(ctx, v.ID); err != nil {
		t.Fatalf("DeleteVehicle: %v", err)
	}

	all := drain(t, s)
	got := about(all, events.AggregateVehicle, v.ID)
	if len(got) != 4 {
		t.Fatalf("events about the vehicle: %v, want 4", describe(got))
	}
	checkVehicleEvent(t, got[0], events.VehicleCreated, 1, before, vehicleData(v, 0))
	checkVehicleEvent(t, got[1], events.VehicleUpdated, 2, before, vehicleData(kept, a.ID))
	checkVehicleEvent(t, got[2], events.VehicleUpdated, 3, before, vehicleData(moved, a.ID))
	checkVehicleEvent(t, got[3], events.VehicleDeleted, 4, moved.UpdatedAt, vehicleData(moved, 0))
	for i, want := range []time.Time{v.CreatedAt, kept.UpdatedAt, moved.UpdatedAt} {
		if !got[i].Time.Equal(want) {
			t.Errorf("%s #%d time %v, want the write's %v", got[i].Type, i+1, got[i].Time, want)
		}
	}
	for _, u := range []storage.User{a, b} {
		if evs := about(all, events.AggregateUser, u.ID); len(evs) != 1 || evs[0].Type != events.UserCreated {
			t.Errorf("events about owner %d: %v, want their USER_CREATED only", u.ID, describe(evs))
		}
	}
}

// testOutboxFailedWrites: a write that fails records nothing and leaves no gap in the
// sequence of the record it named.
func testOutboxFailedWrites(t *testing.T, s OutboxStore) {
	ctx := t.Context()
	root := mustCreateAdmin(t, s, "root@example.com")
	u := mustCreateUser(t, s, "ada@example.com")
	mustCreateUser(t, s, "grace@example.com")
	v := mustCreateVehicle(t, s, u.ID, "VIN-1")
	mustCreateVehicle(t, s, u.ID, "VIN-2")
	drain(t, s)

	member := storage.RoleUser
	late, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	failures := map[string]func() error{
		"CreateUser taken email": func() error {
			_, err := s.CreateUser(ctx, storage.NewUser{Email: "ADA@example.com", Name: "X", PasswordHash: "h"})
			return err
		},
		"CreateUser past its deadline": func() error {
			_, err := s.CreateUser(late, storage.NewUser{Email: "late@example.com", Name: "X", PasswordHash: "h"})
			return err
		},
		"UpdateUser unknown": func() error {
			_, err := s.UpdateUser(ctx, 9999, storage.UserUpdate{Email: "x@example.com", Name: "X"})
			return err
		},
		"UpdateUser taken email": func() error {
			_, err := s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: "grace@example.com", Name: "X"})
			return err
		},
		"UpdateUser last admin": func() error {
			_, err := s.UpdateUser(ctx, root.ID, storage.UserUpdate{Email: root.Email, Name: "X", Role: &member})
			return err
		},
		"SetPassword stale":   func() error { _, err := s.SetPassword(ctx, u.ID, "h2", u.PasswordVersion+1); return err },
		"SetPassword unknown": func() error { _, err := s.SetPassword(ctx, 9999, "h2", 1); return err },
		"DeleteUser unknown":  func() error { return s.DeleteUser(ctx, 9999) },
		"DeleteUser last admin": func() error {
			return s.DeleteUser(ctx, root.ID)
		},
		"CreateVehicle taken VIN": func() error { _, err := s.CreateVehicle(ctx, newVehicle(u.ID, "VIN-2")); return err },
		"CreateVehicle no owner":  func() error { _, err := s.CreateVehicle(ctx, newVehicle(9999, "VIN-3")); return err },
		"UpdateVehicle unknown": func() error {
			_, err := s.UpdateVehicle(ctx, 9999, vehicleUpdate(nil, "VIN-4"))
			return err
		},
		"UpdateVehicle taken VIN": func() error {
			_, err := s.UpdateVehicle(ctx, v.ID, vehicleUpdate(nil, "VIN-2"))
			return err
		},
		"UpdateVehicle no owner": func() error {
			owner := int64(9999)
			_, err := s.UpdateVehicle(ctx, v.ID, vehicleUpdate(&owner, "VIN-1"))
			return err
		},
		"DeleteVehicle unknown": func() error { return s.DeleteVehicle(ctx, 9999) },
	}
	for name, call := range failures {
		if err := call(); err == nil {
			t.Errorf("%s succeeded, want an error", name)
		}
	}
	if n, oldest, err := s.Backlog(ctx); err != nil || n != 0 || !oldest.IsZero() {
		t.Errorf("Backlog after failed writes = %d, %v, %v; want 0, zero time, nil", n, oldest, err)
	}
	if evs := drain(t, s); len(evs) != 0 {
		t.Errorf("failed writes recorded events: %v", describe(evs))
	}

	if _, err := s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: u.Email, Name: "Ada"}); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if _, err := s.UpdateVehicle(ctx, v.ID, vehicleUpdate(nil, "VIN-1")); err != nil {
		t.Fatalf("UpdateVehicle: %v", err)
	}
	evs := drain(t, s)
	if got := about(evs, events.AggregateUser, u.ID); len(got) != 1 || got[0].Sequence != 2 {
		t.Errorf("the user's next events: %v, want one numbered 2", describe(got))
	}
	if got := about(evs, events.AggregateVehicle, v.ID); len(got) != 1 || got[0].Sequence != 2 {
		t.Errorf("the vehicle's next events: %v, want one numbered 2", describe(got))
	}
}

// testOutboxDeleteUserCascades: deleting a user records a VEHICLE_DELETED for each of their
// vehicles (numbered after the vehicle's last event), then the USER_DELETED; nobody else's.
func testOutboxDeleteUserCascades(t *testing.T, s OutboxStore) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "ada@example.com")
	other := mustCreateUser(t, s, "grace@example.com")
	var vs []storage.Vehicle
	for _, vin := range []string{"VIN-1", "VIN-2", "VIN-3"} {
		vs = append(vs, mustCreateVehicle(t, s, u.ID, vin))
	}
	updated, err := s.UpdateVehicle(ctx, vs[1].ID, vehicleUpdate(nil, "VIN-2"))
	if err != nil {
		t.Fatalf("UpdateVehicle: %v", err)
	}
	vs[1] = updated
	keep := mustCreateVehicle(t, s, other.ID, "VIN-4")
	drain(t, s)

	before := storage.Now()
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	evs := drain(t, s)
	if len(evs) != len(vs)+1 {
		t.Fatalf("DeleteUser recorded %v, want %d events", describe(evs), len(vs)+1)
	}
	for _, v := range vs {
		got := about(evs, events.AggregateVehicle, v.ID)
		if len(got) != 1 {
			t.Errorf("%d events about vehicle %d, want its VEHICLE_DELETED", len(got), v.ID)
			continue
		}
		seq := int64(1)
		if v.ID == updated.ID {
			seq = 2
		}
		checkVehicleEvent(t, got[0], events.VehicleDeleted, seq+1, before, vehicleData(v, 0))
	}
	checkUserEvent(t, evs[len(evs)-1], events.UserDeleted, 2, before, userData(u, ""))
	if got := about(evs, events.AggregateVehicle, keep.ID); len(got) != 0 {
		t.Errorf("another user's vehicle got events: %v", describe(got))
	}
}

var errBroker = errors.New("broker refused the batch")
