package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/client"
)

func ptr[T any](v T) *T { return &v }

func TestUserLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		ctx := context.Background()

		created, err := s.Client.CreateUserWithResponse(ctx, client.CreateUserJSONRequestBody{
			Email: "Ada@Example.com", Name: "Ada Lovelace", Password: "correct horse battery",
		})
		if err != nil {
			t.Fatal(err)
		}
		if created.StatusCode() != http.StatusCreated {
			t.Fatalf("create: %d %s", created.StatusCode(), created.Body)
		}
		u := *created.JSON201
		if got, want := created.HTTPResponse.Header.Get("Location"), "/users/"+itoa(u.Id); got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		if u.Email != "Ada@Example.com" || u.Name != "Ada Lovelace" || u.Role != client.RoleUser || u.Id < 1 {
			t.Errorf("created user = %+v", u)
		}
		if !u.CreatedAt.Equal(u.UpdatedAt) {
			t.Errorf("createdAt %v != updatedAt %v on a new user", u.CreatedAt, u.UpdatedAt)
		}
		if strings.Contains(strings.ToLower(string(created.Body)), "password") || strings.Contains(string(created.Body), "argon2") {
			t.Errorf("response leaks the password or its hash: %s", created.Body)
		}
		stored, err := s.Store.GetUser(ctx, u.Id)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(stored.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Errorf("stored hash %q is not argon2id with OWASP parameters", stored.PasswordHash)
		}

		got, err := s.Client.GetUserWithResponse(ctx, u.Id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.JSON200 == nil {
			t.Fatalf("get: %d %s", got.StatusCode(), got.Body)
		}
		if diff := cmp.Diff(u, *got.JSON200); diff != "" {
			t.Errorf("get differs from create (-create +get):\n%s", diff)
		}

		// Update without a password keeps the hash.
		upd, err := s.Client.UpdateUserWithResponse(ctx, u.Id, client.UpdateUserJSONRequestBody{Email: "ada@lovelace.org", Name: "Ada King"})
		if err != nil {
			t.Fatal(err)
		}
		if upd.JSON200 == nil {
			t.Fatalf("update: %d %s", upd.StatusCode(), upd.Body)
		}
		if upd.JSON200.Email != "ada@lovelace.org" || upd.JSON200.Name != "Ada King" || !upd.JSON200.UpdatedAt.After(u.UpdatedAt) || !upd.JSON200.CreatedAt.Equal(u.CreatedAt) {
			t.Errorf("updated user = %+v (was %+v)", *upd.JSON200, u)
		}
		after, _ := s.Store.GetUser(ctx, u.Id)
		if after.PasswordHash != stored.PasswordHash {
			t.Error("update without a password changed the password hash")
		}
		// Update with a password replaces it.
		upd, err = s.Client.UpdateUserWithResponse(ctx, u.Id, client.UpdateUserJSONRequestBody{Email: "ada@lovelace.org", Name: "Ada King", Password: ptr("another long password")})
		if err != nil || upd.JSON200 == nil {
			t.Fatalf("update with password: %v %d %s", err, upd.StatusCode(), upd.Body)
		}
		after, _ = s.Store.GetUser(ctx, u.Id)
		if after.PasswordHash == stored.PasswordHash {
			t.Error("update with a password kept the old hash")
		}
		ok, err := testHasher.Verify(ctx, after.PasswordHash, "another long password")
		if err != nil || !ok {
			t.Errorf("new password does not verify: %v %v", ok, err)
		}

		del, err := s.Client.DeleteUserWithResponse(ctx, u.Id)
		if err != nil {
			t.Fatal(err)
		}
		if del.StatusCode() != http.StatusNoContent || len(del.Body) != 0 {
			t.Fatalf("delete: %d %q", del.StatusCode(), del.Body)
		}
		for _, op := range []func() (int, []byte){
			func() (int, []byte) {
				r, _ := s.Client.GetUserWithResponse(ctx, u.Id, nil)
				return r.StatusCode(), r.Body
			},
			func() (int, []byte) {
				r, _ := s.Client.DeleteUserWithResponse(ctx, u.Id)
				return r.StatusCode(), r.Body
			},
			func() (int, []byte) {
				r, _ := s.Client.UpdateUserWithResponse(ctx, u.Id, client.UpdateUserJSONRequestBody{Email: "x@example.com", Name: "X"})
				return r.StatusCode(), r.Body
			},
			func() (int, []byte) {
				r, _ := s.Client.ListUserVehiclesWithResponse(ctx, u.Id, nil)
				return r.StatusCode(), r.Body
			},
		} {
			if code, body := op(); code != http.StatusNotFound {
				t.Errorf("after delete: %d %s, want 404", code, body)
			}
		}
	})
}

func TestUserEmailUniqueness(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		ctx := context.Background()
		ada := mustUser(t, s, "ada@example.com")
		bob := mustUser(t, s, "bob@example.com")

		for _, email := range []string{"ada@example.com", "ADA@EXAMPLE.COM", "Ada@Example.Com"} {
			r, err := s.Client.CreateUserWithResponse(ctx, client.CreateUserJSONRequestBody{Email: client.Email(email), Name: "Dup", Password: "correct horse battery"})
			if err != nil {
				t.Fatal(err)
			}
			if r.StatusCode() != http.StatusConflict {
				t.Fatalf("create %q: %d %s, want 409", email, r.StatusCode(), r.Body)
			}
			if diff := cmp.Diff([]string{"email"}, problemFields(*r.ApplicationproblemJSON409)); diff != "" {
				t.Errorf("409 fields: %s", diff)
			}
		}
		// Taking another user's email (in another case) is a conflict; re-casing your own is not.
		r, err := s.Client.UpdateUserWithResponse(ctx, bob.Id, client.UpdateUserJSONRequestBody{Email: "Ada@example.COM", Name: "Bob"})
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode() != http.StatusConflict {
			t.Errorf("update to a taken email: %d %s, want 409", r.StatusCode(), r.Body)
		}
		r, err = s.Client.UpdateUserWithResponse(ctx, ada.Id, client.UpdateUserJSONRequestBody{Email: "ADA@example.com", Name: "Ada"})
		if err != nil {
			t.Fatal(err)
		}
		if r.StatusCode() != http.StatusOK {
			t.Errorf("re-casing own email: %d %s, want 200", r.StatusCode(), r.Body)
		}

		// ?email= finds the one user whatever the case, and nobody for an unknown address.
		list, err := s.Client.ListUsersWithResponse(ctx, &client.ListUsersParams{Email: ptr(client.Email("ada@EXAMPLE.com"))})
		if err != nil || list.JSON200 == nil {
			t.Fatalf("list by email: %v %d %s", err, list.StatusCode(), list.Body)
		}
		if len(list.JSON200.Items) != 1 || list.JSON200.Items[0].Id != ada.Id || list.JSON200.NextCursor != nil {
			t.Errorf("list by email = %+v, want just user %d", list.JSON200, ada.Id)
		}
		list, err = s.Client.ListUsersWithResponse(ctx, &client.ListUsersParams{Email: ptr(client.Email("nobody@example.com"))})
		if err != nil || list.JSON200 == nil {
			t.Fatalf("list by unknown email: %v %d %s", err, list.StatusCode(), list.Body)
		}
		if len(list.JSON200.Items) != 0 {
			t.Errorf("list by unknown email = %+v, want no items", list.JSON200.Items)
		}
	})
}
