package storagetest

import (
	"testing"

	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/storage"
)

// KnownUsersMigration is a database for RunKnownUsersMigration, which moves the vehicles'
// owner key from users to known_users (migration 5).
type KnownUsersMigration struct {
	// Legacy makes a new database migrated up to version 4 and returns what runs a statement
	// on it, on a connection with foreign keys enforced.
	Legacy func(t *testing.T) (exec func(query string))
	// Open opens the database as a store, migrates it to the latest version and closes it
	// when t ends.
	Open func(t *testing.T) ProjectionStore
	// Down migrates the database back to version 4.
	Down func(t *testing.T) error
}

// RunKnownUsersMigration checks migration 5 on a database written before it: every user is
// known, every vehicle and its revision kept, the owner key still reads as userId, the unique
// VIN as vin, and no vehicle id is handed out again (SQLite rebuilds the table). Going down
// and up again keeps them too; going down fails, changing nothing, once the projection knows a
// user who has no users row.
func RunKnownUsersMigration(t *testing.T, h KnownUsersMigration) {
	ctx := t.Context()
	exec := h.Legacy(t)
	for _, q := range []string{
		`INSERT INTO users (email, email_normalized, name, role, password_hash, created_at, updated_at)
VALUES ('ada@example.com', 'ada@example.com', 'Ada', 'user', 'h', '2024-01-02 03:04:05+00:00', '2024-01-02 03:04:05+00:00'),
       ('bob@example.com', 'bob@example.com', 'Bob', 'user', 'h', '2024-01-02 03:04:05+00:00', '2024-01-02 03:04:05+00:00')`,
		`INSERT INTO vehicles (user_id, make, model, year, vin, license_plate, created_at, updated_at, revision)
SELECT u.id, 'Morris', 'Minor', 1956, v.vin, 'PL', '2024-01-02 03:04:05+00:00', '2024-01-02 03:04:05+00:00', v.revision
FROM users AS u JOIN (SELECT 'ada@example.com' AS email, 'VIN-1' AS vin, 5 AS revision
                      UNION ALL SELECT 'bob@example.com', 'VIN-2', 1
                      UNION ALL SELECT 'ada@example.com', 'VIN-3', 1) AS v ON v.email = u.email
ORDER BY v.vin`,
		// The newest vehicle is gone: its id must stay unused.
		`DELETE FROM vehicles WHERE vin = 'VIN-3'`,
	} {
		exec(q)
	}

	s := h.Open(t)
	users := listAllUsers(t, s, 10)
	vehicles := listAllVehicles(t, s, nil, 10)
	if len(users) != 2 || len(vehicles) != 2 {
		t.Fatalf("after the migration: %d users and %d vehicles, want 2 and 2", len(users), len(vehicles))
	}
	ada, bob := users[0], users[1]
	for _, u := range users {
		if known, err := s.KnownUser(ctx, u.ID); err != nil || !known {
			t.Errorf("KnownUser(%d) of a user of before the migration = %v, %v", u.ID, known, err)
		}
	}
	highest := vehicles[1].ID + 1 // VIN-3's
	v, err := s.UpdateVehicle(ctx, vehicles[0].ID, vehicleUpdate(nil, "VIN-1"))
	if err != nil {
		t.Fatalf("UpdateVehicle of a vehicle of before the migration: %v", err)
	}
	if evs := drain(t, s); len(evs) != 1 || evs[0].Type != events.VehicleUpdated || evs[0].Sequence != 6 {
		t.Errorf("its update recorded %v, want VEHICLE_UPDATED #6 (its revision was 5)", describe(evs))
	}
	if v.UserID != ada.ID {
		t.Errorf("vehicle %d belongs to %d, want %d", v.ID, v.UserID, ada.ID)
	}
	newID := func(owner int64, vin string) int64 {
		t.Helper()
		v := mustCreateVehicle(t, s, owner, vin)
		if v.ID <= highest {
			t.Errorf("a new vehicle got id %d, want more than %d (deleted before the migration)", v.ID, highest)
		}
		highest = v.ID
		return v.ID
	}
	newID(ada.ID, "VIN-4")
	_, err = s.CreateVehicle(ctx, newVehicle(bob.ID+1000, "VIN-5"))
	checkFieldError(t, "CreateVehicle for no user", err, storage.ErrReference, "userId")
	_, err = s.CreateVehicle(ctx, newVehicle(bob.ID, "VIN-1"))
	checkFieldError(t, "CreateVehicle with a taken VIN", err, storage.ErrConflict, "vin")
	if err := s.DeleteUser(ctx, bob.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if left := listAllVehicles(t, s, &bob.ID, 10); len(left) != 0 {
		t.Errorf("%d vehicles outlived their owner", len(left))
	}

	// Down and up again: the rebuilds keep the rows and the high-water mark.
	if err := h.Down(t); err != nil {
		t.Fatalf("down to version 4: %v", err)
	}
	s = h.Open(t)
	if left := listAllVehicles(t, s, nil, 10); len(left) != 2 {
		t.Errorf("%d vehicles after going down and up again, want 2", len(left))
	}
	if known, err := s.KnownUser(ctx, ada.ID); err != nil || !known {
		t.Errorf("KnownUser(%d) after going down and up again = %v, %v", ada.ID, known, err)
	}
	newID(ada.ID, "VIN-6")

	// A vehicles database of the two-database layout cannot go down.
	const projected = 4242
	if err := s.ApplyUserCreated(ctx, projected); err != nil {
		t.Fatal(err)
	}
	pv := mustCreateVehicle(t, s, projected, "VIN-7")
	if err := h.Down(t); err == nil {
		t.Errorf("down to version 4 with a vehicle of a user in no users row succeeded")
	}
	if _, err := s.GetVehicle(ctx, pv.ID); err != nil {
		t.Errorf("the projected user's vehicle after the failed down: %v", err)
	}
	if known, err := s.KnownUser(ctx, projected); err != nil || !known {
		t.Errorf("KnownUser(%d) after the failed down = %v, %v", projected, known, err)
	}
}
