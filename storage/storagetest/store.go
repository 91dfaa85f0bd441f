// Package storagetest holds the conformance suites every storage backend passes, in the manner of
// go-cloud's drivertest: a backend's test calls RunStore with a function that makes a fresh store.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage"
)

// RunStore runs the storage.Store conformance suite. Every subtest checks one part of the Store
// contract on its own store from newStore, which must return a new, empty, migrated store and
// close it when its t ends. The subtests run in parallel.
func RunStore(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"Ping", testPing},
		{"CreateGetUser", testCreateGetUser},
		{"CreateUserEmailConflict", testCreateUserEmailConflict},
		{"GetUserByEmail", testGetUserByEmail},
		{"EmailCaseFolding", testEmailCaseFolding},
		{"UpdateUser", testUpdateUser},
		{"UpdateUserEmailConflict", testUpdateUserEmailConflict},
		{"DeleteUser", testDeleteUser},
		{"NotFound", testNotFound},
		{"CreateGetVehicle", testCreateGetVehicle},
		{"VehicleConflictAndReference", testVehicleConflictAndReference},
		{"UpdateVehicle", testUpdateVehicle},
		{"DeleteVehicle", testDeleteVehicle},
		{"DeleteUserCascades", testDeleteUserCascades},
		{"ListUsersPages", testListUsersPages},
		{"ListVehiclesPages", testListVehiclesPages},
		{"IDsNeverReused", testIDsNeverReused},
		{"ConcurrentCreates", testConcurrentCreates},
		{"ConcurrentSameEmail", testConcurrentSameEmail},
		{"ConcurrentSameVIN", testConcurrentSameVIN},
		{"PasswordVersion", testPasswordVersion},
		{"SetPassword", testSetPassword},
		{"ConcurrentSetPassword", testConcurrentSetPassword},
		{"UpdateUserRole", testUpdateUserRole},
		{"LastAdmin", testLastAdmin},
		{"ConcurrentDemoteLastAdmins", testConcurrentDemoteLastAdmins},
		{"ConcurrentDeleteLastAdmins", testConcurrentDeleteLastAdmins},
		{"ConcurrentDemoteDeleteLastAdmins", testConcurrentDemoteDeleteLastAdmins},
		{"DeadlinePassed", testDeadlinePassed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

func testPing(t *testing.T, s storage.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testCreateGetUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	before := storage.Now()
	u, err := s.CreateUser(ctx, storage.NewUser{
		Email: "Ada@Example.com", Name: "Ada Lovelace", PasswordHash: "hash-1",
	})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if u.ID <= 0 {
		t.Errorf("CreateUser: ID = %d, want > 0", u.ID)
	}
	want := storage.User{
		ID: u.ID, Email: "Ada@Example.com", Name: "Ada Lovelace", Role: storage.RoleUser,
		PasswordHash: "hash-1", PasswordVersion: 1, CreatedAt: u.CreatedAt, UpdatedAt: u.CreatedAt,
	}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("CreateUser mismatch (-want +got):\n%s", diff)
	}
	checkTime(t, "CreatedAt", u.CreatedAt, before)
	checkTime(t, "UpdatedAt", u.UpdatedAt, before)

	got, err := s.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("GetUser mismatch (-created +got):\n%s", diff)
	}
	checkTime(t, "GetUser CreatedAt", got.CreatedAt, before)

	admin, err := s.CreateUser(ctx, storage.NewUser{
		Email: "grace@example.com", Name: "Grace", Role: storage.RoleAdmin, PasswordHash: "hash-2",
	})
	if err != nil {
		t.Fatalf("CreateUser admin: %v", err)
	}
	if admin.Role != storage.RoleAdmin || admin.PasswordVersion != 1 {
		t.Errorf("CreateUser admin: Role %q, PasswordVersion %d; want %q, 1", admin.Role, admin.PasswordVersion, storage.RoleAdmin)
	}
	if got, err := s.GetUser(ctx, admin.ID); err != nil {
		t.Fatalf("GetUser admin: %v", err)
	} else if diff := cmp.Diff(admin, got); diff != "" {
		t.Errorf("GetUser admin mismatch (-created +got):\n%s", diff)
	}
	if admin.ID == u.ID {
		t.Errorf("CreateUser: two users share ID %d", u.ID)
	}
}

