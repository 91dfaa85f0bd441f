package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/client"
)

// operations lists every operation of openapi.yaml as "METHOD /path" with whether it needs a
// token.
func operations(t testing.TB) map[string]bool {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			secured := len(doc.Security) > 0
			if op.Security != nil {
				secured = len(*op.Security) > 0
			}
			ops[method+" "+path] = secured
		}
	}
	return ops
}

// TestAuthzNoToken: every operation the contract secures answers 401 with a Bearer challenge
// without a token, and with a garbage one; every public operation works without a token and
// with a garbage one alike.
func TestAuthzNoToken(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		ops := operations(t)
		pathOf := func(p string) string {
			return strings.NewReplacer("{id}", itoa(s.Admin.Id), "{sid}", "some-session").Replace(p)
		}

		t.Run("secured", func(t *testing.T) {
			n := 0
			for op, secured := range ops {
				if !secured {
					continue
				}
				n++
				method, path, _ := strings.Cut(op, " ")
				var body any
				if method == http.MethodPost || method == http.MethodPut {
					body = map[string]any{} // who may call is decided before what was sent
				}
				for _, authz := range []string{"", "Bearer garbage"} {
					resp, b := send(t, s, method, pathOf(path), authz, body)
					if resp.StatusCode != http.StatusUnauthorized {
						t.Errorf("%s with Authorization %q: %d, want 401; %s", op, authz, resp.StatusCode, b)
						continue
					}
					decodeProblem(t, resp, b)
					www := resp.Header.Get("WWW-Authenticate")
					if !strings.HasPrefix(www, "Bearer ") {
						t.Errorf("%s: WWW-Authenticate = %q, want a Bearer challenge", op, www)
					}
					// RFC 6750 §3.1: no error code when no token was sent.
					if hasErr := strings.Contains(www, `error="invalid_token"`); hasErr != (authz != "") {
						t.Errorf("%s with Authorization %q: WWW-Authenticate = %q", op, authz, www)
					}
				}
			}
			if n < 15 {
				t.Errorf("only %d secured operations in openapi.yaml", n)
			}
		})

		t.Run("public", func(t *testing.T) {
			n := 0
			public := []struct {
				op   string
				want int
				body func() any
			}{
				{"POST /users", http.StatusCreated, func() any {
					n++
					return client.CreateUserJSONRequestBody{Email: client.Email("public" + itoa(int64(n)) + "@example.com"), Name: "P", Password: testPassword}
				}},
				{"POST /auth/login", http.StatusOK, func() any { return client.LoginJSONRequestBody{Email: adminEmail, Password: testPassword} }},
				{"POST /auth/refresh", http.StatusOK, func() any {
					return client.RefreshTokensJSONRequestBody{RefreshToken: s.login(t, adminEmail, testPassword).RefreshToken}
				}},
				{"POST /auth/password-reset", http.StatusAccepted, func() any { return client.RequestPasswordResetJSONRequestBody{Email: "nobody@example.com"} }},
				// A bad reset token is a 400, not a 401: the operation needs no bearer token.
				{"POST /auth/password-reset/confirm", http.StatusBadRequest, func() any {
					return client.ConfirmPasswordResetJSONRequestBody{Token: "bogus", NewPassword: "some long passphrase"}
				}},
				{"GET /.well-known/jwks.json", http.StatusOK, nil},
				{"GET /healthz", http.StatusOK, nil},
				{"GET /readyz", http.StatusOK, nil},
			}
			var inSpec, inTable []string
			for op, secured := range ops {
				if !secured {
					inSpec = append(inSpec, op)
				}
			}
			for _, p := range public {
				inTable = append(inTable, p.op)
			}
			slices.Sort(inSpec)
			slices.Sort(inTable)
			if diff := cmp.Diff(inSpec, inTable); diff != "" {
				t.Errorf("public operations: openapi.yaml (-) and this test (+) disagree:\n%s", diff)
			}
			for _, p := range public {
				method, path, _ := strings.Cut(p.op, " ")
				for _, authz := range []string{"", "Bearer garbage", "Basic xyz"} {
					var body any
					if p.body != nil {
						body = p.body()
					}
					if resp, b := send(t, s, method, path, authz, body); resp.StatusCode != p.want {
						t.Errorf("%s with Authorization %q: %d, want %d; %s", p.op, authz, resp.StatusCode, p.want, b)
					}
				}
			}
		})
	})
}

