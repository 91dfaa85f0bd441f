package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage"
)

// This file holds the subtests of RunStore for password versions, roles and the last admin.

func testPasswordVersion(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "ada@example.com")
	if u.PasswordVersion != 1 {
		t.Fatalf("CreateUser: PasswordVersion = %d, want 1", u.PasswordVersion)
	}
	admin := storage.RoleAdmin
	hash := "hash-2"
	steps := []struct {
		name    string
		update  storage.UserUpdate
		version int64
	}{
		{"no password", storage.UserUpdate{Email: u.Email, Name: "Ada"}, 1},
		{"password", storage.UserUpdate{Email: u.Email, Name: "Ada", PasswordHash: &hash}, 2},
		{"role only", storage.UserUpdate{Email: u.Email, Name: "Ada", Role: &admin}, 2},
		// The same hash again is still a password change.
		{"same password again", storage.UserUpdate{Email: u.Email, Name: "Ada", PasswordHash: &hash}, 3},
		// The same email in another case is the same email; another one is a change, which
		// reset grants (tied to the version) must not outlive.
		{"email in another case", storage.UserUpdate{Email: "ADA@Example.com", Name: "Ada"}, 3},
		{"new email", storage.UserUpdate{Email: "lovelace@example.com", Name: "Ada"}, 4},
		{"new email and password", storage.UserUpdate{Email: "ada@lovelace.org", Name: "Ada", PasswordHash: &hash}, 5},
	}
	for _, st := range steps {
		got, err := s.UpdateUser(ctx, u.ID, st.update)
		if err != nil {
			t.Fatalf("UpdateUser %s: %v", st.name, err)
		}
		if got.PasswordVersion != st.version {
			t.Errorf("UpdateUser %s: PasswordVersion = %d, want %d", st.name, got.PasswordVersion, st.version)
		}
		if stored, err := s.GetUser(ctx, u.ID); err != nil {
			t.Fatalf("GetUser: %v", err)
		} else if diff := cmp.Diff(got, stored); diff != "" {
			t.Errorf("GetUser after UpdateUser %s (-updated +stored):\n%s", st.name, diff)
		}
	}
	// Another user's version is their own.
	if other := mustCreateUser(t, s, "grace@example.com"); other.PasswordVersion != 1 {
		t.Errorf("second user: PasswordVersion = %d, want 1", other.PasswordVersion)
	}
}

func testSetPassword(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "ada@example.com")
	other := mustCreateUser(t, s, "grace@example.com")
	tick()

	got, err := s.SetPassword(ctx, u.ID, "hash-2", 1)
	if err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	want := u
	want.PasswordHash, want.PasswordVersion, want.UpdatedAt = "hash-2", 2, got.UpdatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SetPassword mismatch (-want +got):\n%s", diff)
	}
	checkTime(t, "UpdatedAt", got.UpdatedAt, u.CreatedAt)
	if !got.UpdatedAt.After(u.UpdatedAt) {
		t.Errorf("SetPassword: UpdatedAt %v did not advance past %v", got.UpdatedAt, u.UpdatedAt)
	}
	checkStored(t, s, got)

	// The version it was granted for has moved on; so has one from the future.
	for _, version := range []int64{1, 3, 0} {
		_, err := s.SetPassword(ctx, u.ID, "hash-stale", version)
		if !errors.Is(err, storage.ErrStale) || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("SetPassword(version %d) at version 2: err = %v, want ErrStale", version, err)
		}
	}
	checkStored(t, s, got)

	// A password change through UpdateUser moves the version on, too.
	hash := "hash-3"
	updated, err := s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: u.Email, Name: u.Name, PasswordHash: &hash})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if _, err := s.SetPassword(ctx, u.ID, "hash-stale", 2); !errors.Is(err, storage.ErrStale) {
		t.Errorf("SetPassword after UpdateUser with the old version: err = %v, want ErrStale", err)
	}
	got, err = s.SetPassword(ctx, u.ID, "hash-4", updated.PasswordVersion)
	if err != nil {
		t.Fatalf("SetPassword with the current version: %v", err)
	}
	if got.PasswordHash != "hash-4" || got.PasswordVersion != updated.PasswordVersion+1 {
		t.Errorf("SetPassword: hash %q version %d, want %q %d", got.PasswordHash, got.PasswordVersion, "hash-4", updated.PasswordVersion+1)
	}

	missing := max(u.ID, other.ID) + 1000
	if _, err := s.SetPassword(ctx, missing, "h", 1); !errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrStale) {
		t.Errorf("SetPassword unknown user: err = %v, want ErrNotFound", err)
	}
	// The other user was not touched.
	checkStored(t, s, other)
}

