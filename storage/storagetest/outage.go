package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/deadline"
)

// Outage is a store whose backend a test can take away, for RunOutage.
type Outage struct {
	// Store is new, empty and migrated, closed when the test ends.
	Store storage.Store
	// Cut takes the backend away and returns what brings it back.
	Cut func(t *testing.T) (restore func())
	// Bound is how long a call may take to fail while cut (beyond the call's deadline, when
	// the outage is a stall).
	Bound time.Duration
}

// stallDeadline is the per-call deadline the Stalled test puts on the store.
const stallDeadline = 300 * time.Millisecond

// RunOutage runs the failure-semantics suite. down's Cut makes the backend refuse writes at
// once or within the backend's own timeout (the server gone, the database locked past its busy
// timeout); stall's makes it stop answering without refusing (packets held by a partition, a
// lock held for longer than any busy timeout), which the per-call deadline of package deadline
// must cut short. Either way every write fails within the bound with an error wrapping
// storage.ErrUnavailable (not a contract error such as ErrNotFound, which the API would answer
// as the request's fault), and once the backend is back the same store serves again at once,
// with nothing written before the outage lost. A Store that is also a storage.UserProjection
// has its Apply methods checked with the writes.
func RunOutage(t *testing.T, down, stall func(t *testing.T) Outage) {
	t.Run("Down", func(t *testing.T) {
		t.Parallel()
		o := down(t)
		proj, _ := o.Store.(storage.UserProjection)
		testOutage(t, o.Store, proj, 0, o.Cut, o.Bound, true)
	})
	t.Run("Stalled", func(t *testing.T) {
		t.Parallel()
		o := stall(t)
		// A stalled write may still land when the stall ends (a partition delivers what it
		// held), so what was written before must be found again, not unchanged. Package
		// deadline wraps only the Store, so the projection's calls get the deadline here.
		proj, _ := o.Store.(storage.UserProjection)
		testOutage(t, deadline.Wrap(o.Store, stallDeadline), proj, stallDeadline, o.Cut, stallDeadline+o.Bound, false)
	})
}

// testOutage cuts the backend under s's writes and proj's (when not nil), each of proj's
// calls bounded by perCall (when not zero).
func testOutage(t *testing.T, s storage.Store, proj storage.UserProjection, perCall time.Duration, cut func(t *testing.T) func(), bound time.Duration, unchanged bool) {
	ctx := context.Background()
	u, err := s.CreateUser(ctx, storage.NewUser{Email: "before@example.com", Name: "Before", PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.CreateVehicle(ctx, storage.NewVehicle{UserID: u.ID, Make: "M", Model: "N", Year: 2020, VIN: "1HGCM82633A004352", LicensePlate: "P"})
	if err != nil {
		t.Fatal(err)
	}
	restore := cut(t)
	restored := false
	defer func() {
		if !restored {
			restore()
		}
	}()
	other := u.ID + 1000 // no such user: during an outage that must not read as ErrNotFound
	writes := []struct {
		name string
		call func() error
	}{
		{"CreateUser", func() error {
			_, err := s.CreateUser(ctx, storage.NewUser{Email: "during@example.com", Name: "During", PasswordHash: "h"})
			return err
		}},
		{"UpdateUser", func() error {
			_, err := s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: "renamed@example.com", Name: "Renamed"})
			return err
		}},
		{"SetPassword", func() error { _, err := s.SetPassword(ctx, u.ID, "h2", u.PasswordVersion); return err }},
		{"DeleteUser unknown", func() error { return s.DeleteUser(ctx, other) }},
		{"CreateVehicle", func() error {
			_, err := s.CreateVehicle(ctx, storage.NewVehicle{UserID: u.ID, Make: "M", Model: "N", Year: 2021, VIN: "1HGCM82633A004353", LicensePlate: "Q"})
			return err
		}},
		{"UpdateVehicle", func() error {
			_, err := s.UpdateVehicle(ctx, v.ID, storage.VehicleUpdate{Make: "X", Model: "Y", Year: 2022, VIN: v.VIN, LicensePlate: "R"})
			return err
		}},
		{"DeleteVehicle", func() error { return s.DeleteVehicle(ctx, v.ID) }},
	}
	if proj != nil {
		bounded := func(call func(ctx context.Context) error) func() error {
			return func() error {
				if perCall == 0 {
					return call(ctx)
				}
				ctx, cancel := context.WithTimeout(ctx, perCall)
				defer cancel()
				return call(ctx)
			}
		}
		writes = append(writes, []struct {
			name string
			call func() error
		}{
			{"ApplyUserCreated", bounded(func(ctx context.Context) error { return proj.ApplyUserCreated(ctx, other) })},
			{"ApplyUserDeleted", bounded(func(ctx context.Context) error { return proj.ApplyUserDeleted(ctx, other+1) })},
		}...)
	}
	for _, w := range writes {
		start := time.Now()
		err := w.call()
		took := time.Since(start)
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s during the outage: %v, want an error wrapping ErrUnavailable", w.name, err)
		}
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
			t.Errorf("%s during the outage: %v also reads as a contract error", w.name, err)
		}
		if took > bound {
			t.Errorf("%s took %v during the outage, want at most %v", w.name, took, bound)
		}
	}

	restore()
	restored = true
	// The same store serves again at once: no restart, no reconnect by the caller.
	got, err := s.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatalf("the user written before the outage: %v", err)
	}
	if diff := cmp.Diff(u, got); unchanged && diff != "" {
		t.Errorf("the user written before the outage changed (-before +after):\n%s", diff)
	}
	if unchanged {
		gotV, err := s.GetVehicle(ctx, v.ID)
		if err != nil {
			t.Fatalf("the vehicle written before the outage: %v", err)
		}
		if diff := cmp.Diff(v, gotV); diff != "" {
			t.Errorf("the vehicle written before the outage changed (-before +after):\n%s", diff)
		}
	}
	if _, err := s.CreateUser(ctx, storage.NewUser{Email: "after@example.com", Name: "After", PasswordHash: "h"}); err != nil {
		t.Errorf("CreateUser after the outage: %v", err)
	}
}

// testDeadlinePassed: a call whose context's deadline has passed is ErrUnavailable (the
// backend did not answer in time), not a 500-worthy driver error.
func testDeadlinePassed(t *testing.T, s storage.Store) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	calls := map[string]func() error{
		"Ping":    func() error { return s.Ping(ctx) },
		"GetUser": func() error { _, err := s.GetUser(ctx, 1); return err },
		"CreateUser": func() error {
			_, err := s.CreateUser(ctx, storage.NewUser{Email: "late@example.com", Name: "Late", PasswordHash: "h"})
			return err
		},
		"DeleteUser": func() error { return s.DeleteUser(ctx, 1) },
		"ListVehicles": func() error {
			_, err := s.ListVehicles(ctx, storage.VehicleFilter{}, storage.Page{Limit: 10})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s past its deadline: %v, want an error wrapping ErrUnavailable", name, err)
		}
	}
}
