package storagetest

import (
	"strconv"
	"sync"
	"testing"

	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/storage"
)

// testOutboxDeleteUserRacesCreateVehicle: vehicles created for a user while they are being
// deleted either fail (the owner is gone) or are deleted with their event; none vanishes
// without one.
func testOutboxDeleteUserRacesCreateVehicle(t *testing.T, s OutboxStore) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "ada@example.com")
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
				v, err := s.CreateVehicle(ctx, newVehicle(u.ID, "VIN-"+strconv.Itoa(c)+"-"+strconv.Itoa(i)))
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
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	wg.Wait()

	evs := drain(t, s)
	for _, v := range created {
		got := about(evs, events.AggregateVehicle, v.ID)
		if len(got) != 2 || got[0].Type != events.VehicleCreated || got[1].Type != events.VehicleDeleted {
			t.Errorf("vehicle %d (created, then deleted with its owner) has events %v, want created and deleted", v.ID, describe(got))
		}
	}
	if left := listAllVehicles(t, s, nil, 100); len(left) != 0 {
		t.Errorf("%d vehicles outlived their owner", len(left))
	}
}

// testOutboxConcurrentUpdatesChain: concurrent updates of one record get consecutive
// sequence numbers in the order the relay hands them out, and each names the state it
// replaced, so that a consumer can follow them.
func testOutboxConcurrentUpdatesChain(t *testing.T, s OutboxStore) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "ada@example.com")
	owners := []storage.User{u, mustCreateUser(t, s, "b@example.com"), mustCreateUser(t, s, "c@example.com")}
	v := mustCreateVehicle(t, s, u.ID, "VIN-1")
	const writers, each = 4, 5
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				email := "ada+" + strconv.Itoa(w) + "-" + strconv.Itoa(i) + "@example.com"
				if _, err := s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: email, Name: "Ada"}); err != nil {
					t.Errorf("UpdateUser: %v", err)
				}
				owner := owners[(w+i)%len(owners)].ID
				if _, err := s.UpdateVehicle(ctx, v.ID, vehicleUpdate(&owner, "VIN-1")); err != nil {
					t.Errorf("UpdateVehicle: %v", err)
				}
			}
		})
	}
	wg.Wait()

	all := drain(t, s)
	userEvs := about(all, events.AggregateUser, u.ID)
	vehicleEvs := about(all, events.AggregateVehicle, v.ID)
	if len(userEvs) != 1+writers*each || len(vehicleEvs) != 1+writers*each {
		t.Fatalf("%d user and %d vehicle events, want %d each", len(userEvs), len(vehicleEvs), 1+writers*each)
	}
	var prevUser events.User
	var prevVehicle events.Vehicle
	for i := range userEvs {
		gu, err := userEvs[i].User()
		if err != nil {
			t.Fatal(err)
		}
		gv, err := vehicleEvs[i].Vehicle()
		if err != nil {
			t.Fatal(err)
		}
		if userEvs[i].Sequence != int64(i+1) || vehicleEvs[i].Sequence != int64(i+1) {
			t.Fatalf("event %d in relay order numbered %d (user) and %d (vehicle), want %d", i, userEvs[i].Sequence, vehicleEvs[i].Sequence, i+1)
		}
		if i > 0 && (gu.PreviousEmail != prevUser.Email || gv.PreviousUserID != prevVehicle.UserID) {
			t.Errorf("update #%d replaced email %q and owner %d, but #%d left %q and %d",
				i+1, gu.PreviousEmail, gv.PreviousUserID, i, prevUser.Email, prevVehicle.UserID)
		}
		prevUser, prevVehicle = gu, gv
	}
	if stored, err := s.GetUser(ctx, u.ID); err != nil || stored.Email != prevUser.Email {
		t.Errorf("stored email %q (%v), the last event's %q", stored.Email, err, prevUser.Email)
	}
	if stored, err := s.GetVehicle(ctx, v.ID); err != nil || stored.UserID != prevVehicle.UserID {
		t.Errorf("stored owner %d (%v), the last event's %d", stored.UserID, err, prevVehicle.UserID)
	}
}
