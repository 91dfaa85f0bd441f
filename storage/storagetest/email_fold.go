package storagetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage"
)

// Emails are compared under full Unicode case folding, not lower-casing alone: the final
// sigma, the small sigma and the capital are one letter; ß and SS are one; so uniqueness (on
// create and on update) and look-ups treat them as one address.
func testEmailCaseFolding(t *testing.T, s storage.Store) {
	ctx := t.Context()
	sigma := mustCreateUser(t, s, "xς@example.com")
	strasse := mustCreateUser(t, s, "straße@example.com")
	for _, v := range []string{"xΣ@example.com", "XΣ@EXAMPLE.COM", "xσ@example.com"} {
		_, err := s.CreateUser(ctx, storage.NewUser{Email: v, Name: "Impostor", PasswordHash: "h"})
		checkFieldError(t, "CreateUser "+v, err, storage.ErrConflict, "email")
		got, err := s.GetUserByEmail(ctx, v)
		if err != nil {
			t.Errorf("GetUserByEmail %s: %v", v, err)
		} else if diff := cmp.Diff(sigma, got); diff != "" {
			t.Errorf("GetUserByEmail %s mismatch (-want +got):\n%s", v, diff)
		}
	}
	for _, v := range []string{"STRASSE@example.com", "strasse@example.com", "STRAẞE@example.com"} {
		_, err := s.CreateUser(ctx, storage.NewUser{Email: v, Name: "Impostor", PasswordHash: "h"})
		checkFieldError(t, "CreateUser "+v, err, storage.ErrConflict, "email")
		if got, err := s.GetUserByEmail(ctx, v); err != nil || got.ID != strasse.ID {
			t.Errorf("GetUserByEmail %s = user %d, %v; want user %d", v, got.ID, err, strasse.ID)
		}
	}
	_, err := s.UpdateUser(ctx, strasse.ID, storage.UserUpdate{Email: "XΣ@example.com", Name: "Taken"})
	checkFieldError(t, "UpdateUser to a folded-equal email", err, storage.ErrConflict, "email")
	// The owner may respell their own address.
	if got, err := s.UpdateUser(ctx, sigma.ID, storage.UserUpdate{Email: "XΣ@example.com", Name: sigma.Name}); err != nil || got.Email != "XΣ@example.com" {
		t.Errorf("UpdateUser respelling one's own email = %q, %v", got.Email, err)
	}
}
