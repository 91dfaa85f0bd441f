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

// ProjectionStore is a backend as RunUserProjection takes it: a store with its projection and
// the outbox its writes record in, whose commits can be observed.
type ProjectionStore interface {
	OutboxStore
	storage.UserProjection
	storage.Observable
}

// RunUserProjection runs the storage.UserProjection conformance suite: the known users on one
// database, where the users domain's writes keep them; the projection of a vehicles database,
// fed only by ApplyUserCreated and ApplyUserDeleted (its users table stays empty); and their
// races with each other and with vehicle creations. The projection is used through the store
// Observe returns, so that the events ApplyUserDeleted records are checked against both its
// observer and Relay. newStore must return a new, empty, migrated store and close it when its
// t ends. The subtests run in parallel.
func RunUserProjection(t *testing.T, newStore func(t *testing.T) ProjectionStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, p *projection)
	}{
		{"OneDatabase", testProjectionOneDatabase},
		{"ApplyUserCreated", testProjectionApplyCreated},
		{"ApplyUserDeleted", testProjectionApplyDeleted},
		{"DeletionIsFinal", testProjectionDeletionIsFinal},
		{"CreatedRacesDeleted", testProjectionCreatedRacesDeleted},
		{"DeletedRacesCreateVehicle", testProjectionDeletedRacesCreateVehicle},
		{"DeadlinePassed", testProjectionDeadlinePassed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			plain := newStore(t)
			log := &commitLog{t: t, plain: plain}
			tt.fn(t, &projection{plain: plain, s: plain.Observe(log.committed), log: log})
		})
	}
}

// projection is a store under test: plain relays, s (observed by log) writes and applies.
type projection struct {
	plain ProjectionStore
	s     storage.Observed
	log   *commitLog
}

// known fails t unless KnownUser(id) is want.
func (p *projection) known(t *testing.T, id int64, want bool) {
	t.Helper()
	got, err := p.s.KnownUser(t.Context(), id)
	if err != nil {
		t.Fatalf("KnownUser(%d): %v", id, err)
	}
	if got != want {
		t.Errorf("KnownUser(%d) = %v, want %v", id, got, want)
	}
}

// deleted fails t unless UserDeleted(id) is want.
func (p *projection) deleted(t *testing.T, id int64, want bool) {
	t.Helper()
	got, err := p.s.UserDeleted(t.Context(), id)
	if err != nil {
		t.Fatalf("UserDeleted(%d): %v", id, err)
	}
	if got != want {
		t.Errorf("UserDeleted(%d) = %v, want %v", id, got, want)
	}
}

// quiet fails t if the observer was called since the last take.
func (p *projection) quiet(t *testing.T, what string) {
	t.Helper()
	if calls := p.log.take(); len(calls) != 0 {
		t.Errorf("%s called the observer %d times: %v", what, len(calls), calls)
	}
}

func (p *projection) applyCreated(t *testing.T, id int64) {
	t.Helper()
	if err := p.s.ApplyUserCreated(t.Context(), id); err != nil {
		t.Fatalf("ApplyUserCreated(%d): %v", id, err)
	}
}

func (p *projection) applyDeleted(t *testing.T, id int64) {
	t.Helper()
	if err := p.s.ApplyUserDeleted(t.Context(), id); err != nil {
		t.Fatalf("ApplyUserDeleted(%d): %v", id, err)
	}
}

// refused fails t unless a vehicle for owner is refused as an unknown userId.
func (p *projection) refused(t *testing.T, owner int64, vin string) {
	t.Helper()
	_, err := p.s.CreateVehicle(t.Context(), newVehicle(owner, vin))
	checkFieldError(t, "CreateVehicle for unknown user "+strconv.FormatInt(owner, 10), err, storage.ErrReference, "userId")
}

// testProjectionOneDatabase: on one database CreateUser makes the user known and DeleteUser
// forgets them, with no Apply call.
func testProjectionOneDatabase(t *testing.T, p *projection) {
	ctx := t.Context()
	u := mustCreateUser(t, p.s, "ada@example.com")
	p.known(t, u.ID, true)
	p.known(t, u.ID+1000, false)
	v := mustCreateVehicle(t, p.s, u.ID, "VIN-1")
	p.refused(t, u.ID+1000, "VIN-2")
	if err := p.s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	p.known(t, u.ID, false)
	p.deleted(t, u.ID, false) // no tombstone: nothing applies users' events on one database
	if _, err := p.s.GetVehicle(ctx, v.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetVehicle after its owner's deletion: %v, want ErrNotFound", err)
	}
	p.refused(t, u.ID, "VIN-3")
}