// emailVariants are spellings of ada@example.com that NormalizeEmail folds together.
var emailVariants = []struct{ name, email string }{
	{"same", "ada@example.com"},
	{"upper case", "Ada@Example.COM"},
	{"surrounding space", "  ada@example.com\t"},
	{"zero-width space", "ada\u200b@example.com"},
	{"byte order mark", "\ufeffada@example.com"},
	{"fullwidth letters", "\uff41\uff44\uff41@example.com"},
}

func testCreateUserEmailConflict(t *testing.T, s storage.Store) {
	ctx := t.Context()
	first := mustCreateUser(t, s, "ada@example.com")
	for _, v := range emailVariants {
		_, err := s.CreateUser(ctx, storage.NewUser{Email: v.email, Name: "Impostor", PasswordHash: "h"})
		checkFieldError(t, "CreateUser "+v.name, err, storage.ErrConflict, "email")
	}
	// The failed attempts left the first user alone and created nobody.
	got, err := s.ListUsers(ctx, storage.Page{Limit: 100})
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if diff := cmp.Diff([]storage.User{first}, got); diff != "" {
		t.Errorf("ListUsers after conflicts (-want +got):\n%s", diff)
	}
}

func testGetUserByEmail(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "Ada@Example.com")
	mustCreateUser(t, s, "grace@example.com")
	for _, v := range emailVariants {
		got, err := s.GetUserByEmail(ctx, v.email)
		if err != nil {
			t.Errorf("GetUserByEmail %s: %v", v.name, err)
			continue
		}
		if diff := cmp.Diff(u, got); diff != "" {
			t.Errorf("GetUserByEmail %s mismatch (-want +got):\n%s", v.name, diff)
		}
	}
	if _, err := s.GetUserByEmail(ctx, "nobody@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetUserByEmail unknown: err = %v, want ErrNotFound", err)
	}
}

func testUpdateUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "ada@example.com")
	tick()

	// Without PasswordHash the hash is kept; the own email in another spelling is no conflict.
	got, err := s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: "ADA@example.com", Name: "Countess"})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	want := u
	want.Email, want.Name, want.UpdatedAt = "ADA@example.com", "Countess", got.UpdatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UpdateUser mismatch (-want +got):\n%s", diff)
	}
	checkTime(t, "UpdatedAt", got.UpdatedAt, u.CreatedAt)
	if !got.UpdatedAt.After(u.UpdatedAt) {
		t.Errorf("UpdateUser: UpdatedAt %v did not advance past %v", got.UpdatedAt, u.UpdatedAt)
	}
	if stored, err := s.GetUser(ctx, u.ID); err != nil {
		t.Fatalf("GetUser: %v", err)
	} else if diff := cmp.Diff(got, stored); diff != "" {
		t.Errorf("GetUser after UpdateUser (-updated +stored):\n%s", diff)
	}
	tick()

	// With PasswordHash it is replaced, and the email can move to a new address.
	hash := "hash-new"
	got2, err := s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: "lovelace@example.com", Name: "Ada", PasswordHash: &hash})
	if err != nil {
		t.Fatalf("UpdateUser with hash: %v", err)
	}
	want = got
	want.Email, want.Name, want.PasswordHash, want.UpdatedAt = "lovelace@example.com", "Ada", "hash-new", got2.UpdatedAt
	want.PasswordVersion = 2
	if diff := cmp.Diff(want, got2); diff != "" {
		t.Errorf("UpdateUser with hash mismatch (-want +got):\n%s", diff)
	}
	if !got2.UpdatedAt.After(got.UpdatedAt) {
		t.Errorf("UpdateUser: UpdatedAt %v did not advance past %v", got2.UpdatedAt, got.UpdatedAt)
	}
	// The old address is free again and the new one is found.
	if _, err := s.GetUserByEmail(ctx, "ada@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetUserByEmail old address: err = %v, want ErrNotFound", err)
	}
	if byEmail, err := s.GetUserByEmail(ctx, "Lovelace@Example.com"); err != nil {
		t.Errorf("GetUserByEmail new address: %v", err)
	} else if diff := cmp.Diff(got2, byEmail); diff != "" {
		t.Errorf("GetUserByEmail new address (-want +got):\n%s", diff)
	}
	mustCreateUser(t, s, "ada@example.com")
}

