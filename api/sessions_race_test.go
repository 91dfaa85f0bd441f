package api_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/client"
)

// sessionGate pauses one sign-in or refresh of one user between its checks and its session
// write (auth.WithBeforeSessionWrite), so that a test can land a change in that window.
type sessionGate struct{ armed atomic.Pointer[pause] }

// pause is one armed stop: the session write of user waits for release once reached is closed.
type pause struct {
	user             int64
	reached, release chan struct{}
}

func (g *sessionGate) option() serverOption {
	return withAuthOptions(auth.WithBeforeSessionWrite(func(_ context.Context, userID int64) {
		p := g.armed.Load()
		if p != nil && p.user == userID && g.armed.CompareAndSwap(p, nil) {
			close(p.reached)
			<-p.release
		}
	}))
}

// during runs call (a sign-in or refresh of userID) until it is paused before its session
// write, then change, then lets call finish and returns what it answered.
func during[T any](t *testing.T, g *sessionGate, userID int64, call func() (T, error), change func()) T {
	t.Helper()
	p := &pause{user: userID, reached: make(chan struct{}), release: make(chan struct{})}
	g.armed.Store(p)
	type result struct {
		v   T
		err error
	}
	released := false
	defer func() { // a failed change must not leave the call (and the server's Close) waiting
		if !released {
			close(p.release)
		}
	}()
	done := make(chan result, 1)
	go func() {
		v, err := call()
		done <- result{v, err}
	}()
	select {
	case <-p.reached:
	case r := <-done:
		t.Fatalf("the call finished without reaching its session write: %v", r.err)
	}
	change()
	close(p.release)
	released = true
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

// A change that ends a user's sessions and commits while a sign-in of that user is between
// its password check and its session write wins: the sign-in is decided again on the changed
// user, so no session outlives the change.
func TestLoginRacingUserChange(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		g := &sessionGate{}
		s := newTestServer(t, newBackend(t), g.option())
		ctx := context.Background()
		guest := s.clientWith(t, "")
		login := func(email, password string) func() (*client.LoginResponse, error) {
			return func() (*client.LoginResponse, error) {
				return guest.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: client.Email(email), Password: password})
			}
		}
		update := func(u client.User, body client.UpdateUserJSONRequestBody) {
			t.Helper()
			r, err := s.Client.UpdateUserWithResponse(ctx, u.Id, body)
			if err != nil || r.JSON200 == nil {
				t.Fatalf("PUT /users/%d: %v %s", u.Id, err, r.Body)
			}
		}

		t.Run("deleted", func(t *testing.T) {
			u := mustUser(t, s, "deleted@example.com")
			r := during(t, g, u.Id, login("deleted@example.com", testPassword), func() {
				if r, err := s.Client.DeleteUserWithResponse(ctx, u.Id); err != nil || r.StatusCode() != http.StatusNoContent {
					t.Fatalf("DELETE /users/%d: %v %s", u.Id, err, r.Body)
				}
			})
			if r.StatusCode() != http.StatusUnauthorized {
				t.Fatalf("sign-in of a user deleted meanwhile: %d %s, want 401", r.StatusCode(), r.Body)
			}
		})

		t.Run("password changed", func(t *testing.T) {
			u := mustUser(t, s, "changed@example.com")
			r := during(t, g, u.Id, login("changed@example.com", testPassword), func() {
				update(u, client.UpdateUserJSONRequestBody{Email: u.Email, Name: u.Name, Password: ptr("the new passphrase")})
			})
			if r.StatusCode() != http.StatusUnauthorized {
				t.Fatalf("sign-in with the password replaced meanwhile: %d %s, want 401", r.StatusCode(), r.Body)
			}
			s.login(t, "changed@example.com", "the new passphrase")
		})

		t.Run("email changed", func(t *testing.T) {
			u := mustUser(t, s, "moved@example.com")
			r := during(t, g, u.Id, login("moved@example.com", testPassword), func() {
				// An email change ends no session; it is the sign-in after it that must
				// not go through under the old address. Logging out everywhere moves the
				// epoch, so the sign-in looks at the user again.
				update(u, client.UpdateUserJSONRequestBody{Email: "moved-on@example.com", Name: u.Name})
				if r, err := s.Client.DeleteUserSessionsWithResponse(ctx, u.Id); err != nil || r.StatusCode() != http.StatusNoContent {
					t.Fatalf("DELETE /users/%d/sessions: %v %s", u.Id, err, r.Body)
				}
			})
			if r.StatusCode() != http.StatusUnauthorized {
				t.Fatalf("sign-in under an email changed meanwhile: %d %s, want 401", r.StatusCode(), r.Body)
			}
		})

		t.Run("demoted", func(t *testing.T) {
			u := mustUser(t, s, "demoted@example.com")
			update(u, client.UpdateUserJSONRequestBody{Email: u.Email, Name: u.Name, Role: ptr(client.RoleAdmin)})
			r := during(t, g, u.Id, login("demoted@example.com", testPassword), func() {
				update(u, client.UpdateUserJSONRequestBody{Email: u.Email, Name: u.Name, Role: ptr(client.RoleUser)})
			})
			if r.JSON200 == nil {
				t.Fatalf("sign-in of a user demoted meanwhile: %d %s, want 200 as a user", r.StatusCode(), r.Body)
			}
			c := s.clientWith(t, r.JSON200.AccessToken)
			me, err := c.GetMeWithResponse(ctx)
			if err != nil || me.JSON200 == nil {
				t.Fatalf("GET /auth/me: %v %s", err, me.Body)
			}
			if me.JSON200.User.Role != client.RoleUser {
				t.Errorf("role after the demotion = %q, want user", me.JSON200.User.Role)
			}
			if l, err := c.ListUsersWithResponse(ctx, nil); err != nil || l.StatusCode() != http.StatusForbidden {
				t.Errorf("GET /users as the demoted admin: %v %d, want 403", err, l.StatusCode())
			}
		})
	})
}

// A refresh paused before its rotation while the user is deleted gets nothing that works.
func TestRefreshRacingUserDeletion(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		g := &sessionGate{}
		s := newTestServer(t, newBackend(t), g.option())
		ctx := context.Background()
		u := mustUser(t, s, "refresher@example.com")
		pair := s.login(t, "refresher@example.com", testPassword)
		guest := s.clientWith(t, "")
		r := during(t, g, u.Id, func() (*client.RefreshTokensResponse, error) {
			return guest.RefreshTokensWithResponse(ctx, client.RefreshTokensJSONRequestBody{RefreshToken: pair.RefreshToken})
		}, func() {
			if r, err := s.Client.DeleteUserWithResponse(ctx, u.Id); err != nil || r.StatusCode() != http.StatusNoContent {
				t.Fatalf("DELETE /users/%d: %v %s", u.Id, err, r.Body)
			}
		})
		if r.JSON200 != nil {
			wantDead(t, s, "an access token refreshed across the deletion", r.JSON200.AccessToken)
			again, err := guest.RefreshTokensWithResponse(ctx, client.RefreshTokensJSONRequestBody{RefreshToken: r.JSON200.RefreshToken})
			if err != nil || again.StatusCode() != http.StatusUnauthorized {
				t.Errorf("refresh token rotated across the deletion: %v %d, want 401", err, again.StatusCode())
			}
		} else if r.StatusCode() != http.StatusUnauthorized {
			t.Errorf("refresh across the deletion: %d %s, want 401", r.StatusCode(), r.Body)
		}
	})
}
