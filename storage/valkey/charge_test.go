package valkey_test

import (
	"errors"
	"testing"
	"time"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
)

// TestAuthenticateAllow: the session check and the caller's buckets go out in one round trip;
// the buckets stay charged only for a live session of the claimed role, and a charge given
// back leaves them exactly as they were, for every algorithm.
func TestAuthenticateAllow(t *testing.T) {
	for _, alg := range storage.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			ctx := t.Context()
			c := valkeytest.Open(t)
			wrapped, cnt := openCounting(t, c)
			a := valkey.NewAuthState(wrapped)
			l := valkey.NewLimiter(c, 0) // the limiter the rest of the service uses
			now := time.Now()
			s := storage.Session{ID: "s1", UserID: 7, Role: storage.RoleUser, LoginAt: now, LastActivityAt: now, ExpiresAt: now.Add(time.Hour)}
			if err := a.CreateSession(ctx, s, storage.RefreshToken{Hash: "h", ExpiresAt: s.ExpiresAt}, time.Hour); err != nil {
				t.Fatal(err)
			}
			reqs := []storage.LimitRequest{
				{Key: "rate_limit:ip:{192.0.2.7}:global", Limit: 10, Window: time.Minute, Algorithm: alg},
				{Key: "rate_limit:user:{7}:global", Limit: 10, Window: time.Minute, Algorithm: alg},
				{Key: "rate_limit:user:{7}:getUser", Limit: 3, Window: time.Minute, Algorithm: alg},
			}
			// remaining asks the limiter what the buckets hold now, with a request that is refused
			// whatever they hold (cost above what is left is not allowed: cost = limit and a
			// bucket charged at least once), so asking charges nothing.
			remaining := func() []int {
				t.Helper()
				probe := make([]storage.LimitRequest, len(reqs))
				for i, r := range reqs {
					r.Cost = r.Limit
					probe[i] = r
				}
				res, err := l.Allow(ctx, probe)
				if err != nil {
					t.Fatal(err)
				}
				out := make([]int, len(res))
				for i, r := range res {
					out[i] = r.Remaining
				}
				return out
			}
			authAllow := func(sid, jti string, role storage.Role) (storage.Session, storage.LimitCharge, error) {
				t.Helper()
				cnt.reset()
				sess, ch, err := a.AuthenticateAllow(ctx, 7, sid, jti, role, time.Now(), reqs)
				return sess, ch, err
			}

			// Load the scripts, as a running service has: a server without them takes one more
			// round trip (TestAuthenticateAllowScriptsFlushed).
			if _, err := l.Allow(ctx, []storage.LimitRequest{{Key: "warm", Limit: 1, Window: time.Second, Algorithm: alg}}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Authenticate(ctx, 7, "s1", "jti-1", time.Now()); err != nil { // warms the local cache
				t.Fatal(err)
			}

			// A live session: charged, in one round trip, with the limiter's results.
			sess, ch, err := authAllow("s1", "jti-1", storage.RoleUser)
			if err != nil || ch.Err != nil {
				t.Fatalf("AuthenticateAllow: %v, charge error %v", err, ch.Err)
			}
			if sess.ID != "s1" || sess.UserID != 7 {
				t.Errorf("session %+v, want s1 of user 7", sess)
			}
			if do, multi := cnt.do.Load(), cnt.multi.Load(); do != 0 || multi != 1 {
				t.Errorf("AuthenticateAllow: %d Do and %d DoMulti calls, want 0 and 1", do, multi)
			}
			// Identity from the local cache (warmed by the Authenticate above), the buckets in one
			// script call that valkey-go may not retry.
			if n, r := cnt.missed.Load(), cnt.retryable.Load(); n != 0 || r != 0 {
				t.Errorf("AuthenticateAllow: %d identity reads went to the server, %d retryable commands sent; want 0 and 0", n, r)
			}
			want := []int{9, 9, 2}
			if len(ch.Results) != 3 {
				t.Fatalf("results %+v, want 3", ch.Results)
			}
			for i, r := range ch.Results {
				if !r.Allowed || r.Remaining != want[i] || r.Limit != reqs[i].Limit {
					t.Errorf("result %d: %+v, want allowed, %d remaining of %d", i, r, want[i], reqs[i].Limit)
				}
			}
			if got := remaining(); got[0] != 9 || got[1] != 9 || got[2] != 2 {
				t.Fatalf("the limiter sees %v remaining, want [9 9 2]", got)
			}

			// Not the session claimed: nothing stays charged, and Authenticate's error comes back.
			for _, tc := range []struct {
				name, sid string
				role      storage.Role
				want      error
			}{
				{"no such session", "gone", storage.RoleUser, storage.ErrNotFound},
				{"another role", "s1", storage.RoleAdmin, nil},
			} {
				sess, ch, err := authAllow(tc.sid, "jti-1", tc.role)
				if !errors.Is(err, tc.want) || tc.want == nil && err != nil {
					t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
				}
				if ch.Results != nil || ch.Err != nil {
					t.Errorf("%s: charge %+v, want none", tc.name, ch)
				}
				if tc.want == nil && sess.Role != storage.RoleUser {
					t.Errorf("%s: session role %q, want the session's own (user)", tc.name, sess.Role)
				}
				if got := remaining(); got[0] != 9 || got[1] != 9 || got[2] != 2 {
					t.Errorf("%s: the limiter sees %v remaining, want [9 9 2]: the charge was not given back", tc.name, got)
				}
			}

			// A bucket that refuses: the session is fine, nothing is charged, the refusal says why.
			for range 2 {
				if _, ch, err := authAllow("s1", "jti-1", storage.RoleUser); err != nil || ch.Err != nil || !ch.Results[2].Allowed {
					t.Fatalf("charging: %v %+v", err, ch)
				}
			}
			_, ch, err = authAllow("s1", "jti-1", storage.RoleUser)
			if err != nil || ch.Err != nil {
				t.Fatalf("AuthenticateAllow: %v, %v", err, ch.Err)
			}
			if ch.Results[2].Allowed || ch.Results[2].RetryAfter <= 0 {
				t.Errorf("the empty bucket: %+v, want refused with a wait", ch.Results[2])
			}
			if got := remaining(); got[0] != 7 || got[1] != 7 || got[2] != 0 {
				t.Errorf("after a refusal the limiter sees %v remaining, want [7 7 0]", got)
			}

			// Logged out: the token is denied, nothing is charged.
			if err := a.EndSession(ctx, 7, "s1", "jti-1", time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, ch, err := authAllow("s1", "jti-1", storage.RoleUser); !errors.Is(err, storage.ErrTokenDenied) || ch.Results != nil || ch.Err != nil {
				t.Errorf("denied token: error %v, charge %+v; want ErrTokenDenied and none", err, ch)
			}
			if got := remaining(); got[0] != 7 || got[1] != 7 {
				t.Errorf("after a denied token the limiter sees %v remaining, want [7 7 ...]", got)
			}
		})
	}
}