// testProjectionApplyCreated: on a vehicles database a user is known once their creation is
// applied, as often as it is, and a vehicle may name them; a user never applied may not be
// named, by a creation or an update. Applying records nothing.
func testProjectionApplyCreated(t *testing.T, p *projection) {
	ctx := t.Context()
	const id, stranger = 4242, 4343
	p.known(t, id, false)
	p.applyCreated(t, id)
	p.known(t, id, true)
	p.applyCreated(t, id)
	p.known(t, id, true)
	p.quiet(t, "ApplyUserCreated")

	v := mustCreateVehicle(t, p.s, id, "VIN-1")
	p.refused(t, stranger, "VIN-2")
	p.known(t, stranger, false)
	owner := int64(stranger)
	_, err := p.s.UpdateVehicle(ctx, v.ID, vehicleUpdate(&owner, "VIN-1"))
	checkFieldError(t, "UpdateVehicle to an unknown user", err, storage.ErrReference, "userId")
	if got := drain(t, p.plain); len(got) != 1 || got[0].Type != events.VehicleCreated {
		t.Errorf("the outbox holds %v, want the one VEHICLE_CREATED", describe(got))
	}
}

// testProjectionApplyDeleted: applying a user's deletion deletes their vehicles, and no one
// else's, with one VEHICLE_DELETED each, numbered one past the vehicle's revision, which the
// observer hears of once and Relay hands out; the user is unknown after. Applied again, it
// records nothing and calls nothing.
func testProjectionApplyDeleted(t *testing.T, p *projection) {
	ctx := t.Context()
	const id, other = 4242, 4343
	p.applyCreated(t, id)
	p.applyCreated(t, other)
	v1 := mustCreateVehicle(t, p.s, id, "VIN-1")
	v2 := mustCreateVehicle(t, p.s, id, "VIN-2")
	v2, err := p.s.UpdateVehicle(ctx, v2.ID, vehicleUpdate(nil, "VIN-2"))
	if err != nil {
		t.Fatalf("UpdateVehicle: %v", err)
	}
	kept := mustCreateVehicle(t, p.s, other, "VIN-3")
	drain(t, p.plain)
	p.log.take()

	before := storage.Now()
	p.applyDeleted(t, id)
	calls := p.log.take()
	if len(calls) != 1 {
		t.Fatalf("ApplyUserDeleted called the observer %d times, want once: %v", len(calls), calls)
	}
	heard, relayed := calls[0], drain(t, p.plain)
	wants := map[int64]struct {
		v   storage.Vehicle
		seq int64
	}{v1.ID: {v1, 2}, v2.ID: {v2, 3}} // created (1), updated (2), deleted
	for name, evs := range map[string][]events.Event{"observer": heard, "relay": relayed} {
		if len(evs) != len(wants) {
			t.Errorf("the %s got %v, want a VEHICLE_DELETED for each of vehicles %d and %d", name, describe(evs), v1.ID, v2.ID)
			continue
		}
		for _, ev := range evs {
			vid, err := ev.AggregateID()
			w, ok := wants[vid]
			if err != nil || !ok || ev.Type.Aggregate() != events.AggregateVehicle {
				t.Errorf("the %s got %s of %s, not of a deleted vehicle", name, ev.Type, ev.Subject)
				continue
			}
			checkVehicleEvent(t, ev, events.VehicleDeleted, w.seq, before, vehicleData(w.v, 0))
		}
	}
	if ids := eventIDs(heard); !slices.Equal(ids, eventIDs(relayed)) {
		t.Errorf("the observer heard %v, the relay handed out %v", ids, eventIDs(relayed))
	}

	p.known(t, id, false)
	p.known(t, other, true)
	for _, v := range []storage.Vehicle{v1, v2} {
		if _, err := p.s.GetVehicle(ctx, v.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetVehicle(%d) after its owner's deletion: %v, want ErrNotFound", v.ID, err)
		}
	}
	if got, err := p.s.GetVehicle(ctx, kept.ID); err != nil || got.UserID != other {
		t.Errorf("another user's vehicle after the deletion: %+v, %v", got, err)
	}
	p.refused(t, id, "VIN-4")

	p.applyDeleted(t, id)
	p.quiet(t, "ApplyUserDeleted applied again")
	if got := drain(t, p.plain); len(got) != 0 {
		t.Errorf("ApplyUserDeleted applied again recorded %v", describe(got))
	}
}

