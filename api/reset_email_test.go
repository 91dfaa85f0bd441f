package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/motorpool/motorpool/client"
)

// A reset link dies when the account's email changes (it went to the old address), and a
// change back does not revive it; the same address in another case is no change.
func TestPasswordResetOutdatedByEmailChange(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		ctx := context.Background()
		u := mustUser(t, s, "grace@example.com")
		guest := s.clientWith(t, "")
		setEmail := func(email string) {
			t.Helper()
			r, err := s.Client.UpdateUserWithResponse(ctx, u.Id, client.UpdateUserJSONRequestBody{Email: client.Email(email), Name: u.Name})
			if err != nil || r.JSON200 == nil {
				t.Fatalf("PUT /users/%d email %s: %v %s", u.Id, email, err, r.Body)
			}
		}
		confirm := func(tok, password string) int {
			t.Helper()
			r, err := guest.ConfirmPasswordResetWithResponse(ctx, client.ConfirmPasswordResetJSONRequestBody{Token: tok, NewPassword: password})
			if err != nil {
				t.Fatal(err)
			}
			return r.StatusCode()
		}

		caseOnly := requestReset(t, s, "grace@example.com")
		setEmail("Grace@Example.com")
		if code := confirm(caseOnly, "reset across a case change"); code != http.StatusNoContent {
			t.Fatalf("confirm after a change of case only: %d, want 204", code)
		}

		old := requestReset(t, s, "grace@example.com", "Grace@Example.com")
		setEmail("grace@hopper.org")
		setEmail("grace@example.com") // and back: the link is still the one sent before
		if code := confirm(old, "reset across an email change"); code != http.StatusBadRequest {
			t.Errorf("confirm of a link sent before an email change: %d, want 400", code)
		}
		s.login(t, "grace@example.com", "reset across a case change") // the password did not change

		fresh := requestReset(t, s, "grace@example.com")
		if code := confirm(fresh, "reset after the change"); code != http.StatusNoContent {
			t.Errorf("confirm of a link sent after the change: %d, want 204", code)
		}
		s.login(t, "grace@example.com", "reset after the change")
	})
}