func testConcurrentSetPassword(t *testing.T, s storage.Store) {
	ctx := t.Context()
	u := mustCreateUser(t, s, "ada@example.com")
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		users = make([]storage.User, concurrency)
		errs  = make([]error, concurrency)
	)
	for i := range concurrency {
		wg.Go(func() {
			<-start
			users[i], errs[i] = s.SetPassword(ctx, u.ID, fmt.Sprintf("hash-%d", i), 1)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("SetPassword %d and %d both succeeded with version 1", winner, i)
			}
			winner = i
		case !errors.Is(err, storage.ErrStale):
			t.Errorf("SetPassword %d: err = %v, want nil or ErrStale", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no SetPassword succeeded")
	}
	if users[winner].PasswordVersion != 2 {
		t.Errorf("winning SetPassword: PasswordVersion = %d, want 2", users[winner].PasswordVersion)
	}
	checkStored(t, s, users[winner])
}

func testUpdateUserRole(t *testing.T, s storage.Store) {
	ctx := t.Context()
	admin, user := storage.RoleAdmin, storage.RoleUser
	u := mustCreateUser(t, s, "ada@example.com")
	tick()

	// With no admin in the store, making a user a user again is no demotion.
	got, err := s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: u.Email, Name: u.Name, Role: &user})
	if err != nil {
		t.Fatalf("UpdateUser role user: %v", err)
	}
	if got.Role != storage.RoleUser {
		t.Errorf("UpdateUser role user: Role = %q", got.Role)
	}
	tick()

	got, err = s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: u.Email, Name: "Countess", Role: &admin})
	if err != nil {
		t.Fatalf("UpdateUser promote: %v", err)
	}
	want := u
	want.Name, want.Role, want.UpdatedAt = "Countess", storage.RoleAdmin, got.UpdatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UpdateUser promote mismatch (-want +got):\n%s", diff)
	}
	if !got.UpdatedAt.After(u.UpdatedAt) {
		t.Errorf("UpdateUser promote: UpdatedAt %v did not advance past %v", got.UpdatedAt, u.UpdatedAt)
	}
	checkStored(t, s, got)

	// Without Role the role is kept.
	got, err = s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: u.Email, Name: "Ada"})
	if err != nil {
		t.Fatalf("UpdateUser without role: %v", err)
	}
	if got.Role != storage.RoleAdmin {
		t.Errorf("UpdateUser without role: Role = %q, want admin", got.Role)
	}

	// With another admin, the first can step down, changing other fields in the same call.
	mustCreateAdmin(t, s, "grace@example.com")
	hash := "hash-new"
	got, err = s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: "lovelace@example.com", Name: "Ada", PasswordHash: &hash, Role: &user})
	if err != nil {
		t.Fatalf("UpdateUser demote: %v", err)
	}
	want = u
	want.Email, want.Name, want.PasswordHash, want.PasswordVersion, want.UpdatedAt = "lovelace@example.com", "Ada", "hash-new", 2, got.UpdatedAt
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UpdateUser demote mismatch (-want +got):\n%s", diff)
	}
	checkStored(t, s, got)
	// A demotion still reports an email conflict.
	_, err = s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: "grace@example.com", Name: "Ada", Role: &user})
	checkFieldError(t, "UpdateUser demote to a taken email", err, storage.ErrConflict, "email")
	checkStored(t, s, got)
}