// eventIDs lists the events' ids, in order.
func eventIDs(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// testProjectionDeletionIsFinal: a creation applied after the deletion (a redelivery), or a
// deletion applied before the creation (out of order), leaves the user unknown; a deletion
// of a user with no vehicles records nothing and calls nothing.
func testProjectionDeletionIsFinal(t *testing.T, p *projection) {
	const late, early, bare = 4242, 4343, 4444
	p.applyCreated(t, late)
	p.deleted(t, late, false)
	p.applyDeleted(t, late)
	p.deleted(t, late, true)
	p.applyCreated(t, late)
	p.known(t, late, false)
	p.deleted(t, late, true)
	p.refused(t, late, "VIN-1")

	p.applyDeleted(t, early)
	p.applyCreated(t, early)
	p.applyCreated(t, early)
	p.known(t, early, false)
	p.refused(t, early, "VIN-2")

	p.applyCreated(t, bare)
	p.known(t, bare, true)
	p.applyDeleted(t, bare)
	p.known(t, bare, false)
	p.quiet(t, "applying users with no vehicles")
	if got := drain(t, p.plain); len(got) != 0 {
		t.Errorf("applying users with no vehicles recorded %v", describe(got))
	}
}

// testProjectionCreatedRacesDeleted: a user's creation and deletion applied at once, on two
// connections, whichever starts first, never leave the user known.
func testProjectionCreatedRacesDeleted(t *testing.T, p *projection) {
	ctx := t.Context()
	const workers, each = 4, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := int64(10_000 + w*each + i)
				start := make(chan struct{})
				var pair sync.WaitGroup
				apply := []func() error{
					func() error { return p.s.ApplyUserCreated(ctx, id) },
					func() error { return p.s.ApplyUserDeleted(ctx, id) },
				}
				if i%2 == 1 {
					slices.Reverse(apply)
				}
				for _, fn := range apply {
					pair.Go(func() {
						<-start
						if err := fn(); err != nil {
							t.Errorf("user %d: %v", id, err)
						}
					})
				}
				close(start)
				pair.Wait()
			}
		})
	}
	wg.Wait()
	var known []int64
	for id := int64(10_000); id < 10_000+workers*each; id++ {
		if ok, err := p.s.KnownUser(ctx, id); err != nil {
			t.Fatalf("KnownUser(%d): %v", id, err)
		} else if ok {
			known = append(known, id)
		}
	}
	if len(known) > 0 {
		t.Errorf("users known after their creation and deletion were applied together: %v", known)
	}
	p.quiet(t, "applying users with no vehicles")
}

// testProjectionDeletedRacesCreateVehicle: vehicles created for a user while their deletion
// is applied either fail (the owner is unknown) or are deleted with their VEHICLE_DELETED,
// which both the observer and Relay get; none outlives the owner or vanishes without one.
// The creations go through the unobserved store: the observer's check that a created vehicle
// is visible would race the deletion.
func testProjectionDeletedRacesCreateVehicle(t *testing.T, p *projection) {
	ctx := t.Context()
	const id = 4242
	p.applyCreated(t, id)
	const creators, most = 4, 200
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created []storage.Vehicle
		started = make(chan struct{}, creators*most)
	)
	for c := range creators {
		wg.Go(func() {
			for i := range most {
				v, err := p.plain.CreateVehicle(ctx, newVehicle(id, "VIN-"+strconv.Itoa(c)+"-"+strconv.Itoa(i)))
				if err != nil {
					checkFieldError(t, "CreateVehicle for a deleted owner", err, storage.ErrReference, "userId")
					return
				}
				mu.Lock()
				created = append(created, v)
				mu.Unlock()
				started <- struct{}{}
			}
		})
	}
	for range creators {
		<-started
	}
	p.applyDeleted(t, id)
	wg.Wait()

	var heard []events.Event
	for _, call := range p.log.take() {
		heard = append(heard, call...)
	}
	relayed := drain(t, p.plain)
	for _, v := range created {
		if got := about(relayed, events.AggregateVehicle, v.ID); len(got) != 2 || got[0].Type != events.VehicleCreated || got[1].Type != events.VehicleDeleted {
			t.Errorf("vehicle %d (created, then deleted with its owner) has events %v, want created and deleted", v.ID, describe(got))
		}
		if got := about(heard, events.AggregateVehicle, v.ID); len(got) != 1 || got[0].Type != events.VehicleDeleted {
			t.Errorf("the observer heard %v of vehicle %d, want its deletion", describe(got), v.ID)
		}
	}
	if n := len(relayed); n != 2*len(created) {
		t.Errorf("the outbox held %d events for %d vehicles created and deleted", n, len(created))
	}
	if left := listAllVehicles(t, p.s, nil, 100); len(left) != 0 {
		t.Errorf("%d vehicles outlived their owner", len(left))
	}
	p.known(t, id, false)
}

// testProjectionDeadlinePassed: a call whose deadline has passed is ErrUnavailable, as the
// Store's are (RunOutage cuts the backend under the Apply methods too).
func testProjectionDeadlinePassed(t *testing.T, p *projection) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	calls := map[string]func() error{
		"KnownUser":        func() error { _, err := p.s.KnownUser(ctx, 1); return err },
		"UserDeleted":      func() error { _, err := p.s.UserDeleted(ctx, 1); return err },
		"ApplyUserCreated": func() error { return p.s.ApplyUserCreated(ctx, 1) },
		"ApplyUserDeleted": func() error { return p.s.ApplyUserDeleted(ctx, 1) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s past its deadline: %v, want an error wrapping ErrUnavailable", name, err)
		}
	}
}