// TestAuthenticateAllowScriptsFlushed: after the server loses its scripts, both halves still
// run, once each.
func TestAuthenticateAllowScriptsFlushed(t *testing.T) {
	ctx := t.Context()
	c := valkeytest.Open(t)
	a := valkey.NewAuthState(c)
	now := time.Now()
	s := storage.Session{ID: "s", UserID: 1, Role: storage.RoleAdmin, LoginAt: now, LastActivityAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := a.CreateSession(ctx, s, storage.RefreshToken{Hash: "h", ExpiresAt: s.ExpiresAt}, time.Hour); err != nil {
		t.Fatal(err)
	}
	vk := c.Valkey()
	reqs := []storage.LimitRequest{{Key: "rate_limit:user:{1}:global", Limit: 5, Window: time.Minute}}
	for i := range 2 {
		if err := vk.Do(ctx, vk.B().ScriptFlush().Build()).Error(); err != nil {
			t.Fatalf("SCRIPT FLUSH: %v", err)
		}
		_, ch, err := a.AuthenticateAllow(ctx, 1, "s", "jti", storage.RoleAdmin, time.Now(), reqs)
		if err != nil || ch.Err != nil {
			t.Fatalf("after SCRIPT FLUSH: %v, %v", err, ch.Err)
		}
		if r := ch.Results[0]; !r.Allowed || r.Remaining != 4-i {
			t.Errorf("call %d: %+v, want allowed with %d remaining (charged once per call)", i+1, r, 4-i)
		}
	}
}

// TestAuthenticateAllowUnavailable: with the server gone, both halves fail, quickly.
func TestAuthenticateAllowUnavailable(t *testing.T) {
	c := valkeytest.Open(t)
	p := newProxy(t, testAddr())
	a := valkey.NewAuthState(openAlso(t, c, p.addr(), valkey.Config{CommandTimeout: 200 * time.Millisecond}))
	reqs := []storage.LimitRequest{{Key: "rate_limit:user:{1}:global", Limit: 5, Window: time.Minute}}
	if _, _, err := a.AuthenticateAllow(t.Context(), 1, "s", "jti", storage.RoleUser, time.Now(), reqs); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("through the proxy: %v, want ErrNotFound (no session)", err)
	}
	p.stopAnswering()
	start := time.Now()
	// Another session: "s" is known absent locally (a negative answer the local cache may keep
	// for its TTL while the server is silent, which refuses nothing it should not).
	_, ch, err := a.AuthenticateAllow(t.Context(), 1, "s2", "jti2", storage.RoleUser, time.Now(), reqs)
	if err == nil || errors.Is(err, storage.ErrNotFound) || ch.Results != nil {
		t.Errorf("server not answering: error %v, charge %+v; want the session check to fail, nothing charged", err, ch)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v to fail, want about the 200ms command timeout", d)
	}
}
