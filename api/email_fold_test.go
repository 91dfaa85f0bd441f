package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/motorpool/motorpool/client"
)

// Emails are case-insensitive under full Unicode case folding, everywhere one is compared or
// keyed: registering xΣ@… when xς@… exists is a conflict; sign-in, the lookup, the lockout
// counter and the reset link all take any spelling for the one account.
func TestEmailFullCaseFolding(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		ctx := context.Background()
		guest := s.clientWith(t, "")
		u := mustUser(t, s, "xς@example.com")

		for _, e := range []string{"xΣ@example.com", "xσ@example.com", "XΣ@EXAMPLE.COM"} {
			r, err := guest.CreateUserWithResponse(ctx, client.CreateUserJSONRequestBody{Email: client.Email(e), Name: "Twin", Password: testPassword})
			if err != nil {
				t.Fatal(err)
			}
			if r.StatusCode() != http.StatusConflict {
				t.Errorf("register %s beside xς@example.com: %d %s, want 409", e, r.StatusCode(), r.Body)
			}
		}
		l, err := s.Client.ListUsersWithResponse(ctx, &client.ListUsersParams{Email: ptr(client.Email("XΣ@example.com"))})
		if err != nil || l.JSON200 == nil || len(l.JSON200.Items) != 1 || l.JSON200.Items[0].Id != u.Id {
			t.Errorf("GET /users?email=XΣ@example.com: %v %s, want user %d", err, l.Body, u.Id)
		}
		s.login(t, "XΣ@example.com", testPassword)

		// Five failures under three spellings lock every spelling out.
		for _, e := range []string{"xΣ@example.com", "xσ@example.com", "XΣ@example.com", "xς@example.com", "Xς@example.com"} {
			r, err := guest.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: client.Email(e), Password: "not the password"})
			if err != nil || r.StatusCode() != http.StatusUnauthorized {
				t.Fatalf("failed sign-in as %s: %v %d, want 401", e, err, r.StatusCode())
			}
		}
		wantLocked(t, s, "xς@example.com", testPassword, 15*60)

		tok := requestReset(t, s, "XΣ@EXAMPLE.COM", "xς@example.com") // mailed to the address on file
		r, err := guest.ConfirmPasswordResetWithResponse(ctx, client.ConfirmPasswordResetJSONRequestBody{Token: tok, NewPassword: "a folded new passphrase"})
		if err != nil || r.StatusCode() != http.StatusNoContent {
			t.Fatalf("confirm the reset: %v %d %s", err, r.StatusCode(), r.Body)
		}
		s.login(t, "xσ@example.com", "a folded new passphrase") // and the reset lifted the lockout
	})
}