func testUpdateUserEmailConflict(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, "ada@example.com")
	grace := mustCreateUser(t, s, "grace@example.com")
	for _, v := range emailVariants {
		_, err := s.UpdateUser(ctx, grace.ID, storage.UserUpdate{Email: v.email, Name: "Grace"})
		checkFieldError(t, "UpdateUser "+v.name, err, storage.ErrConflict, "email")
	}
	got, err := s.GetUser(ctx, grace.ID)
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if diff := cmp.Diff(grace, got); diff != "" {
		t.Errorf("user changed by failed updates (-want +got):\n%s", diff)
	}
}

func testDeleteUser(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "ada@example.com")
	other := mustCreateUser(t, s, "grace@example.com")
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := s.GetUser(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetUser after delete: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser(ctx, u.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteUser twice: err = %v, want ErrNotFound", err)
	}
	if _, err := s.GetUser(ctx, other.ID); err != nil {
		t.Errorf("GetUser of another user: %v", err)
	}
	// The email is free again.
	mustCreateUser(t, s, "Ada@example.com")
}

func testNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "ada@example.com")
	v := mustCreateVehicle(t, s, u.ID, "VIN0000000000001")
	missing := max(u.ID, v.ID) + 1000
	hash := "h"
	calls := []struct {
		name string
		call func() error
	}{
		{"GetUser", func() error { _, err := s.GetUser(ctx, missing); return err }},
		{"GetUser zero", func() error { _, err := s.GetUser(ctx, 0); return err }},
		{"UpdateUser", func() error {
			_, err := s.UpdateUser(ctx, missing, storage.UserUpdate{Email: "x@example.com", Name: "X", PasswordHash: &hash})
			return err
		}},
		// An unknown id wins over the conflict the new email would cause.
		{"UpdateUser taken email", func() error {
			_, err := s.UpdateUser(ctx, missing, storage.UserUpdate{Email: "ada@example.com", Name: "X"})
			return err
		}},
		{"UpdateUser demote", func() error {
			role := storage.RoleUser
			_, err := s.UpdateUser(ctx, missing, storage.UserUpdate{Email: "x@example.com", Name: "X", Role: &role})
			return err
		}},
		{"SetPassword", func() error { _, err := s.SetPassword(ctx, missing, "h", 1); return err }},
		{"DeleteUser", func() error { return s.DeleteUser(ctx, missing) }},
		{"GetVehicle", func() error { _, err := s.GetVehicle(ctx, missing); return err }},
		{"UpdateVehicle", func() error {
			_, err := s.UpdateVehicle(ctx, missing, vehicleUpdate(nil, "VIN0000000000002"))
			return err
		}},
		// An unknown id wins over an unknown owner.
		{"UpdateVehicle unknown owner", func() error {
			owner := missing
			_, err := s.UpdateVehicle(ctx, missing, vehicleUpdate(&owner, "VIN0000000000003"))
			return err
		}},
		{"DeleteVehicle", func() error { return s.DeleteVehicle(ctx, missing) }},
	}
	for _, c := range calls {
		err := c.call()
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s(%d): err = %v, want ErrNotFound", c.name, missing, err)
		}
		if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrReference) ||
			errors.Is(err, storage.ErrLastAdmin) || errors.Is(err, storage.ErrStale) {
			t.Errorf("%s(%d): err = %v also matches another storage error", c.name, missing, err)
		}
	}
}