// TestAuthzRules checks every authorization rule with two ordinary users, A and B, and the
// admin: B can never read, change or delete A, never change or delete A's vehicles, and
// cannot make themself admin; the admin can do all of it.
func TestAuthzRules(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		a, aTok, _ := s.member(t, "a@example.com")
		b, bTok, _ := s.member(t, "b@example.com")
		vA := mustVehicle(t, s, a.Id, 1)
		A, B, admin := bearer(aTok), bearer(bTok), bearer(s.token)
		vehicle := func(n int, owner *int64) client.CreateVehicleJSONRequestBody {
			return client.CreateVehicleJSONRequestBody{UserId: owner, Make: "Fiat", Model: "Panda", Year: 2020, Vin: vin(n), LicensePlate: "P-1"}
		}
		update := func(v client.Vehicle, owner *int64) client.UpdateVehicleJSONRequestBody {
			return client.UpdateVehicleJSONRequestBody{UserId: owner, Make: v.Make, Model: "Changed", Year: v.Year, Vin: v.Vin, LicensePlate: v.LicensePlate}
		}
		userPut := func(u client.User, role *client.Role) client.UpdateUserJSONRequestBody {
			return client.UpdateUserJSONRequestBody{Email: u.Email, Name: "Changed", Role: role}
		}
		uA, uB, vpath := "/users/"+itoa(a.Id), "/users/"+itoa(b.Id), "/vehicles/"+itoa(vA.Id)

		// B's own vehicle, made without naming an owner: B owns it.
		resp, body := send(t, s, http.MethodPost, "/vehicles", B, vehicle(2, nil))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("B creates a vehicle: %d %s", resp.StatusCode, body)
		}
		vB := decodeAs[client.Vehicle](t, body)
		if vB.UserId != b.Id {
			t.Errorf("B's vehicle belongs to %d, want B (%d)", vB.UserId, b.Id)
		}
		vBpath := "/vehicles/" + itoa(vB.Id)

		tests := []struct {
			name         string
			authz        string
			method, path string
			body         any
			want         int
		}{
			// B against A.
			{"B reads A", B, "GET", uA, nil, 403},
			{"B updates A", B, "PUT", uA, userPut(a, nil), 403},
			{"B deletes A", B, "DELETE", uA, nil, 403},
			{"B ends A's sessions", B, "DELETE", uA + "/sessions", nil, 403},
			{"B lists users", B, "GET", "/users", nil, 403},
			{"B finds A by email", B, "GET", "/users?email=a@example.com", nil, 403},
			{"B reads A's vehicle", B, "GET", vpath, nil, 200},
			{"B lists A's vehicles", B, "GET", uA + "/vehicles", nil, 200},
			{"B lists all vehicles", B, "GET", "/vehicles", nil, 200},
			{"B filters vehicles by A", B, "GET", "/vehicles?userId=" + itoa(a.Id), nil, 200},
			{"B updates A's vehicle", B, "PUT", vpath, update(vA, nil), 403},
			{"B takes A's vehicle", B, "PUT", vpath, update(vA, &b.Id), 403},
			{"B deletes A's vehicle", B, "DELETE", vpath, nil, 403},
			{"B creates a vehicle for A", B, "POST", "/vehicles", vehicle(3, &a.Id), 403},
			{"B gives their vehicle to A", B, "PUT", vBpath, update(vB, &a.Id), 403},
			{"B makes themself admin", B, "PUT", uB, userPut(b, ptr(client.RoleAdmin)), 403},
			{"B ends their own sessions (admin only)", B, "DELETE", uB + "/sessions", nil, 403},
			// B on their own things.
			{"B reads themself", B, "GET", uB, nil, 200},
			{"B names their own role", B, "PUT", uB, userPut(b, ptr(client.RoleUser)), 200},
			{"B creates a vehicle naming themself", B, "POST", "/vehicles", vehicle(4, &b.Id), 201},
			{"B updates their vehicle", B, "PUT", vBpath, update(vB, nil), 200},
			{"B updates their vehicle naming themself", B, "PUT", vBpath, update(vB, &b.Id), 200},
			// A is still untouched and can do the same to B's things only as B could to A's.
			{"A reads B", A, "GET", uB, nil, 403},
			{"A deletes B's vehicle", A, "DELETE", vBpath, nil, 403},
			// The admin may do all of it.
			{"admin reads A", admin, "GET", uA, nil, 200},
			{"admin lists users", admin, "GET", "/users", nil, 200},
			{"admin finds A by email", admin, "GET", "/users?email=a@example.com", nil, 200},
			{"admin updates A", admin, "PUT", uA, userPut(a, nil), 200},
			{"admin updates A's vehicle", admin, "PUT", vpath, update(vA, nil), 200},
			{"admin creates a vehicle for A", admin, "POST", "/vehicles", vehicle(5, &a.Id), 201},
			{"admin moves B's vehicle to A", admin, "PUT", vBpath, update(vB, &a.Id), 200},
			{"admin deletes what was B's vehicle", admin, "DELETE", vBpath, nil, 204},
			{"admin creates a vehicle for a missing user", admin, "POST", "/vehicles", vehicle(6, ptr(int64(1<<40))), 422},
		}
		for _, tt := range tests {
			resp, body := send(t, s, tt.method, tt.path, tt.authz, tt.body)
			if resp.StatusCode != tt.want {
				t.Errorf("%s: %s %s = %d, want %d; %s", tt.name, tt.method, tt.path, resp.StatusCode, tt.want, body)
			}
		}

		// The refusals changed nothing: A still has A's vehicle (as the admin updated it).
		got := decodeAs[client.Vehicle](t, expect(t, s, http.StatusOK, "GET", vpath, admin, nil))
		if got.UserId != a.Id || got.Model != "Changed" {
			t.Errorf("A's vehicle after the refusals: %+v", got)
		}
		// Naming one's own role was a no-op that kept the session; refusals end no session.
		wantAlive(t, s, "B after the no-op role", bTok)
		wantAlive(t, s, "A after the admin updated A without a password or role", aTok)
		var me client.Me
		getJSON(t, s, "/auth/me", bTok, &me)
		if me.User.Role != client.RoleUser {
			t.Errorf("B's role: %+v", me.User)
		}

		t.Run("last admin", func(t *testing.T) {
			resp, body := send(t, s, "PUT", "/users/"+itoa(s.Admin.Id), admin, userPut(s.Admin, ptr(client.RoleUser)))
			if resp.StatusCode != http.StatusConflict {
				t.Fatalf("demote the last admin: %d %s", resp.StatusCode, body)
			}
			if diff := cmp.Diff([]string{"role"}, problemFields(decodeProblem(t, resp, body))); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			expect(t, s, http.StatusConflict, "DELETE", "/users/"+itoa(s.Admin.Id), admin, nil)
			wantAlive(t, s, "the last admin after the refused demotion", s.token)
			var u client.User
			getJSON(t, s, "/users/"+itoa(s.Admin.Id), s.token, &u)
			if u.Role != client.RoleAdmin {
				t.Errorf("the last admin after the refusals: %+v", u)
			}
		})

		t.Run("role change ends sessions", func(t *testing.T) {
			expect(t, s, http.StatusOK, "PUT", uB, admin, userPut(b, ptr(client.RoleAdmin)))
			wantDead(t, s, "B's token from before the promotion", bTok)
			newB := s.login(t, "b@example.com", testPassword).AccessToken
			var me client.Me
			getJSON(t, s, "/auth/me", newB, &me)
			if me.User.Role != client.RoleAdmin {
				t.Fatalf("B after promotion: %+v", me.User)
			}
			expect(t, s, http.StatusOK, "GET", uA, bearer(newB), nil) // now B may
			// With two admins, one can be demoted; that ends B's sessions again.
			expect(t, s, http.StatusOK, "PUT", uB, admin, userPut(b, ptr(client.RoleUser)))
			wantDead(t, s, "B's admin token after the demotion", newB)
			bTok = s.login(t, "b@example.com", testPassword).AccessToken
			expect(t, s, http.StatusForbidden, "GET", uA, bearer(bTok), nil)
		})

		t.Run("password change ends sessions", func(t *testing.T) {
			other := s.login(t, "b@example.com", testPassword).AccessToken
			body := client.UpdateUserJSONRequestBody{Email: b.Email, Name: "B", Password: ptr("b's new passphrase")}
			expect(t, s, http.StatusOK, "PUT", uB, bearer(bTok), body)
			wantDead(t, s, "the session that changed the password", bTok)
			wantDead(t, s, "B's other session", other)
			if resp, _ := loginRaw(t, s, "b@example.com", testPassword); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("B's old password: %d, want 401", resp.StatusCode)
			}
			bTok = s.login(t, "b@example.com", "b's new passphrase").AccessToken
		})

		t.Run("deleting a user ends their sessions", func(t *testing.T) {
			expect(t, s, http.StatusNoContent, "DELETE", uA, admin, nil)
			wantDead(t, s, "A after deletion", aTok)
			if code, _, _ := refreshRaw(s, s.login(t, "b@example.com", "b's new passphrase").RefreshToken); code != http.StatusOK {
				t.Errorf("B unaffected by A's deletion: refresh %d", code)
			}
			// A user may delete themself, which ends their own sessions too.
			expect(t, s, http.StatusNoContent, "DELETE", uB, bearer(bTok), nil)
			wantDead(t, s, "B after deleting themself", bTok)
			if resp, _ := loginRaw(t, s, "b@example.com", "b's new passphrase"); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("deleted B logs in: %d", resp.StatusCode)
			}
		})
	})
}