func testLastAdmin(t *testing.T, s storage.Store) {
	ctx := t.Context()
	admin, user := storage.RoleAdmin, storage.RoleUser
	root := mustCreateAdmin(t, s, "root@example.com")
	ada := mustCreateUser(t, s, "ada@example.com")
	v := mustCreateVehicle(t, s, root.ID, "VIN0000000000001")

	// Demoting or deleting the only admin fails and changes nothing, not even the fields that
	// came with the demotion.
	hash := "hash-new"
	for _, u := range []storage.UserUpdate{
		{Email: root.Email, Name: root.Name, Role: &user},
		{Email: "new@example.com", Name: "New", PasswordHash: &hash, Role: &user},
	} {
		_, err := s.UpdateUser(ctx, root.ID, u)
		checkLastAdminErr(t, "UpdateUser demote the only admin", err)
	}
	checkLastAdminErr(t, "DeleteUser the only admin", s.DeleteUser(ctx, root.ID))
	checkStored(t, s, root)
	if _, err := s.GetVehicle(ctx, v.ID); err != nil {
		t.Errorf("GetVehicle of the only admin after a refused delete: %v", err)
	}

	// The only admin may still change anything but their role.
	root, err := s.UpdateUser(ctx, root.ID, storage.UserUpdate{Email: root.Email, Name: "Root", PasswordHash: &hash, Role: &admin})
	if err != nil {
		t.Fatalf("UpdateUser the only admin, keeping the role: %v", err)
	}
	if root.Role != storage.RoleAdmin || root.Name != "Root" {
		t.Errorf("UpdateUser the only admin: Role %q Name %q", root.Role, root.Name)
	}
	if root, err = s.SetPassword(ctx, root.ID, "hash-3", root.PasswordVersion); err != nil {
		t.Fatalf("SetPassword the only admin: %v", err)
	}
	// Other users may still be set to user and deleted.
	if _, err := s.UpdateUser(ctx, ada.ID, storage.UserUpdate{Email: ada.Email, Name: ada.Name, Role: &user}); err != nil {
		t.Errorf("UpdateUser a user while one admin exists: %v", err)
	}
	if err := s.DeleteUser(ctx, mustCreateUser(t, s, "temp@example.com").ID); err != nil {
		t.Errorf("DeleteUser a user while one admin exists: %v", err)
	}

	// With a second admin, the first may step down; then the second is the last.
	grace := mustCreateAdmin(t, s, "grace@example.com")
	if _, err := s.UpdateUser(ctx, root.ID, storage.UserUpdate{Email: root.Email, Name: root.Name, Role: &user}); err != nil {
		t.Fatalf("UpdateUser demote one of two admins: %v", err)
	}
	checkLastAdminErr(t, "DeleteUser the last admin", s.DeleteUser(ctx, grace.ID))
	checkStored(t, s, grace)

	// With a second admin, the first may be deleted (and their vehicles with them).
	if _, err := s.UpdateUser(ctx, root.ID, storage.UserUpdate{Email: root.Email, Name: root.Name, Role: &admin}); err != nil {
		t.Fatalf("UpdateUser promote: %v", err)
	}
	if err := s.DeleteUser(ctx, root.ID); err != nil {
		t.Fatalf("DeleteUser one of two admins: %v", err)
	}
	if _, err := s.GetVehicle(ctx, v.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetVehicle of a deleted admin: err = %v, want ErrNotFound", err)
	}
	_, err = s.UpdateUser(ctx, grace.ID, storage.UserUpdate{Email: grace.Email, Name: grace.Name, Role: &user})
	checkLastAdminErr(t, "UpdateUser demote the last admin", err)
	if diff := cmp.Diff([]storage.User{grace}, listAdmins(t, s)); diff != "" {
		t.Errorf("admins at the end (-want +got):\n%s", diff)
	}
}

// adminRounds is how many fresh pairs of admins each last-admin race runs over.
const adminRounds = 20

// adminOp demotes or deletes u.
type adminOp func(ctx context.Context, s storage.Store, u storage.User) error

func demote(ctx context.Context, s storage.Store, u storage.User) error {
	role := storage.RoleUser
	_, err := s.UpdateUser(ctx, u.ID, storage.UserUpdate{Email: u.Email, Name: u.Name, Role: &role})
	return err
}

func deleteUser(ctx context.Context, s storage.Store, u storage.User) error {
	return s.DeleteUser(ctx, u.ID)
}