func testCreateGetVehicle(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "ada@example.com")
	before := storage.Now()
	red := "red"
	for _, color := range []*string{&red, nil} {
		nv := storage.NewVehicle{
			UserID: u.ID, Make: "Ford", Model: "Model T", Year: 1915,
			VIN: "VIN-" + fmt.Sprint(color == nil), LicensePlate: "AB-123", Color: color,
		}
		v, err := s.CreateVehicle(ctx, nv)
		if err != nil {
			t.Fatalf("CreateVehicle: %v", err)
		}
		if v.ID <= 0 {
			t.Errorf("CreateVehicle: ID = %d, want > 0", v.ID)
		}
		want := storage.Vehicle{
			ID: v.ID, UserID: u.ID, Make: "Ford", Model: "Model T", Year: 1915, VIN: nv.VIN,
			LicensePlate: "AB-123", Color: color, CreatedAt: v.CreatedAt, UpdatedAt: v.CreatedAt,
		}
		if diff := cmp.Diff(want, v); diff != "" {
			t.Errorf("CreateVehicle mismatch (-want +got):\n%s", diff)
		}
		checkTime(t, "CreatedAt", v.CreatedAt, before)
		got, err := s.GetVehicle(ctx, v.ID)
		if err != nil {
			t.Fatalf("GetVehicle: %v", err)
		}
		if diff := cmp.Diff(v, got); diff != "" {
			t.Errorf("GetVehicle mismatch (-created +got):\n%s", diff)
		}
		checkTime(t, "GetVehicle UpdatedAt", got.UpdatedAt, before)
	}
}

func testVehicleConflictAndReference(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "ada@example.com")
	v := mustCreateVehicle(t, s, u.ID, "VIN0000000000001")
	other := mustCreateVehicle(t, s, u.ID, "VIN0000000000002")

	_, err := s.CreateVehicle(ctx, newVehicle(u.ID, "VIN0000000000001"))
	checkFieldError(t, "CreateVehicle taken VIN", err, storage.ErrConflict, "vin")
	_, err = s.CreateVehicle(ctx, newVehicle(u.ID+1000, "VIN0000000000009"))
	checkFieldError(t, "CreateVehicle unknown owner", err, storage.ErrReference, "userId")

	_, err = s.UpdateVehicle(ctx, other.ID, vehicleUpdate(nil, "VIN0000000000001"))
	checkFieldError(t, "UpdateVehicle taken VIN", err, storage.ErrConflict, "vin")
	missing := u.ID + 1000
	_, err = s.UpdateVehicle(ctx, other.ID, vehicleUpdate(&missing, "VIN0000000000002"))
	checkFieldError(t, "UpdateVehicle unknown owner", err, storage.ErrReference, "userId")

	// Nothing changed, and nothing was created.
	got, err := s.ListVehicles(ctx, storage.VehicleFilter{}, storage.Page{Limit: 100})
	if err != nil {
		t.Fatalf("ListVehicles: %v", err)
	}
	if diff := cmp.Diff([]storage.Vehicle{v, other}, got); diff != "" {
		t.Errorf("ListVehicles after failures (-want +got):\n%s", diff)
	}
}

