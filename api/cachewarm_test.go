package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/motorpool/motorpool/client"
)

// CACHE_WARM: after Warm, the first page of each list and the records on them are answered
// from the cache on their very first request.
func TestCacheWarm(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		var users []client.User
		var vehicles []client.Vehicle
		for i := range 3 {
			u := mustUser(t, s, "warm"+itoa(int64(i))+"@example.com")
			users = append(users, u)
			vehicles = append(vehicles, mustVehicle(t, s, u.Id, i+1))
		}
		n, err := s.Cached.Warm(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// Two list pages, four users (with the admin), three vehicles.
		if n != 2+4+3 {
			t.Errorf("Warm stored %d entries, want 9", n)
		}
		paths := []string{"/users", "/vehicles", "/users/" + itoa(s.Admin.Id)}
		for _, u := range users {
			paths = append(paths, "/users/"+itoa(u.Id))
		}
		for _, v := range vehicles {
			paths = append(paths, "/vehicles/"+itoa(v.Id))
		}
		for _, p := range paths {
			resp, body := s.mustSend(t, http.StatusOK, "GET", p, nil)
			if got := resp.Header.Get("X-Cache"); got != "hit" {
				t.Errorf("first GET %s after warming: X-Cache %q, want hit; %s", p, got, body)
			}
		}
	})
}