func testConcurrentDemoteLastAdmins(t *testing.T, s storage.Store) {
	raceLastAdmins(t, s, demote, demote)
}

func testConcurrentDeleteLastAdmins(t *testing.T, s storage.Store) {
	raceLastAdmins(t, s, deleteUser, deleteUser)
}

func testConcurrentDemoteDeleteLastAdmins(t *testing.T, s storage.Store) {
	raceLastAdmins(t, s, demote, deleteUser)
}

// raceLastAdmins runs adminRounds rounds of: make the store hold exactly two admins, fresh
// ones, then start opA on one and opB on the other at once. Exactly one must succeed and the
// other fail with ErrLastAdmin, leaving the other one the only admin.
func raceLastAdmins(t *testing.T, s storage.Store, opA, opB adminOp) {
	ctx := t.Context()
	var survivor *storage.User
	for round := range adminRounds {
		pair := [2]storage.User{
			mustCreateAdmin(t, s, fmt.Sprintf("a%d@example.com", round)),
			mustCreateAdmin(t, s, fmt.Sprintf("b%d@example.com", round)),
		}
		// The previous round's survivor steps down, leaving the pair as the only admins.
		if survivor != nil {
			if err := demote(ctx, s, *survivor); err != nil {
				t.Fatalf("round %d: demote the previous survivor: %v", round, err)
			}
		}
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  [2]error
		)
		for i, op := range []adminOp{opA, opB} {
			wg.Go(func() {
				<-start
				errs[i] = op(ctx, s, pair[i])
			})
		}
		close(start)
		wg.Wait()

		loser := -1
		for i, err := range errs {
			if err == nil {
				continue
			}
			if !errors.Is(err, storage.ErrLastAdmin) {
				t.Errorf("round %d: user %d: err = %v, want nil or ErrLastAdmin", round, pair[i].ID, err)
			}
			if loser >= 0 {
				t.Errorf("round %d: both calls failed: %v; %v", round, errs[0], errs[1])
			}
			loser = i
		}
		if loser < 0 {
			t.Errorf("round %d: both calls succeeded on the last two admins", round)
		}
		admins := listAdmins(t, s)
		if len(admins) != 1 {
			t.Fatalf("round %d: %d admins remain, want 1: %v", round, len(admins), admins)
		}
		if loser >= 0 && admins[0].ID != pair[loser].ID {
			t.Errorf("round %d: the remaining admin is %d, want %d, whose change failed", round, admins[0].ID, pair[loser].ID)
		}
		survivor = &admins[0]
	}
}

// checkLastAdminErr checks that err is ErrLastAdmin and nothing else.
func checkLastAdminErr(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, storage.ErrLastAdmin) {
		t.Errorf("%s: err = %v, want ErrLastAdmin", op, err)
		return
	}
	for _, other := range []error{storage.ErrNotFound, storage.ErrConflict, storage.ErrStale} {
		if errors.Is(err, other) {
			t.Errorf("%s: err = %v also matches %v", op, err, other)
		}
	}
}

// checkStored checks that the stored user equals want.
func checkStored(t *testing.T, s storage.Store, want storage.User) {
	t.Helper()
	got, err := s.GetUser(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetUser(%d): %v", want.ID, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored user %d (-want +got):\n%s", want.ID, diff)
	}
}

func mustCreateAdmin(t *testing.T, s storage.Store, email string) storage.User {
	t.Helper()
	u, err := s.CreateUser(t.Context(), storage.NewUser{
		Email: email, Name: "Admin " + email, Role: storage.RoleAdmin, PasswordHash: "hash:" + email,
	})
	if err != nil {
		t.Fatalf("CreateUser(%q, admin): %v", email, err)
	}
	if u.Role != storage.RoleAdmin {
		t.Fatalf("CreateUser(%q, admin): Role = %q", email, u.Role)
	}
	return u
}

// listAdmins returns every admin in id order.
func listAdmins(t *testing.T, s storage.Store) []storage.User {
	t.Helper()
	var admins []storage.User
	for _, u := range listAllUsers(t, s, 50) {
		if u.Role == storage.RoleAdmin {
			admins = append(admins, u)
		}
	}
	return admins
}