func testUpdateVehicle(t *testing.T, s storage.Store) {
	ctx := t.Context()
	ada := mustCreateUser(t, s, "ada@example.com")
	grace := mustCreateUser(t, s, "grace@example.com")
	v := mustCreateVehicle(t, s, ada.ID, "VIN0000000000001")
	if v.Color == nil {
		t.Fatal("mustCreateVehicle: Color is nil")
	}
	tick()

	// A nil UserID keeps the owner; a nil Color clears it; the VIN may stay the same.
	got, err := s.UpdateVehicle(ctx, v.ID, storage.VehicleUpdate{
		Make: "Austin", Model: "Seven", Year: 1923, VIN: "VIN0000000000001", LicensePlate: "CD-456",
	})
	if err != nil {
		t.Fatalf("UpdateVehicle: %v", err)
	}
	want := storage.Vehicle{
		ID: v.ID, UserID: ada.ID, Make: "Austin", Model: "Seven", Year: 1923, VIN: "VIN0000000000001",
		LicensePlate: "CD-456", Color: nil, CreatedAt: v.CreatedAt, UpdatedAt: got.UpdatedAt,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UpdateVehicle mismatch (-want +got):\n%s", diff)
	}
	checkTime(t, "UpdatedAt", got.UpdatedAt, v.CreatedAt)
	if !got.UpdatedAt.After(v.UpdatedAt) {
		t.Errorf("UpdateVehicle: UpdatedAt %v did not advance past %v", got.UpdatedAt, v.UpdatedAt)
	}
	tick()

	// A new UserID moves the vehicle; a new VIN and colour are stored.
	blue := "blue"
	got2, err := s.UpdateVehicle(ctx, v.ID, storage.VehicleUpdate{
		UserID: &grace.ID, Make: "Austin", Model: "Seven", Year: 1924, VIN: "VIN0000000000009",
		LicensePlate: "CD-456", Color: &blue,
	})
	if err != nil {
		t.Fatalf("UpdateVehicle move: %v", err)
	}
	want = got
	want.UserID, want.Year, want.VIN, want.Color, want.UpdatedAt = grace.ID, 1924, "VIN0000000000009", &blue, got2.UpdatedAt
	if diff := cmp.Diff(want, got2); diff != "" {
		t.Errorf("UpdateVehicle move mismatch (-want +got):\n%s", diff)
	}
	if !got2.UpdatedAt.After(got.UpdatedAt) {
		t.Errorf("UpdateVehicle: UpdatedAt %v did not advance past %v", got2.UpdatedAt, got.UpdatedAt)
	}
	stored, err := s.GetVehicle(ctx, v.ID)
	if err != nil {
		t.Fatalf("GetVehicle: %v", err)
	}
	if diff := cmp.Diff(got2, stored); diff != "" {
		t.Errorf("GetVehicle after update (-updated +stored):\n%s", diff)
	}
	if list := listAllVehicles(t, s, &ada.ID, 10); len(list) != 0 {
		t.Errorf("previous owner still lists %d vehicles", len(list))
	}
	if diff := cmp.Diff([]storage.Vehicle{got2}, listAllVehicles(t, s, &grace.ID, 10)); diff != "" {
		t.Errorf("new owner's vehicles (-want +got):\n%s", diff)
	}
	// The old VIN is free again.
	mustCreateVehicle(t, s, ada.ID, "VIN0000000000001")
}

func testDeleteVehicle(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "ada@example.com")
	v := mustCreateVehicle(t, s, u.ID, "VIN0000000000001")
	keep := mustCreateVehicle(t, s, u.ID, "VIN0000000000002")
	if err := s.DeleteVehicle(ctx, v.ID); err != nil {
		t.Fatalf("DeleteVehicle: %v", err)
	}
	if _, err := s.GetVehicle(ctx, v.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetVehicle after delete: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteVehicle(ctx, v.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteVehicle twice: err = %v, want ErrNotFound", err)
	}
	if diff := cmp.Diff([]storage.Vehicle{keep}, listAllVehicles(t, s, &u.ID, 10)); diff != "" {
		t.Errorf("vehicles after delete (-want +got):\n%s", diff)
	}
	if _, err := s.GetUser(ctx, u.ID); err != nil {
		t.Errorf("GetUser after deleting a vehicle: %v", err)
	}
	mustCreateVehicle(t, s, u.ID, "VIN0000000000001")
}