// TestAuthzAdminEndsSessions: DELETE /users/{id}/sessions is for admins, and ends every
// session of the user at once.
func TestAuthzAdminEndsSessions(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		a, aTok, _ := s.member(t, "a@example.com")
		aTok2 := s.login(t, "a@example.com", testPassword).AccessToken
		_, bTok, _ := s.member(t, "b@example.com")

		expect(t, s, http.StatusForbidden, "DELETE", "/users/"+itoa(a.Id)+"/sessions", bearer(bTok), nil)
		expect(t, s, http.StatusForbidden, "DELETE", "/users/"+itoa(a.Id)+"/sessions", bearer(aTok), nil)
		wantAlive(t, s, "A after refused attempts", aTok)

		expect(t, s, http.StatusNoContent, "DELETE", "/users/"+itoa(a.Id)+"/sessions", bearer(s.token), nil)
		wantDead(t, s, "A's first session", aTok)
		wantDead(t, s, "A's second session", aTok2)
		wantAlive(t, s, "B", bTok)
		wantAlive(t, s, "the admin", s.token)
		expect(t, s, http.StatusNotFound, "DELETE", "/users/999999/sessions", bearer(s.token), nil)
		if !strings.Contains(s.Logs.String(), `"event":"sessions_terminated"`) {
			t.Error("ending a user's sessions was not logged")
		}
	})
}
