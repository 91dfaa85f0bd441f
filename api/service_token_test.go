package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/motorpool/motorpool/client"
	"github.com/motorpool/motorpool/token"
)

// Logging out a service token revokes it: the same token is refused from then on, with rate
// limiting (whose path checks tokens its own way) on or off; another service token keeps
// working.
func TestServiceTokenLogout(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		for name, opts := range map[string][]serverOption{"unlimited": nil, "rate limited": {withRateLimit(nil)}} {
			t.Run(name, func(t *testing.T) {
				s := newTestServer(t, newBackend(t), opts...)
				ctx := context.Background()
				issue := func(name string) *clientOf {
					t.Helper()
					tok, _, err := s.Issuer.Issue(0, "service:"+name, token.RoleService, token.Access, time.Time{})
					if err != nil {
						t.Fatal(err)
					}
					return &clientOf{s.clientWith(t, tok)}
				}
				svc, other := issue("reporting"), issue("billing")
				if code := svc.vehicles(t); code != http.StatusOK {
					t.Fatalf("GET /vehicles with a service token: %d", code)
				}
				if r, err := svc.LogoutWithResponse(ctx); err != nil || r.StatusCode() != http.StatusNoContent {
					t.Fatalf("POST /auth/logout with a service token: %v %d %s", err, r.StatusCode(), r.Body)
				}
				if code := svc.vehicles(t); code != http.StatusUnauthorized {
					t.Errorf("GET /vehicles with a logged-out service token: %d, want 401", code)
				}
				if r, err := svc.LogoutWithResponse(ctx); err != nil || r.StatusCode() != http.StatusUnauthorized {
					t.Errorf("POST /auth/logout again: %v %d, want 401", err, r.StatusCode())
				}
				if code := other.vehicles(t); code != http.StatusOK {
					t.Errorf("GET /vehicles with another service token: %d, want 200", code)
				}
			})
		}
	})
}

type clientOf struct{ *client.ClientWithResponses }

func (c *clientOf) vehicles(t *testing.T) int {
	t.Helper()
	r, err := c.ListVehiclesWithResponse(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.StatusCode()
}