func testDeleteUserCascades(t *testing.T, s storage.Store) {
	ctx := t.Context()
	ada := mustCreateUser(t, s, "ada@example.com")
	grace := mustCreateUser(t, s, "grace@example.com")
	v1 := mustCreateVehicle(t, s, ada.ID, "VIN0000000000001")
	v2 := mustCreateVehicle(t, s, ada.ID, "VIN0000000000002")
	keep := mustCreateVehicle(t, s, grace.ID, "VIN0000000000003")
	if err := s.DeleteUser(ctx, ada.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	for _, v := range []storage.Vehicle{v1, v2} {
		if _, err := s.GetVehicle(ctx, v.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetVehicle(%d) after owner deleted: err = %v, want ErrNotFound", v.ID, err)
		}
	}
	if list := listAllVehicles(t, s, &ada.ID, 10); len(list) != 0 {
		t.Errorf("deleted owner still lists %d vehicles", len(list))
	}
	if diff := cmp.Diff([]storage.Vehicle{keep}, listAllVehicles(t, s, nil, 10)); diff != "" {
		t.Errorf("vehicles after cascade (-want +got):\n%s", diff)
	}
	// The deleted vehicles' VINs are free again.
	mustCreateVehicle(t, s, grace.ID, "VIN0000000000001")
}

func testListUsersPages(t *testing.T, s storage.Store) {
	ctx := t.Context()
	if got, err := s.ListUsers(ctx, storage.Page{Limit: 10}); err != nil || len(got) != 0 {
		t.Fatalf("ListUsers on empty store = %v, %v; want no users", got, err)
	}
	var want []storage.User
	for i := range 7 {
		want = append(want, mustCreateUser(t, s, fmt.Sprintf("user%d@example.com", i)))
	}
	// Gaps in the ids must not disturb paging.
	if err := s.DeleteUser(ctx, want[3].ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	want = append(want[:3], want[4:]...)
	for _, limit := range []int{1, 2, 3, 6, 100} {
		var got []storage.User
		after := int64(0)
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page, err := s.ListUsers(ctx, storage.Page{AfterID: after, Limit: limit})
			if err != nil {
				t.Fatalf("ListUsers(after %d, limit %d): %v", after, limit, err)
			}
			if len(page) > limit {
				t.Fatalf("ListUsers(limit %d) returned %d users", limit, len(page))
			}
			got = append(got, page...)
			if len(page) < limit {
				break
			}
			after = page[len(page)-1].ID
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("limit %d: pages joined (-want +got):\n%s", limit, diff)
		}
	}
	if got, err := s.ListUsers(ctx, storage.Page{AfterID: want[len(want)-1].ID, Limit: 10}); err != nil || len(got) != 0 {
		t.Errorf("ListUsers after the last id = %v, %v; want no users", got, err)
	}
}

func testListVehiclesPages(t *testing.T, s storage.Store) {
	ctx := t.Context()
	ada := mustCreateUser(t, s, "ada@example.com")
	grace := mustCreateUser(t, s, "grace@example.com")
	nobody := mustCreateUser(t, s, "nobody@example.com")
	var all, adas, graces []storage.Vehicle
	for i := range 9 {
		owner := ada.ID
		if i%3 == 1 {
			owner = grace.ID
		}
		v := mustCreateVehicle(t, s, owner, fmt.Sprintf("VIN%013d", i))
		all = append(all, v)
		if owner == ada.ID {
			adas = append(adas, v)
		} else {
			graces = append(graces, v)
		}
	}
	for _, limit := range []int{1, 2, 4, 100} {
		if diff := cmp.Diff(all, listAllVehicles(t, s, nil, limit)); diff != "" {
			t.Errorf("all vehicles, limit %d (-want +got):\n%s", limit, diff)
		}
		if diff := cmp.Diff(adas, listAllVehicles(t, s, &ada.ID, limit)); diff != "" {
			t.Errorf("ada's vehicles, limit %d (-want +got):\n%s", limit, diff)
		}
		if diff := cmp.Diff(graces, listAllVehicles(t, s, &grace.ID, limit)); diff != "" {
			t.Errorf("grace's vehicles, limit %d (-want +got):\n%s", limit, diff)
		}
		if got := listAllVehicles(t, s, &nobody.ID, limit); len(got) != 0 {
			t.Errorf("nobody's vehicles, limit %d: got %d", limit, len(got))
		}
	}
	unknown := nobody.ID + 1000
	if got := listAllVehicles(t, s, &unknown, 10); len(got) != 0 {
		t.Errorf("unknown owner's vehicles: got %d", len(got))
	}
	// A page starting inside one owner's list.
	got, err := s.ListVehicles(ctx, storage.VehicleFilter{UserID: &ada.ID}, storage.Page{AfterID: adas[1].ID, Limit: 2})
	if err != nil {
		t.Fatalf("ListVehicles: %v", err)
	}
	if diff := cmp.Diff(adas[2:4], got); diff != "" {
		t.Errorf("ada's vehicles after %d (-want +got):\n%s", adas[1].ID, diff)
	}
}

func testIDsNeverReused(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u1 := mustCreateUser(t, s, "one@example.com")
	u2 := mustCreateUser(t, s, "two@example.com")
	v1 := mustCreateVehicle(t, s, u1.ID, "VIN0000000000001")
	v2 := mustCreateVehicle(t, s, u2.ID, "VIN0000000000002")
	// Deleting the newest records is what tempts an engine to hand out their ids again.
	if err := s.DeleteVehicle(ctx, v2.ID); err != nil {
		t.Fatalf("DeleteVehicle: %v", err)
	}
	if err := s.DeleteUser(ctx, u2.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	u3 := mustCreateUser(t, s, "two@example.com")
	if u3.ID <= u2.ID {
		t.Errorf("new user got ID %d, not above deleted %d", u3.ID, u2.ID)
	}
	v3 := mustCreateVehicle(t, s, u1.ID, "VIN0000000000002")
	if v3.ID <= v2.ID {
		t.Errorf("new vehicle got ID %d, not above deleted %d", v3.ID, v2.ID)
	}
	if v3.ID <= v1.ID {
		t.Errorf("new vehicle got ID %d, not above %d", v3.ID, v1.ID)
	}
	// Failed inserts do not make ids reusable either.
	if _, err := s.CreateUser(ctx, storage.NewUser{Email: "ONE@example.com", Name: "x", PasswordHash: "h"}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("CreateUser duplicate: err = %v, want ErrConflict", err)
	}
	u4 := mustCreateUser(t, s, "four@example.com")
	if u4.ID <= u3.ID {
		t.Errorf("user created after a conflict got ID %d, not above %d", u4.ID, u3.ID)
	}
}

const concurrency = 20

func testConcurrentCreates(t *testing.T, s storage.Store) {
	ctx := t.Context()
	owner := mustCreateUser(t, s, "owner@example.com")
	var (
		wg       sync.WaitGroup
		users    = make([]storage.User, concurrency)
		vehicles = make([]storage.Vehicle, concurrency)
		errs     = make([]error, 2*concurrency)
	)
	for i := range concurrency {
		wg.Go(func() {
			users[i], errs[i] = s.CreateUser(ctx, storage.NewUser{
				Email: fmt.Sprintf("user%d@example.com", i), Name: "n", PasswordHash: "h",
			})
		})
		wg.Go(func() {
			vehicles[i], errs[concurrency+i] = s.CreateVehicle(ctx, newVehicle(owner.ID, fmt.Sprintf("VIN%013d", i)))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent creates failed: %v", err)
	}
	ids := map[int64]bool{owner.ID: true}
	for _, u := range users {
		if ids[u.ID] {
			t.Errorf("user ID %d handed out twice", u.ID)
		}
		ids[u.ID] = true
	}
	vids := map[int64]bool{}
	for _, v := range vehicles {
		if vids[v.ID] {
			t.Errorf("vehicle ID %d handed out twice", v.ID)
		}
		vids[v.ID] = true
	}
	if got := listAllUsers(t, s, 7); len(got) != concurrency+1 {
		t.Errorf("ListUsers: %d users, want %d", len(got), concurrency+1)
	}
	if got := listAllVehicles(t, s, &owner.ID, 7); len(got) != concurrency {
		t.Errorf("ListVehicles: %d vehicles, want %d", len(got), concurrency)
	}
}

func testConcurrentSameEmail(t *testing.T, s storage.Store) {
	ctx := t.Context()
	errs := make([]error, concurrency)
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			email := "ada@example.com"
			if i%2 == 1 {
				email = "ADA@example.com"
			}
			_, errs[i] = s.CreateUser(ctx, storage.NewUser{Email: email, Name: "n", PasswordHash: "h"})
		})
	}
	wg.Wait()
	checkOneWinner(t, "CreateUser", errs, "email")
	if got := listAllUsers(t, s, 10); len(got) != 1 {
		t.Errorf("ListUsers: %d users, want 1", len(got))
	}
}

func testConcurrentSameVIN(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "ada@example.com")
	errs := make([]error, concurrency)
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			_, errs[i] = s.CreateVehicle(ctx, newVehicle(u.ID, "VIN0000000000001"))
		})
	}
	wg.Wait()
	checkOneWinner(t, "CreateVehicle", errs, "vin")
}

