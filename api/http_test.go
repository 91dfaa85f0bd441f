package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/motorpool/motorpool/client"
)

// doAs sends a raw request with tok as its bearer token ("" for none, "-" for a malformed one).
func doAs(t *testing.T, s *testServer, tok, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	authz := ""
	switch tok {
	case "":
	case "-":
		authz = "Bearer not-a-token"
	default:
		authz = "Bearer " + tok
	}
	var b any
	if body != "" {
		b = rawBody(body)
	}
	resp, out, err := request(s, method, path, authz, b)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

// A caller without a valid token learns that first: 401 before any 400 about what it sent,
// and a signed-in caller who may not call the operation gets 403 before any 400.
func TestAuthorizationBeforeInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		_, member, _ := s.member(t, "member@example.com")
		cases := []struct{ method, path, body string }{
			{"GET", "/vehicles/abc", ""},
			{"GET", "/vehicles/5", ""},
			{"GET", "/vehicles?limit=0", ""},
			{"GET", "/users/1.5", ""},
			{"PUT", "/vehicles/abc", `{"make":""}`},
			{"POST", "/vehicles", `{"make":`},
			{"POST", "/vehicles", `{"make":"A"}{"x":1}`},
			{"POST", "/vehicles", "{\"make\":\"\xff\"}"},
			{"DELETE", "/users/-1", ""},
		}
		for _, tok := range []string{"", "-"} {
			for _, c := range cases {
				t.Run(tok+c.method+" "+c.path, func(t *testing.T) {
					resp, b := doAs(t, s, tok, c.method, c.path, c.body)
					if resp.StatusCode != http.StatusUnauthorized {
						t.Fatalf("%d %s, want 401", resp.StatusCode, b)
					}
					if resp.Header.Get("WWW-Authenticate") == "" {
						t.Error("401 without WWW-Authenticate")
					}
					if p := decodeProblem(t, resp, b); p.Errors != nil {
						t.Errorf("a 401 tells about the input: %s", b)
					}
				})
			}
		}
		for _, path := range []string{"/users?limit=0", "/users?limit=ten"} {
			resp, b := doAs(t, s, member, "GET", path, "")
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("member GET %s: %d %s, want 403", path, resp.StatusCode, b)
			}
		}
		// With a valid token the input's faults are what is wrong; a path that names no user
		// at all is a 400 for a member too, one that names another user a 403.
		for _, path := range []string{"/vehicles/abc", "/users/abc", "/users/0", "/users/abc/vehicles"} {
			resp, b := doAs(t, s, member, "GET", path, "")
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("member GET %s: %d %s, want 400", path, resp.StatusCode, b)
			}
			if got := problemFields(decodeProblem(t, resp, b)); len(got) != 1 || got[0] != "id" {
				t.Errorf("errors name %v, want [id]", got)
			}
		}
		if resp, b := doAs(t, s, member, "GET", "/users/"+itoa(s.Admin.Id), ""); resp.StatusCode != http.StatusForbidden {
			t.Errorf("member GET another user: %d %s, want 403", resp.StatusCode, b)
		}
	})
}

// HEAD is answered like GET without a body on every GET route (RFC 9110 §9.3.2), and a 405
// lists HEAD in Allow wherever GET is allowed.
func TestHead(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		owner, _, _ := s.member(t, "owner@example.com")
		veh := mustVehicle(t, s, owner.Id, 1)
		for _, path := range []string{
			"/users", "/users/" + itoa(owner.Id), "/users/" + itoa(owner.Id) + "/vehicles", "/vehicles",
			"/vehicles/" + itoa(veh.Id), "/vehicles/99999", "/users/abc", "/auth/me", "/auth/sessions",
			"/.well-known/jwks.json", "/healthz", "/readyz", "/openapi.json", "/openapi.yaml", "/docs/", "/metrics",
		} {
			t.Run(path, func(t *testing.T) {
				get, getBody := doAs(t, s, s.token, "GET", path, "")
				head, headBody := doAs(t, s, s.token, "HEAD", path, "")
				if head.StatusCode != get.StatusCode {
					t.Fatalf("HEAD %d, GET %d", head.StatusCode, get.StatusCode)
				}
				if len(headBody) != 0 || len(getBody) == 0 {
					t.Errorf("HEAD body %d bytes, GET body %d bytes", len(headBody), len(getBody))
				}
				for _, h := range []string{"Content-Type", "ETag", "X-Content-Type-Options"} {
					if head.Header.Get(h) != get.Header.Get(h) {
						t.Errorf("%s: HEAD %q, GET %q", h, head.Header.Get(h), get.Header.Get(h))
					}
				}
			})
		}
		// HEAD needs the token that GET needs.
		if resp, b := doAs(t, s, "", "HEAD", "/vehicles/"+itoa(veh.Id), ""); resp.StatusCode != 401 {
			t.Errorf("anonymous HEAD: %d %s, want 401", resp.StatusCode, b)
		}
		for _, c := range []struct{ method, path, allow string }{
			{"DELETE", "/users", "GET, HEAD, POST"},
			{"POST", "/vehicles/" + itoa(veh.Id), "GET, HEAD, PUT, DELETE"},
			{"HEAD", "/auth/login", "POST"},
			{"PATCH", "/healthz", "GET, HEAD"},
		} {
			resp, b := doAs(t, s, s.token, c.method, c.path, "")
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != c.allow {
				t.Errorf("%s %s: %d Allow %q, want 405 Allow %q; %s", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), c.allow, b)
			}
		}
	})
}

// Token answers are never stored by caches; no answer is content-sniffed; the docs cannot be
// framed (clickjacking).
func TestSecurityHeaders(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		ctx := context.Background()
		anon := s.clientWith(t, "")
		login, err := anon.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: adminEmail, Password: testPassword})
		if err != nil || login.JSON200 == nil {
			t.Fatalf("login: %v %s", err, login.Body)
		}
		refresh, err := anon.RefreshTokensWithResponse(ctx, client.RefreshTokensJSONRequestBody{RefreshToken: login.JSON200.RefreshToken})
		if err != nil || refresh.JSON200 == nil {
			t.Fatalf("refresh: %v %s", err, refresh.Body)
		}
		for name, h := range map[string]http.Header{"login": login.HTTPResponse.Header, "refresh": refresh.HTTPResponse.Header} {
			if got := h.Get("Cache-Control"); got != "no-store" {
				t.Errorf("%s: Cache-Control %q, want no-store", name, got)
			}
		}
		for _, path := range []string{"/users/" + itoa(s.Admin.Id), "/vehicles", "/healthz", "/openapi.json", "/docs/", "/metrics", "/nothing-here"} {
			resp, _ := doAs(t, s, s.token, "GET", path, "")
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("GET %s (%d): X-Content-Type-Options %q, want nosniff", path, resp.StatusCode, got)
			}
		}
		for _, path := range []string{"/docs/", "/docs/swagger-ui.css", "/docs"} {
			resp, _ := doAs(t, s, "", "GET", path, "")
			if got := resp.Header.Get("Content-Security-Policy"); got != "frame-ancestors 'none'" {
				t.Errorf("GET %s (%d): Content-Security-Policy %q", path, resp.StatusCode, got)
			}
			if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
				t.Errorf("GET %s (%d): X-Frame-Options %q", path, resp.StatusCode, got)
			}
		}
	})
}
