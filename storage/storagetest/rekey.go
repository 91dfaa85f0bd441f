package storagetest

import (
	"errors"
	"testing"

	"github.com/motorpool/motorpool/storage"
)

// LegacyUser is a users row as an older version of the program stored it: its email and the
// email_normalized key it computed (lower-casing, before full case folding).
type LegacyUser struct{ Email, Key string }

// RunEmailRekey checks the migration that re-keys users.email_normalized to the current
// NormalizeEmail. seed must store rows, in order, as the older version did (the schema
// migrated only up to before the re-key; ids from 1); upgrade must then migrate to the current
// version and return the store.
//
// After it, every user is found by any spelling of their email under the current comparison,
// except one that the new comparison makes equal to another's: that one keeps its old key
// (and stays whole, reachable by id) while the user already holding the key keeps it.
func RunEmailRekey(t *testing.T, seed func(t *testing.T, rows []LegacyUser), upgrade func(t *testing.T) storage.Store) {
	seed(t, []LegacyUser{
		{"Straße@Example.com", "straße@example.com"}, // 1: moves to strasse@example.com
		{"xς@example.com", "xς@example.com"},         // 2: would move to 3's key, so stays
		{"xσ@example.com", "xσ@example.com"},         // 3: already keyed as now
		{"Ada@Example.com", "ada@example.com"},       // 4: already keyed as now
		{"Ꭰ@example.com", "ꭰ@example.com"},           // 5: Cherokee folds to the upper case
	})
	s := upgrade(t)
	ctx := t.Context()
	for email, id := range map[string]int64{
		"STRASSE@example.com": 1, "straße@example.com": 1,
		"xΣ@example.com": 3, "xσ@example.com": 3,
		"ada@example.com": 4,
		"ꭰ@example.com":   5, "Ꭰ@EXAMPLE.COM": 5,
	} {
		u, err := s.GetUserByEmail(ctx, email)
		if err != nil || u.ID != id {
			t.Errorf("GetUserByEmail(%q) after the re-key = user %d, %v; want user %d", email, u.ID, err, id)
		}
	}
	u, err := s.GetUser(ctx, 2)
	if err != nil || u.Email != "xς@example.com" {
		t.Errorf("the user whose key was taken: %+v, %v; want it kept whole", u, err)
	}
	if _, err := s.CreateUser(ctx, storage.NewUser{Email: "STRASSE@example.com", Name: "Impostor", PasswordHash: "h"}); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("CreateUser under a re-keyed address: err = %v, want ErrConflict", err)
	}
}