// checkOneWinner checks that exactly one of errs is nil and the rest are conflicts on field.
func checkOneWinner(t *testing.T, op string, errs []error, field string) {
	t.Helper()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
			continue
		}
		checkFieldError(t, op, err, storage.ErrConflict, field)
	}
	if wins != 1 {
		t.Errorf("%s: %d of %d concurrent calls succeeded, want 1", op, wins, len(errs))
	}
}

// checkFieldError checks that err is a *storage.FieldError for field that matches target.
func checkFieldError(t *testing.T, op string, err, target error, field string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v, want %v", op, err, target)
		return
	}
	var fe *storage.FieldError
	if !errors.As(err, &fe) {
		t.Errorf("%s: err = %v (%T), want a *storage.FieldError", op, err, err)
		return
	}
	if fe.Field != field {
		t.Errorf("%s: FieldError.Field = %q, want %q", op, fe.Field, field)
	}
	if errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s: err = %v also matches ErrNotFound", op, err)
	}
}

// checkTime checks the Store's timestamp contract: UTC, whole microseconds, not before notBefore
// and not in the future.
func checkTime(t *testing.T, name string, got, notBefore time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Errorf("%s = %v: location %q, want UTC", name, got, got.Location())
	}
	if !got.Equal(got.Truncate(time.Microsecond)) {
		t.Errorf("%s = %v: finer than a microsecond", name, got)
	}
	if got.Before(notBefore) || got.After(storage.Now()) {
		t.Errorf("%s = %v: outside [%v, now]", name, got, notBefore)
	}
}

