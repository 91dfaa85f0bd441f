package api_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	valkeygo "github.com/valkey-io/valkey-go"
)

// DoCache and DoMultiCache count as a round trip only when the server was asked: a result
// served from the client-side cache costs none.
func (c roundTrips) DoCache(ctx context.Context, cmd valkeygo.Cacheable, ttl time.Duration) valkeygo.ValkeyResult {
	r := c.Client.DoCache(ctx, cmd, ttl)
	if !r.IsCacheHit() {
		c.n.Add(1)
	}
	return r
}

func (c roundTrips) DoMultiCache(ctx context.Context, multi ...valkeygo.CacheableTTL) []valkeygo.ValkeyResult {
	res := c.Client.DoMultiCache(ctx, multi...)
	for _, r := range res {
		if !r.IsCacheHit() {
			c.n.Add(1)
			break
		}
	}
	return res
}

// TestIdentityWarmNoRoundTrip: on the production pairing, with the limiter off, a warm signed-in
// request makes no Valkey round trip for identity (the session and the token's denylist entry
// come from the client-side cache, and no touch is due), and a logout on this instance refuses
// the token at once.
func TestIdentityWarmNoRoundTrip(t *testing.T) {
	t.Parallel()
	be, rtt := countedBackend(t)
	s := newTestServer(t, be)
	u, tok, _ := s.member(t, "warm@example.com")
	self := fmt.Sprintf("/users/%d", u.Id)
	if resp, body := rlReq(t, s, "GET", self, tok, "", nil); resp.StatusCode != http.StatusOK { // cold
		t.Fatalf("GET %s: %d %s", self, resp.StatusCode, body)
	}
	before := rtt.Load()
	for range 20 {
		if resp, body := rlReq(t, s, "GET", self, tok, "", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", self, resp.StatusCode, body)
		}
	}
	if n := rtt.Load() - before; n != 0 {
		t.Errorf("20 warm signed-in GET %s took %d Valkey round trips, want 0", self, n)
	}
	if resp, body := rlReq(t, s, "POST", "/auth/logout", tok, "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	if resp, body := rlReq(t, s, "GET", self, tok, "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET %s right after logout: %d %s, want 401", self, resp.StatusCode, body)
	}
}