// tick waits long enough that the next storage.Now differs from the last.
func tick() { time.Sleep(2 * time.Millisecond) }

func mustCreateUser(t *testing.T, s storage.Store, email string) storage.User {
	t.Helper()
	u, err := s.CreateUser(t.Context(), storage.NewUser{Email: email, Name: "User " + email, PasswordHash: "hash:" + email})
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", email, err)
	}
	return u
}

func newVehicle(owner int64, vin string) storage.NewVehicle {
	green := "green"
	return storage.NewVehicle{
		UserID: owner, Make: "Morris", Model: "Minor", Year: 1956, VIN: vin,
		LicensePlate: "PL-" + vin, Color: &green,
	}
}

func vehicleUpdate(owner *int64, vin string) storage.VehicleUpdate {
	return storage.VehicleUpdate{
		UserID: owner, Make: "Morris", Model: "Minor", Year: 1957, VIN: vin, LicensePlate: "PL-" + vin,
	}
}

func mustCreateVehicle(t *testing.T, s storage.Store, owner int64, vin string) storage.Vehicle {
	t.Helper()
	v, err := s.CreateVehicle(t.Context(), newVehicle(owner, vin))
	if err != nil {
		t.Fatalf("CreateVehicle(owner %d, %q): %v", owner, vin, err)
	}
	return v
}

// listAllUsers walks every page of ListUsers.
func listAllUsers(t *testing.T, s storage.Store, limit int) []storage.User {
	t.Helper()
	return walk(t, func(ctx context.Context, p storage.Page) ([]storage.User, error) {
		return s.ListUsers(ctx, p)
	}, func(u storage.User) int64 { return u.ID }, limit)
}

// listAllVehicles walks every page of ListVehicles, for one owner or (owner nil) all.
func listAllVehicles(t *testing.T, s storage.Store, owner *int64, limit int) []storage.Vehicle {
	t.Helper()
	return walk(t, func(ctx context.Context, p storage.Page) ([]storage.Vehicle, error) {
		return s.ListVehicles(ctx, storage.VehicleFilter{UserID: owner}, p)
	}, func(v storage.Vehicle) int64 { return v.ID }, limit)
}

// walk pages through a list until a short page, checking that ids strictly increase.
func walk[T any](t *testing.T, list func(context.Context, storage.Page) ([]T, error), id func(T) int64, limit int) []T {
	t.Helper()
	var all []T
	after := int64(0)
	for {
		page, err := list(t.Context(), storage.Page{AfterID: after, Limit: limit})
		if err != nil {
			t.Fatalf("list(after %d, limit %d): %v", after, limit, err)
		}
		if len(page) > limit {
			t.Fatalf("list(limit %d) returned %d records", limit, len(page))
		}
		for _, r := range page {
			if id(r) <= after {
				t.Fatalf("list(after %d): id %d out of order", after, id(r))
			}
			after = id(r)
		}
		all = append(all, page...)
		if len(page) < limit {
			return all
		}
	}
}
