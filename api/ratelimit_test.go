package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/memory"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
	"github.com/motorpool/motorpool/token"
)

// loopback is the proxy the rate-limit tests trust, so that each test subject can be given an
// address of its own with X-Forwarded-For (newTestServer's own login and /auth/me come from
// 127.0.0.1 and have already counted there).
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// rlReq sends a request with the bearer token tok ("" for a guest) and, unless xff is empty,
// an X-Forwarded-For header, through s.HTTP (so every answer, 429s included, is checked
// against openapi.yaml). body, when not nil, is sent as JSON. hdr adds headers.
func rlReq(t testing.TB, s *testServer, method, path, tok, xff string, body any, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	if xff != "" {
		hdr = append([]string{"X-Forwarded-For", xff}, hdr...)
	}
	resp, b, err := s.sendE(tok, method, path, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, b
}

// rlUser creates a user of role directly in the store and signs them in through the auth
// service, so that no request counts against any bucket on the way.
func rlUser(t testing.TB, s *testServer, email string, role storage.Role) (int64, string) {
	t.Helper()
	ctx := context.Background()
	hash, err := testHasher.Hash(ctx, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Store.CreateUser(ctx, storage.NewUser{Email: email, Name: "Limited User", Role: role, PasswordHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := s.Auth.Login(ctx, email, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID, pair.AccessToken
}

// rlCount sends the same request up to max times and returns how many were answered before
// the first 429, and that 429 (nil when none came).
func rlCount(t testing.TB, max int, send func() (*http.Response, []byte)) (int, *http.Response, []byte) {
	t.Helper()
	for i := range max {
		resp, body := send()
		if resp.StatusCode == http.StatusTooManyRequests {
			return i, resp, body
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("request %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	return max, nil, nil
}

// policy is one RateLimit-Policy item.
type policy struct {
	name   string
	q, w   int
	remain int // from the RateLimit field, for the one it names
}

var (
	policyRE    = regexp.MustCompile(`^"([^"]+)";q=(\d+);w=(\d+)$`)
	rateLimitRE = regexp.MustCompile(`^"([^"]+)";r=(\d+);t=(\d+)$`)
)

// rlHeaders checks the rate-limit headers of a limited response and returns its policies, in
// order, and the one RateLimit names.
func rlHeaders(t testing.TB, resp *http.Response) ([]policy, policy) {
	t.Helper()
	h := resp.Header
	what := fmt.Sprintf("%s %s → %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode)
	num := func(name string) int64 {
		t.Helper()
		v, err := strconv.ParseInt(h.Get(name), 10, 64)
		if err != nil {
			t.Fatalf("%s: %s = %q, want an integer", what, name, h.Get(name))
		}
		return v
	}
	limit, remaining, reset := num("X-RateLimit-Limit"), num("X-RateLimit-Remaining"), num("X-RateLimit-Reset")
	if now := time.Now().Unix(); reset < now || reset > now+24*3600 {
		t.Errorf("%s: X-RateLimit-Reset %d is not a Unix time in seconds from now (%d)", what, reset, now)
	}
	if remaining < 0 || remaining >= limit {
		t.Errorf("%s: X-RateLimit-Remaining %d not within 0..%d", what, remaining, limit-1)
	}
	var ps []policy
	for _, item := range strings.Split(h.Get("RateLimit-Policy"), ", ") {
		m := policyRE.FindStringSubmatch(item)
		if m == nil {
			t.Fatalf("%s: RateLimit-Policy item %q is not \"name\";q=N;w=S (header %q)", what, item, h.Get("RateLimit-Policy"))
		}
		q, _ := strconv.Atoi(m[2])
		w, _ := strconv.Atoi(m[3])
		ps = append(ps, policy{name: m[1], q: q, w: w})
	}
	m := rateLimitRE.FindStringSubmatch(h.Get("RateLimit"))
	if m == nil {
		t.Fatalf("%s: RateLimit = %q, want \"name\";r=N;t=S", what, h.Get("RateLimit"))
	}
	var named policy
	for _, p := range ps {
		if p.name == m[1] {
			named = p
		}
	}
	if named.name == "" {
		t.Fatalf("%s: RateLimit names %q, which RateLimit-Policy (%q) does not list", what, m[1], h.Get("RateLimit-Policy"))
	}
	named.remain, _ = strconv.Atoi(m[2])
	if int64(named.q) != limit || int64(named.remain) != remaining {
		t.Errorf("%s: RateLimit %q (q=%d) disagrees with X-RateLimit-Limit %d, -Remaining %d", what, h.Get("RateLimit"), named.q, limit, remaining)
	}
	if tt, _ := strconv.ParseInt(m[3], 10, 64); tt < 0 || tt > int64(named.w)+1 {
		t.Errorf("%s: RateLimit t=%d outside 0..w (%d)", what, tt, named.w)
	}
	return ps, named
}

// rlNoHeaders fails unless resp carries none of the rate-limit headers.
func rlNoHeaders(t testing.TB, resp *http.Response) {
	t.Helper()
	for _, name := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit", "Retry-After"} {
		if v := resp.Header.Get(name); v != "" {
			t.Errorf("%s %s → %d carries %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, name, v)
		}
	}
}

// rl429 checks a 429: problem+json naming rule in its detail (any rule when ""), and an integer Retry-After of
// at least one second, which it returns.
func rl429(t testing.TB, resp *http.Response, body []byte, rule string) int {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%s %s: %d %s, want 429", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, body)
	}
	p := decodeProblem(t, resp, body)
	if p.Detail == nil || rule != "" && !strings.Contains(*p.Detail, strconv.Quote(rule)) {
		t.Errorf("429 detail %v does not name the rule %q", p.Detail, rule)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds ≥ 1", resp.Header.Get("Retry-After"))
	}
	rlHeaders(t, resp)
	return ra
}

func policyNames(ps []policy) []string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s;q=%d;w=%d", p.name, p.q, p.w))
	}
	return out
}

// metricValue reads one sample from /metrics (0 when absent) and whether it was there.
func metricValue(t testing.TB, s *testServer, sample string) (float64, bool) {
	t.Helper()
	_, body := rlReq(t, s, "GET", "/metrics", "", "", nil)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", sample, line)
			}
			return f, true
		}
	}
	return 0, false
}

// valkeyHas reports whether the production pairing's Valkey holds the limiter key (under the
// test's prefix).
func valkeyHas(t testing.TB, vc *valkey.Client, key string) bool {
	t.Helper()
	n, err := vc.Valkey().Do(context.Background(), vc.Valkey().B().Exists().Key(vc.Key(key)).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// Every limited response carries X-RateLimit-* for the rule with the least remaining,
// RateLimit-Policy listing each rule that counted and RateLimit naming the least one, whatever
// its status; health, metrics, docs, JWKS and the spec carry none.
func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, nb func(testing.TB) backend) {
		s := newTestServer(t, nb(t), withRateLimit(nil))
		id, tok := rlUser(t, s, "limited@example.com", storage.RoleUser)
		self := fmt.Sprintf("/users/%d", id)

		// A fresh getUser bucket (60) has less left than the global ones (100): it is named.
		resp, body := rlReq(t, s, "GET", self, tok, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", self, resp.StatusCode, body)
		}
		ps, named := rlHeaders(t, resp)
		want := []string{"global-per-IP;q=100;w=60", "global-per-user;q=100;w=60", "getUser;q=60;w=60"}
		if got := policyNames(ps); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("RateLimit-Policy %v, want %v", got, want)
		}
		if named.name != "getUser" || named.remain != 59 || resp.Header.Get("X-RateLimit-Limit") != "60" || resp.Header.Get("X-RateLimit-Remaining") != "59" {
			t.Errorf("RateLimit %q, X-RateLimit-Limit %s, -Remaining %s; want getUser, 60, 59",
				resp.Header.Get("RateLimit"), resp.Header.Get("X-RateLimit-Limit"), resp.Header.Get("X-RateLimit-Remaining"))
		}
		if r2, _ := rlReq(t, s, "GET", self, tok, "", nil); r2.Header.Get("X-RateLimit-Remaining") != "58" {
			t.Errorf("second request: X-RateLimit-Remaining %s, want 58", r2.Header.Get("X-RateLimit-Remaining"))
		}
		etag := resp.Header.Get("ETag")

		for _, c := range []struct {
			name, method, path, tok string
			hdr                     []string
			status                  int
			rules                   []string
		}{
			{"304", "GET", self, tok, []string{"If-None-Match", etag}, http.StatusNotModified, []string{"global-per-IP", "global-per-user", "getUser"}},
			{"400", "GET", "/users/abc", tok, nil, http.StatusBadRequest, []string{"global-per-IP", "global-per-user", "getUser"}},
			{"401", "GET", "/users", "", nil, http.StatusUnauthorized, []string{"global-per-IP", "listUsers"}},
			{"401 bad token", "GET", "/vehicles", "not.a.token", nil, http.StatusUnauthorized, []string{"global-per-IP", "listVehicles"}},
			{"403", "GET", fmt.Sprintf("/users/%d", s.Admin.Id), tok, nil, http.StatusForbidden, []string{"global-per-IP", "global-per-user", "getUser"}},
			{"404", "GET", "/nowhere", tok, nil, http.StatusNotFound, []string{"global-per-IP", "global-per-user"}},
			{"404 record", "GET", "/vehicles/999999", tok, nil, http.StatusNotFound, []string{"global-per-IP", "global-per-user", "getVehicle"}},
			{"405", "PATCH", "/users", tok, nil, http.StatusMethodNotAllowed, []string{"global-per-IP", "global-per-user"}},
			{"415", "POST", "/vehicles", tok, []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType, []string{"global-per-IP", "global-per-user", "createVehicle"}},
			{"default rule", "GET", "/auth/me", tok, nil, http.StatusOK, []string{"global-per-IP", "global-per-user", "getMe"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				var resp *http.Response
				var body []byte
				if c.hdr != nil && c.hdr[0] == "Content-Type" {
					// A body that is not JSON: send it raw.
					req, _ := http.NewRequest(c.method, s.URL+c.path, strings.NewReader("hello"))
					req.Header.Set("Content-Type", c.hdr[1])
					req.Header.Set("Authorization", "Bearer "+c.tok)
					r, err := s.HTTP.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					r.Body.Close()
					resp = r
				} else {
					resp, body = rlReq(t, s, c.method, c.path, c.tok, "", nil, c.hdr...)
				}
				if resp.StatusCode != c.status {
					t.Fatalf("%d %s, want %d", resp.StatusCode, body, c.status)
				}
				ps, _ := rlHeaders(t, resp)
				var names []string
				for _, p := range ps {
					names = append(names, p.name)
				}
				if strings.Join(names, " ") != strings.Join(c.rules, " ") {
					t.Errorf("RateLimit-Policy names %v, want %v", names, c.rules)
				}
			})
		}

		// 429s carry them too: deleteUser allows a user 3 a minute.
		other := fmt.Sprintf("/users/%d", s.Admin.Id)
		for i := range 3 {
			if r, b := rlReq(t, s, "DELETE", other, tok, "", nil); r.StatusCode != http.StatusForbidden {
				t.Fatalf("DELETE %d: %d %s, want 403", i+1, r.StatusCode, b)
			} else {
				rlHeaders(t, r)
			}
		}
		resp, body = rlReq(t, s, "DELETE", other, tok, "", nil)
		rl429(t, resp, body, "deleteUser")
		if _, named := rlHeaders(t, resp); named.name != "deleteUser" || named.remain != 0 {
			t.Errorf("429: RateLimit %q, want deleteUser with r=0", resp.Header.Get("RateLimit"))
		}

		for _, path := range []string{"/healthz", "/readyz", "/metrics", "/docs/", "/docs", "/.well-known/jwks.json", "/openapi.json", "/openapi.yaml"} {
			for _, who := range []string{"", tok} {
				resp, body := rlReq(t, s, "GET", path, who, "", nil)
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
				}
				rlNoHeaders(t, resp)
			}
		}

		if vc := s.Backend.valkey; vc != nil {
			for _, key := range []string{
				fmt.Sprintf("rate_limit:user:{%d}:getUser", id),
				fmt.Sprintf("rate_limit:user:{%d}:global", id),
				fmt.Sprintf("rate_limit:user:{%d}:deleteUser", id),
				"rate_limit:ip:{127.0.0.1}:global",
				"rate_limit:ip:{127.0.0.1}:listUsers",
			} {
				if !valkeyHas(t, vc, key) {
					t.Errorf("Valkey has no key %s", key)
				}
			}
		}
	})
}

// X-RateLimit-Reset is when the bucket is full again, rounded up to the second: never
// before. A first request to a fresh bucket of 2 per 3 s is full again 1.5 s after
// the server decided, so the header is at least the second after send time + 1.5 s.
func TestRateLimitResetRoundsUp(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, nb func(testing.TB) backend) {
		s := newTestServer(t, nb(t), withTrustedProxies(loopback), withRateLimit(func(c *api.RateLimitConfig) {
			c.IPMax, c.Window = 2, 3*time.Second // a token every 1.5 s
		}))
		for i, frac := range []time.Duration{700 * time.Millisecond, 200 * time.Millisecond} {
			// Send at frac past a whole second, so that rounding the send time down and the
			// delay up lands before the real time in one of the two cases.
			now := time.Now()
			time.Sleep(now.Truncate(time.Second).Add(time.Second + frac).Sub(now))
			sent := time.Now()
			resp, body := rlReq(t, s, "GET", "/nowhere", "", fmt.Sprintf("192.0.2.%d", 100+i), nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			rlHeaders(t, resp)
			full := sent.Add(1500 * time.Millisecond)
			want := full.Unix()
			if full.Nanosecond() > 0 {
				want++
			}
			if got, _ := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); got < want {
				t.Errorf("sent at %s: X-RateLimit-Reset %d, but the bucket is full only at %s (want ≥ %d)",
					sent.Format("15:04:05.000"), got, full.Format("15:04:05.000"), want)
			}
		}

		// A window of 2.5 s is announced as 3 s, never 2: a client pacing itself by w stays
		// within the limit.
		s2 := newTestServer(t, nb(t), withRateLimit(func(c *api.RateLimitConfig) { c.Window = 2500 * time.Millisecond }))
		resp, body := rlReq(t, s2, "GET", "/nowhere", "", "", nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if ps, _ := rlHeaders(t, resp); len(ps) == 0 || ps[0].w != 3 {
			t.Errorf("RateLimit-Policy %v for a 2.5 s window, want w=3", policyNames(ps))
		}
	})
}

// An operation's own rule: POST /users allows 5 per minute per IP, the spec's number for
// everyone at an address (role multipliers scale only the per-user rules). The 429 names the rule. Denied requests cost nothing: after any number
// of 429s, waiting Retry-After once is enough.
func TestRateLimitOperationRule(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, nb func(testing.TB) backend) {
		t.Run("createUser for a guest", func(t *testing.T) {
			s := newTestServer(t, nb(t), withTrustedProxies(loopback), withRateLimit(nil))
			n := 0
			create := func(xff string) func() (*http.Response, []byte) {
				return func() (*http.Response, []byte) {
					n++
					return rlReq(t, s, "POST", "/users", "", xff, map[string]string{
						"email": fmt.Sprintf("guest%d@example.com", n), "name": "Guest", "password": testPassword})
				}
			}
			got, resp, body := rlCount(t, 10, create("192.0.2.1"))
			if got != 5 {
				t.Fatalf("a guest created %d users before a 429, want 5", got)
			}
			ra := rl429(t, resp, body, "createUser")
			if resp.Header.Get("X-RateLimit-Limit") != "5" || resp.Header.Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("429: X-RateLimit-Limit %s, -Remaining %s; want 5, 0", resp.Header.Get("X-RateLimit-Limit"), resp.Header.Get("X-RateLimit-Remaining"))
			}
			if ra > 12 {
				t.Errorf("Retry-After %d: a 5-per-minute bucket refills a token every 12 s", ra)
			}
			for range 3 {
				r, b := create("192.0.2.1")()
				if ra2 := rl429(t, r, b, "createUser"); ra2 > ra {
					t.Errorf("Retry-After grew from %d to %d: the denied requests were charged", ra, ra2)
				}
			}
			// The access log (and the request metrics) name the route of a refused request.
			if !strings.Contains(s.Logs.String(), `"path":"/users","route":"POST /users","status":429`) {
				t.Errorf("no access-log line for the 429 names its route:\n%s", s.Logs.String())
			}
			// Per IP: another address has its own five.
			if got, _, _ := rlCount(t, 10, create("192.0.2.2")); got != 5 {
				t.Errorf("a second guest address created %d users, want 5", got)
			}
		})

		t.Run("denied requests are free", func(t *testing.T) {
			s := newTestServer(t, nb(t), withRateLimit(func(c *api.RateLimitConfig) {
				c.IPMax, c.UserMax, c.Window = 1000, 3, 6*time.Second // a token every 2 s
			}))
			id, tok := rlUser(t, s, "free@example.com", storage.RoleUser)
			self := fmt.Sprintf("/users/%d", id)
			get := func() (*http.Response, []byte) { return rlReq(t, s, "GET", self, tok, "", nil) }
			got, resp, body := rlCount(t, 10, get)
			if got != 3 {
				t.Fatalf("%d requests before a 429, want 3", got)
			}
			ra := rl429(t, resp, body, "global per user")
			for range 5 {
				resp, body = get()
				ra = rl429(t, resp, body, "global per user")
			}
			if ra > 2 {
				t.Errorf("Retry-After %d after five refused requests, want at most 2 (a token every 2 s)", ra)
			}
			time.Sleep(time.Duration(ra) * time.Second)
			if resp, body := get(); resp.StatusCode != http.StatusOK {
				t.Errorf("after Retry-After: %d %s; the refused requests were charged", resp.StatusCode, body)
			}
		})
	})
}

// A client that waits exactly Retry-After seconds succeeds, with each algorithm.
func TestRateLimitRetryAfterExact(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, nb func(testing.TB) backend) {
		for _, alg := range storage.Algorithms {
			t.Run(string(alg), func(t *testing.T) {
				t.Parallel()
				s := newTestServer(t, nb(t), withRateLimit(func(c *api.RateLimitConfig) {
					c.Algorithm, c.IPMax, c.UserMax, c.Window = alg, 1000, 2, 2*time.Second
				}))
				id, tok := rlUser(t, s, "retry@example.com", storage.RoleUser)
				get := func() (*http.Response, []byte) { return rlReq(t, s, "GET", fmt.Sprintf("/users/%d", id), tok, "", nil) }
				for cycle := range 2 {
					got, resp, body := rlCount(t, 10, get)
					if resp == nil {
						t.Fatalf("cycle %d: no 429 in 10 requests", cycle)
					}
					if cycle == 0 && got != 2 {
						t.Errorf("%d requests before the first 429, want 2", got)
					}
					ra := rl429(t, resp, body, "global per user")
					if ra > 2 {
						t.Errorf("Retry-After %d exceeds the 2 s window", ra)
					}
					time.Sleep(time.Duration(ra) * time.Second)
					if resp, body := get(); resp.StatusCode != http.StatusOK {
						t.Fatalf("cycle %d: waited Retry-After %d s, got %d %s", cycle, ra, resp.StatusCode, body)
					}
				}
			})
		}
	})
}

// When several rules refuse a request, Retry-After is the longest wait, so that waiting it
// is enough for all of them. GET /auth/me counts against the global per-user rule (2 per 3 s,
// a token every 1.5 s) and the default rule (1 per 3 s): the third request is refused by both.
func TestRateLimitRetryAfterLongestRule(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, nb func(testing.TB) backend) {
		s := newTestServer(t, nb(t), withRateLimit(func(c *api.RateLimitConfig) {
			c.IPMax, c.UserMax, c.DefaultMax, c.Window = 1000, 2, 1, 3*time.Second
		}))
		_, tok := rlUser(t, s, "longest@example.com", storage.RoleUser)
		me := func() (*http.Response, []byte) { return rlReq(t, s, "GET", "/auth/me", tok, "", nil) }
		if resp, body := me(); resp.StatusCode != http.StatusOK {
			t.Fatalf("first: %d %s", resp.StatusCode, body)
		}
		resp, body := me()
		rl429(t, resp, body, "getMe")
		resp, body = me()
		ra := rl429(t, resp, body, "getMe")
		if ra < 2 {
			t.Errorf("Retry-After %d, want the default rule's wait (about 3 s), the longer one", ra)
		}
		if _, named := rlHeaders(t, resp); named.name != "getMe" {
			t.Errorf("RateLimit %q names another rule than the 429 (getMe)", resp.Header.Get("RateLimit"))
		}
		time.Sleep(time.Duration(ra) * time.Second)
		if resp, body := me(); resp.StatusCode != http.StatusOK {
			t.Errorf("waited Retry-After %d s: %d %s", ra, resp.StatusCode, body)
		}
	})
}

// Role multipliers scale the rules counted per user: with 4 per window per user, a user gets
// 4, an admin 40, and a guest, whose per-user rules count its address, 2. Rules counted per IP
// are the configured number for every role: with 4 per window per IP, everyone gets 4.
func TestRateLimitRoleMultipliers(t *testing.T) {
	t.Parallel()
	type req struct {
		who, tok, method, path, ip string
		body                       any
		want                       int
		policies                   []string
		rule                       string // the rule the 429 names
	}
	refresh := map[string]string{"refreshToken": "not-a-token"}
	eachBackend(t, func(t *testing.T, nb func(testing.TB) backend) {
		for _, c := range []struct {
			name                string
			ipMax, userMax, def int
			reqs                func(userPath, userTok, adminPath, adminTok string) []req
		}{
			{"per-user rules scale", 1000, 4, 4, func(userPath, userTok, adminPath, adminTok string) []req {
				return []req{
					{"user", userTok, "GET", userPath, "198.51.100.1", nil, 4,
						[]string{"global-per-IP;q=1000;w=600", "global-per-user;q=4;w=600", "getUser;q=60;w=60"}, "global per user"},
					{"admin", adminTok, "GET", adminPath, "198.51.100.2", nil, 40,
						[]string{"global-per-IP;q=1000;w=600", "global-per-user;q=40;w=600", "getUser;q=600;w=60"}, "global per user"},
					// refreshTokens has the default rule, counted per user: a guest's by address.
					{"guest", "", "POST", "/auth/refresh", "198.51.100.3", refresh, 2,
						[]string{"global-per-IP;q=1000;w=600", "refreshTokens;q=2;w=600"}, "refreshTokens"},
				}
			}},
			{"per-IP rules do not", 4, 1000, 1000, func(userPath, userTok, adminPath, adminTok string) []req {
				return []req{
					{"user", userTok, "GET", userPath, "198.51.100.4", nil, 4,
						[]string{"global-per-IP;q=4;w=600", "global-per-user;q=1000;w=600", "getUser;q=60;w=60"}, "global per IP"},
					{"admin", adminTok, "GET", adminPath, "198.51.100.5", nil, 4,
						[]string{"global-per-IP;q=4;w=600", "global-per-user;q=10000;w=600", "getUser;q=600;w=60"}, "global per IP"},
					{"guest", "", "GET", "/nowhere", "198.51.100.6", nil, 4,
						[]string{"global-per-IP;q=4;w=600"}, "global per IP"},
				}
			}},
		} {
			t.Run(c.name, func(t *testing.T) {
				s := newTestServer(t, nb(t), withTrustedProxies(loopback), withRateLimit(func(rc *api.RateLimitConfig) {
					rc.IPMax, rc.UserMax, rc.DefaultMax, rc.Window = c.ipMax, c.userMax, c.def, 10*time.Minute
				}))
				userID, userTok := rlUser(t, s, "user@example.com", storage.RoleUser)
				adminID, adminTok := rlUser(t, s, "admin2@example.com", storage.RoleAdmin)
				for _, r := range c.reqs(fmt.Sprintf("/users/%d", userID), userTok, fmt.Sprintf("/users/%d", adminID), adminTok) {
					t.Run(r.who, func(t *testing.T) {
						first := true
						got, resp, body := rlCount(t, r.want+5, func() (*http.Response, []byte) {
							resp, body := rlReq(t, s, r.method, r.path, r.tok, r.ip, r.body)
							if first {
								first = false
								ps, _ := rlHeaders(t, resp)
								if strings.Join(policyNames(ps), " ") != strings.Join(r.policies, " ") {
									t.Errorf("RateLimit-Policy %v, want %v", policyNames(ps), r.policies)
								}
								if l := resp.Header.Get("X-RateLimit-Limit"); l != strconv.Itoa(r.want) {
									t.Errorf("X-RateLimit-Limit %s, want %d", l, r.want)
								}
							}
							return resp, body
						})
						if got != r.want {
							t.Errorf("%d requests before a 429, want %d", got, r.want)
						}
						if resp != nil {
							rl429(t, resp, body, r.rule)
						}
					})
				}
			})
		}
	})
}

// A service token (role service, issued as `motorpool token issue` does) is never limited and
// gets no rate-limit headers; no header a client can set, nor a service token signed by
// another key, earns that.
func TestRateLimitServiceToken(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, nb func(testing.TB) backend) {
		s := newTestServer(t, nb(t), withTrustedProxies(loopback), withRateLimit(func(c *api.RateLimitConfig) {
			c.IPMax, c.UserMax, c.Window = 4, 4, 10*time.Minute
		}))
		svc, _, err := s.Issuer.Issue(0, "service:reporting", token.RoleService, token.Access, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		// listVehicles allows 30 per user a minute, ×1 for a user; the global rules 4.
		for i := range 90 {
			resp, body := rlReq(t, s, "GET", "/vehicles", svc, "198.51.100.9", nil)
			if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
				t.Fatalf("service request %d: %d %s", i+1, resp.StatusCode, body)
			}
			rlNoHeaders(t, resp)
		}
		// The service's address was not charged either: a guest there has its 4.
		if got, _, _ := rlCount(t, 6, func() (*http.Response, []byte) {
			return rlReq(t, s, "GET", "/nowhere", "", "198.51.100.9", nil)
		}); got != 4 {
			t.Errorf("a guest at the service's address got %d requests, want 4", got)
		}

		key, err := token.LoadOrCreateKey(filepath.Join(t.TempDir(), "forger.pem"))
		if err != nil {
			t.Fatal(err)
		}
		forger, err := token.NewIssuer(token.Config{Issuer: "motorpool-test", Audience: "motorpool-api", AccessTTL: time.Hour, RefreshTTL: time.Hour}, key)
		if err != nil {
			t.Fatal(err)
		}
		forged, _, err := forger.Issue(0, "service:forged", token.RoleService, token.Access, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for i, attempt := range [][]string{
			{"Authorization", "Bearer " + forged},
			{"X-Forwarded-For", "198.51.100.40, 127.0.0.1"},
			{"X-Real-IP", "127.0.0.1"},
			{"X-Service", "reporting"},
			{"X-Internal", "true"},
			{"X-Motorpool-Service", "true"},
			{"Forwarded", "for=127.0.0.1"},
			{"X-RateLimit-Bypass", "1"},
		} {
			t.Run(attempt[0], func(t *testing.T) {
				ip := fmt.Sprintf("198.51.100.%d", 20+i)
				got, resp, body := rlCount(t, 6, func() (*http.Response, []byte) {
					resp, body := rlReq(t, s, "GET", "/vehicles", "", ip, nil, attempt...)
					rlHeaders(t, resp)
					return resp, body
				})
				if got != 4 || resp == nil {
					t.Fatalf("%d requests before a 429 with %s, want 4 (the global rule per IP)", got, attempt[0])
				}
				rl429(t, resp, body, "global per IP")
			})
		}
	})
}

// The client address is the peer's unless the peer is a trusted proxy: a forged
// X-Forwarded-For from anyone else changes nothing. Behind a trusted proxy the rightmost
// untrusted hop counts, and IPv6 addresses count by their /64.
func TestRateLimitForwardedFor(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, nb func(testing.TB) backend) {
		cfg := func(c *api.RateLimitConfig) { c.IPMax, c.Window = 2, 10*time.Minute }

		t.Run("untrusted peer", func(t *testing.T) {
			s := newTestServer(t, nb(t), withRateLimit(cfg))
			allowed, limited := 0, false
			for i := range 8 {
				resp, body := rlReq(t, s, "GET", "/nowhere", "", fmt.Sprintf("203.0.113.%d", 10+i), nil, "X-Real-IP", fmt.Sprintf("203.0.113.%d", 50+i))
				rlHeaders(t, resp)
				switch resp.StatusCode {
				case http.StatusTooManyRequests:
					limited = true
				case http.StatusNotFound:
					if limited {
						t.Fatalf("request %d with a new forged address passed after a 429", i+1)
					}
					allowed++
				default:
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
			}
			if allowed > 2 || !limited {
				t.Errorf("%d requests passed with forged addresses, want at most 2 (one bucket)", allowed)
			}
		})

		t.Run("trusted proxy", func(t *testing.T) {
			s := newTestServer(t, nb(t), withTrustedProxies(loopback), withRateLimit(cfg))
			count := func(xff string) int {
				got, _, _ := rlCount(t, 5, func() (*http.Response, []byte) { return rlReq(t, s, "GET", "/nowhere", "", xff, nil) })
				return got
			}
			status := func(xff string) int {
				resp, _ := rlReq(t, s, "GET", "/nowhere", "", xff, nil)
				return resp.StatusCode
			}
			if got := count("203.0.113.1"); got != 2 {
				t.Errorf("203.0.113.1: %d before a 429, want 2", got)
			}
			if got := count("203.0.113.2"); got != 2 {
				t.Errorf("203.0.113.2 after 203.0.113.1 was limited: %d, want its own 2", got)
			}
			for xff, want := range map[string]int{
				"203.0.113.77, 203.0.113.1": http.StatusTooManyRequests, // a forged left entry is ignored
				"203.0.113.1, 127.0.0.9":    http.StatusTooManyRequests, // trusted hops are walked past
				"203.0.113.3, 127.0.0.9":    http.StatusNotFound,
			} {
				if got := status(xff); got != want {
					t.Errorf("X-Forwarded-For %s: %d, want %d", xff, got, want)
				}
			}

			if got := count("2001:db8::1"); got != 2 {
				t.Errorf("2001:db8::1: %d before a 429, want 2", got)
			}
			for xff, want := range map[string]int{
				"2001:db8::2":                    http.StatusTooManyRequests, // the same /64
				"2001:db8::abcd:ef01:2345:6789":  http.StatusTooManyRequests,
				"2001:db8:1::1":                  http.StatusNotFound, // another /64
				"2001:db8:0:1::1":                http.StatusNotFound,
				"::ffff:203.0.113.1":             http.StatusTooManyRequests, // IPv4-mapped is the IPv4 address
				"203.0.113.99, 2001:db8::ffff:1": http.StatusTooManyRequests,
			} {
				if got := status(xff); got != want {
					t.Errorf("X-Forwarded-For %s: %d, want %d", xff, got, want)
				}
			}
			if vc := s.Backend.valkey; vc != nil {
				for _, key := range []string{"rate_limit:ip:{2001:db8::/64}:global", "rate_limit:ip:{2001:db8:1::/64}:global", "rate_limit:ip:{203.0.113.1}:global"} {
					if !valkeyHas(t, vc, key) {
						t.Errorf("Valkey has no key %s", key)
					}
				}
			}
		})
	})
}

// Three instances sharing one Valkey decide exactly: 300 concurrent requests against a limit of
// 50 per IP let exactly 50 through.
func TestRateLimitExactAcrossInstances(t *testing.T) {
	t.Parallel()
	rateLimitExactAcrossInstances(t, valkeytest.Open(t))
}

// rateLimitExactAcrossInstances runs the test on vc's server (or cluster): three instances,
// each with a client of its own under vc's prefix, as separate processes would have.
func rateLimitExactAcrossInstances(t *testing.T, vc *valkey.Client) {
	b := backend{store: pgtest.Open(t), state: valkey.NewAuthState(vc), valkey: vc}
	var servers []*testServer
	for i := range 3 {
		own := vc
		if i > 0 {
			own = openAlso(t, vc)
		}
		servers = append(servers, newTestServer(t, b, withTrustedProxies(loopback), withRateLimit(func(c *api.RateLimitConfig) {
			c.IPMax, c.UserMax, c.DefaultMax, c.Window = 50, 1000, 1000, time.Hour
			// Generous: this is about the script's atomicity, not the timeout; a call that
			// timed out would be decided by each instance's fallback.
			c.Timeout = 5 * time.Second
			c.Store = valkey.NewLimiter(own, c.Timeout)
		})))
	}
	const n = 300
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			// Not rlReq: a goroutine must not call t.Fatal.
			resp, _, err := servers[i%3].sendE("", "GET", "/nowhere", nil, "X-Forwarded-For", "203.0.113.200")
			if err != nil {
				t.Error(err)
				return
			}
			codes[i] = resp.StatusCode
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d requests over 3 instances in %v", n, time.Since(began))
	counts := map[int]int{}
	for _, c := range codes {
		counts[c]++
	}
	if counts[http.StatusNotFound] != 50 || counts[http.StatusTooManyRequests] != n-50 {
		t.Errorf("statuses %v, want exactly 50 × 404 and %d × 429", counts, n-50)
	}
	for i, s := range servers {
		if v, _ := metricValue(t, s, `motorpool_ratelimit_fallback_total{rule="global per IP"}`); v != 0 {
			t.Errorf("instance %d decided %v requests by its fallback", i, v)
		}
	}
}

// restartValkey starts a server on addr again, after the test stopped it.
func restartValkey(t *testing.T, addr string) {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	runValkeyOn(t, p)
}

// With Valkey stopped, fail-open keeps limiting with the in-process fallback (never a 5xx),
// the login and password-reset rules fail closed with 503, and RATE_LIMIT_FAIL_MODE=closed
// refuses every limited request with 503; all promptly. Once Valkey is back, the breaker
// closes after its cooldown and the store decides again.
func TestRateLimitValkeyOutage(t *testing.T) {
	addr, stop := startValkey(t)
	open := func(prefix string) *valkey.Client {
		vc, err := valkey.Open(context.Background(), valkey.Config{Addrs: []string{addr}, KeyPrefix: prefix,
			DialTimeout: 200 * time.Millisecond, CommandTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = vc.Close() })
		return vc
	}
	vcOpen, vcClosed := open("open:"), open("closed:")
	server := func(vc *valkey.Client, failClosed bool) *testServer {
		b := backends["embedded"](t)
		b.state = memory.NewAuthState(nil) // auth keeps working without Valkey
		return newTestServer(t, b, withRateLimit(func(c *api.RateLimitConfig) {
			c.Store = valkey.NewLimiter(vc, 50*time.Millisecond)
			c.FailClosed = failClosed
			c.IPMax, c.UserMax, c.DefaultMax, c.Window = 1000, 3, 1000, time.Minute
			c.BreakerFailures, c.BreakerCooldown = 3, 200*time.Millisecond
		}))
	}
	sOpen, sClosed := server(vcOpen, false), server(vcClosed, true)
	openID, openTok := rlUser(t, sOpen, "open@example.com", storage.RoleUser)
	closedID, closedTok := rlUser(t, sClosed, "closed@example.com", storage.RoleUser)
	openSelf, closedSelf := fmt.Sprintf("/users/%d", openID), fmt.Sprintf("/users/%d", closedID)

	// timed sends a request and fails the test unless it is answered within a second.
	timed := func(s *testServer, method, path, tok string, body any) (*http.Response, []byte) {
		t.Helper()
		start := time.Now()
		resp, b := rlReq(t, s, method, path, tok, "", body)
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s %s took %v with Valkey away; want a prompt answer", method, path, took)
		}
		return resp, b
	}
	login := map[string]string{"email": adminEmail, "password": testPassword}
	reset := map[string]string{"email": adminEmail}

	if resp, body := timed(sOpen, "GET", openSelf, openTok, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the outage: %d %s", resp.StatusCode, body)
	}
	if resp, body := timed(sClosed, "GET", closedSelf, closedTok, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the outage: %d %s", resp.StatusCode, body)
	}
	stop()

	t.Run("fail open", func(t *testing.T) {
		// The fallback starts empty: 3 more for the user, then 429, from memory.
		var codes []int
		for range 5 {
			resp, body := timed(sOpen, "GET", openSelf, openTok, nil)
			codes = append(codes, resp.StatusCode)
			if resp.StatusCode >= 500 {
				t.Errorf("fail-open answered %d %s", resp.StatusCode, body)
			}
			if resp.StatusCode == http.StatusTooManyRequests {
				rl429(t, resp, body, "global per user")
			} else {
				rlHeaders(t, resp)
			}
		}
		if want := []int{200, 200, 200, 429, 429}; fmt.Sprint(codes) != fmt.Sprint(want) {
			t.Errorf("statuses with Valkey away %v, want %v (the fallback limits to 3)", codes, want)
		}
		for _, c := range []struct {
			path string
			body any
		}{{"/auth/login", login}, {"/auth/password-reset", reset}} {
			resp, body := timed(sOpen, "POST", c.path, "", c.body)
			unavailable(t, "POST "+c.path+" (a fail-closed rule) with Valkey away", resp, body)
			for _, name := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit"} {
				if v := resp.Header.Get(name); v != "" {
					t.Errorf("POST %s with Valkey away: 503 carries %s: %s (nothing was counted)", c.path, name, v)
				}
			}
		}
		if resp, _ := timed(sOpen, "GET", "/healthz", "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("healthz: %d", resp.StatusCode)
		}
		if v, _ := metricValue(t, sOpen, `motorpool_ratelimit_fallback_total{rule="getUser"}`); v < 4 {
			t.Errorf("fallback_total{getUser} = %v, want ≥ 4", v)
		}
		if v, _ := metricValue(t, sOpen, `motorpool_ratelimit_store_errors_total{rule="getUser"}`); v < 1 {
			t.Errorf("store_errors_total{getUser} = %v, want ≥ 1", v)
		}
	})

	t.Run("fail closed", func(t *testing.T) {
		for _, path := range []string{closedSelf, "/nowhere", "/auth/me"} {
			resp, body := timed(sClosed, "GET", path, closedTok, nil)
			unavailable(t, "GET "+path+" with FailClosed and Valkey away", resp, body)
		}
		if resp, _ := timed(sClosed, "GET", "/healthz", "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("healthz: %d", resp.StatusCode)
		}
	})
	for _, s := range []*testServer{sOpen, sClosed} {
		if strings.Contains(s.Logs.String(), `"status":500`) {
			t.Errorf("a 500 was logged:\n%s", s.Logs.String())
		}
	}

	restartValkey(t, addr)
	// until polls f until it reports true, each attempt answered promptly.
	until := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !f(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s of Valkey's return", what)
			}
		}
	}
	// Login's rule fails closed: its 200 means the store answers again.
	until("login through the store", func() bool {
		resp, _ := timed(sOpen, "POST", "/auth/login", "", login)
		return resp.StatusCode == http.StatusOK
	})
	// The client has several connections, and each finds out about the restart on its first
	// command (which fails, sending that request to the fallback): let them all find out, so
	// that the count below is the store's alone. A command with a key goes to a connection
	// picked at random (PING always takes the first).
	until("every connection of the limiter's client answering", func() bool {
		vk := vcOpen.Valkey()
		for i := range 32 {
			if vk.Do(context.Background(), vk.B().Set().Key(vcOpen.Key(fmt.Sprint("probe", i))).Value("1").Build()).Error() != nil {
				return false
			}
		}
		return true
	})
	// The restarted server is empty: the user has 3 again there, while the fallback, which
	// refused them, would say 429 for another 20 s.
	got, resp, body := rlCount(t, 6, func() (*http.Response, []byte) { return timed(sOpen, "GET", openSelf, openTok, nil) })
	if got != 3 || resp == nil {
		t.Errorf("after Valkey's return: %d requests before a 429, want 3 (counted by the store)", got)
	} else {
		rl429(t, resp, body, "global per user")
	}
	if !valkeyHas(t, vcOpen, fmt.Sprintf("rate_limit:user:{%d}:global", openID)) {
		t.Error("after Valkey's return the limiter wrote no bucket there")
	}
	until("fail-closed instance answering again", func() bool {
		resp, _ := timed(sClosed, "GET", closedSelf, closedTok, nil)
		return resp.StatusCode == http.StatusOK
	})
}

// A subject limited more than AlertThreshold times within AlertWindow gets one WARN line and
// one count of motorpool_ratelimit_suspicious_total, however often it goes on; each 429 counts
// in motorpool_ratelimit_limited_total by rule.
func TestRateLimitSuspiciousActivity(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, nb func(testing.TB) backend) {
		warnings := func(s *testServer) int {
			return strings.Count(s.Logs.String(), `"level":"WARN","msg":"suspicious activity`)
		}
		t.Run("one rule", func(t *testing.T) {
			s := newTestServer(t, nb(t), withTrustedProxies(loopback), withRateLimit(func(c *api.RateLimitConfig) {
				c.IPMax, c.Window, c.AlertThreshold, c.AlertWindow = 2, 10*time.Minute, 3, time.Minute
			}))
			send := func() (*http.Response, []byte) { return rlReq(t, s, "GET", "/nowhere", "", "192.0.2.44", nil) }
			for range 2 {
				if resp, body := send(); resp.StatusCode != http.StatusNotFound {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
			}
			for i := 1; i <= 7; i++ {
				resp, body := send()
				rl429(t, resp, body, "global per IP")
				want := 0
				if i > 3 {
					want = 1
				}
				if got := warnings(s); got != want {
					t.Fatalf("after %d 429s: %d suspicious-activity warnings, want %d\n%s", i, got, want, s.Logs.String())
				}
			}
			if !strings.Contains(s.Logs.String(), `ip:{192.0.2.44}`) {
				t.Errorf("the warning does not name the subject:\n%s", s.Logs.String())
			}
			// Another subject is not suspicious for the first's sake.
			for range 3 {
				rlReq(t, s, "GET", "/nowhere", "", "192.0.2.45", nil)
			}
			if v, ok := metricValue(t, s, `motorpool_ratelimit_limited_total{rule="global per IP"}`); !ok || v != 8 {
				t.Errorf(`limited_total{rule="global per IP"} = %v (present %v), want 8`, v, ok)
			}
			if v, ok := metricValue(t, s, "motorpool_ratelimit_suspicious_total"); !ok || v != 1 {
				t.Errorf("suspicious_total = %v (present %v), want 1", v, ok)
			}
			if v, ok := metricValue(t, s, `motorpool_ratelimit_allowed_total{rule="global per IP"}`); !ok || v < 2 {
				t.Errorf(`allowed_total{rule="global per IP"} = %v (present %v), want ≥ 2`, v, ok)
			}
		})

		t.Run("across rules", func(t *testing.T) {
			// The threshold is per subject (an address, a user), not per bucket: two 429s on
			// each of two operations make four.
			s := newTestServer(t, nb(t), withTrustedProxies(loopback), withRateLimit(func(c *api.RateLimitConfig) {
				c.AlertThreshold, c.AlertWindow = 3, time.Minute
			}))
			ip := "192.0.2.60"
			n := 0
			for _, c := range []struct {
				path, rule string
				body       func() any
			}{
				{"/auth/password-reset", "requestPasswordReset", func() any { return map[string]string{"email": "nobody@example.com"} }},
				{"/users", "createUser", func() any {
					n++
					return map[string]string{"email": fmt.Sprintf("across%d@example.com", n), "name": "A", "password": testPassword}
				}},
			} {
				got, resp, body := rlCount(t, 8, func() (*http.Response, []byte) { return rlReq(t, s, "POST", c.path, "", ip, c.body()) })
				if got != 5 || resp == nil {
					t.Fatalf("POST %s: %d before a 429, want 5 (the spec's number per IP)", c.path, got)
				}
				rl429(t, resp, body, c.rule)
				resp, body = rlReq(t, s, "POST", c.path, "", ip, c.body())
				rl429(t, resp, body, c.rule)
			}
			if got := warnings(s); got != 1 {
				t.Errorf("four 429s of one address on two rules: %d suspicious-activity warnings, want 1\n%s", got, s.Logs.String())
			}
		})
	})
}

// TestRateLimitChargedWithSession: on the production pairing a warm, signed-in, limited request
// costs exactly one Valkey round trip in all, on the client the auth state and the limiter
// share: identity none (the session and the denylist entry come from the client-side cache,
// TestIdentityWarmNoRoundTrip), the limiter's Allow one. And on both pairings a token whose
// session has ended is limited as the guest it now is (identity is decided before any
// bucket is charged): the requests it makes count against the address's buckets, never
// against the buckets of the user it names.
func TestRateLimitChargedWithSession(t *testing.T) {
	t.Parallel()
	t.Run("one round trip", func(t *testing.T) {
		t.Parallel()
		be, rtt := countedBackend(t)
		be.cache = openValkeyCache(t, be.valkey.KeyPrefix(), nil)
		s := newTestServer(t, be, withRateLimit(nil))
		id, tok := rlUser(t, s, "one-trip@example.com", storage.RoleUser)
		self := fmt.Sprintf("/users/%d", id)
		rlReq(t, s, "GET", self, tok, "", nil) // loads the scripts and fills the cache
		before := rtt.Load()
		resp, body := rlReq(t, s, "GET", self, tok, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", self, resp.StatusCode, body)
		}
		if n := rtt.Load() - before; n != 1 {
			t.Errorf("a warm authenticated, limited GET %s took %d round trips to Valkey, want 1 (the limiter's)", self, n)
		}
		if _, named := rlHeaders(t, resp); named.name != "getUser" || named.remain != 58 {
			t.Errorf("RateLimit names %q with %d remaining, want getUser with 58", named.name, named.remain)
		}
	})
	eachBackend(t, func(t *testing.T, nb func(testing.TB) backend) {
		s := newTestServer(t, nb(t), withRateLimit(nil))
		id, tok := rlUser(t, s, "revoked@example.com", storage.RoleUser)
		self := fmt.Sprintf("/users/%d", id)
		if resp, body := rlReq(t, s, "GET", self, tok, "", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", self, resp.StatusCode, body)
		}
		if resp, body := rlReq(t, s, "POST", "/auth/logout", tok, "", nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("logout: %d %s", resp.StatusCode, body)
		}
		for i := range 5 {
			resp, body := rlReq(t, s, "GET", self, tok, "", nil)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("GET %s with the logged-out token, %d: %d %s", self, i+1, resp.StatusCode, body)
			}
			// A guest's rules: the global one per address as configured, getUser (a per-user
			// rule) counted per address at the guest's half.
			ps, named := rlHeaders(t, resp)
			want := []string{"global-per-IP;q=100;w=60", "getUser;q=30;w=60"}
			if got := policyNames(ps); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("request %d with the logged-out token: RateLimit-Policy %v, want %v", i+1, got, want)
			}
			if named.name != "getUser" || named.remain != 29-i {
				t.Errorf("request %d with the logged-out token: RateLimit names %q with %d remaining, want getUser with %d", i+1, named.name, named.remain, 29-i)
			}
		}
		pair, err := s.Auth.Login(context.Background(), "revoked@example.com", testPassword)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := rlReq(t, s, "GET", self, pair.AccessToken, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s signed in again: %d %s", self, resp.StatusCode, body)
		}
		// The user's getUser bucket: 60, less the first request and this one.
		if _, named := rlHeaders(t, resp); named.name != "getUser" || named.remain != 58 {
			t.Errorf("signed in again: RateLimit names %q with %d remaining, want getUser with 58 (the logged-out token's requests must not count)", named.name, named.remain)
		}
	})
}

// TestRateLimitChargedWithSessionOutage: with identity and the limiter on one Valkey, Valkey
// going away still never yields a 500 or a hang: the signed-in caller's secured requests get
// the session store's 503, a public request carrying the now undecidable token is limited by
// the fallback as a guest, and once Valkey is back the store counts again.
func TestRateLimitChargedWithSessionOutage(t *testing.T) {
	addr, stop := startValkey(t)
	vc, err := valkey.Open(context.Background(), valkey.Config{Addrs: []string{addr}, KeyPrefix: "charged:",
		DialTimeout: 200 * time.Millisecond, CommandTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vc.Close() })
	s := newTestServer(t, backend{store: pgtest.Open(t), state: valkey.NewAuthState(vc), valkey: vc},
		withRateLimit(func(c *api.RateLimitConfig) { c.BreakerFailures, c.BreakerCooldown = 3, 200*time.Millisecond }))
	id, tok := rlUser(t, s, "outage@example.com", storage.RoleUser)
	self := fmt.Sprintf("/users/%d", id)
	timed := func(method, path, tok string, body any) (*http.Response, []byte) {
		t.Helper()
		start := time.Now()
		resp, b := rlReq(t, s, method, path, tok, "", body)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s %s took %v with Valkey away; want a prompt answer", method, path, took)
		}
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return resp, b
	}
	if resp, body := timed("GET", self, tok, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the outage: %d %s", resp.StatusCode, body)
	}
	stop()
	awaitValkeyGoneNoticed(t, func() int { resp, _ := timed("GET", self, tok, nil); return resp.StatusCode })

	for i := range 5 {
		resp, body := timed("GET", self, tok, nil)
		unavailable(t, fmt.Sprintf("signed-in GET %d with Valkey away", i+1), resp, body)
	}
	// POST /users is public: the token cannot be checked, so the caller is a guest (createUser:
	// 5 per IP), limited in process.
	var codes []int
	for i := range 7 {
		resp, body := timed("POST", "/users", tok, map[string]string{
			"email": fmt.Sprintf("outage%d@example.com", i), "name": "Outage", "password": testPassword})
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			rl429(t, resp, body, "createUser")
		} else if resp.StatusCode == http.StatusCreated {
			if ps, _ := rlHeaders(t, resp); len(ps) != 2 || ps[1].name != "createUser" || ps[1].q != 5 {
				t.Errorf("POST /users with Valkey away: RateLimit-Policy %v, want createUser;q=5", policyNames(ps))
			}
		}
	}
	if want := []int{201, 201, 201, 201, 201, 429, 429}; fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Errorf("POST /users with Valkey away: %v, want %v (the fallback, as a guest)", codes, want)
	}
	if v, _ := metricValue(t, s, `motorpool_ratelimit_fallback_total{rule="createUser"}`); v < 4 {
		t.Errorf("fallback_total{createUser} = %v, want ≥ 4", v)
	}
	if v, _ := metricValue(t, s, `motorpool_ratelimit_store_errors_total{rule="getUser"}`); v < 1 {
		t.Errorf("store_errors_total{getUser} = %v, want ≥ 1 (the limiter's failed calls)", v)
	}
	if strings.Contains(s.Logs.String(), `"status":500`) {
		t.Errorf("a 500 was logged:\n%s", s.Logs.String())
	}

	restartValkey(t, addr)
	// The restarted server has lost the session: sign in again (not through HTTP, so that no
	// bucket is touched). Past the breaker's cooldown the store counts again: a fresh getUser
	// bucket (60) has 59 left after the first request, and the fallback is not asked.
	var pair auth.TokenPair
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if pair, err = s.Auth.Login(context.Background(), "outage@example.com", testPassword); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not signed in within 5 s of Valkey's return: %v", err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	fellBack, _ := metricValue(t, s, `motorpool_ratelimit_fallback_total{rule="getUser"}`)
	resp, body := timed("GET", self, pair.AccessToken, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after Valkey's return: %d %s", resp.StatusCode, body)
	}
	if _, named := rlHeaders(t, resp); named.name != "getUser" || named.remain != 59 {
		t.Errorf("after Valkey's return: RateLimit names %q with %d remaining, want getUser with 59", named.name, named.remain)
	}
	if v, _ := metricValue(t, s, `motorpool_ratelimit_fallback_total{rule="getUser"}`); v != fellBack {
		t.Errorf("after Valkey's return the fallback decided getUser (%v → %v), want the store", fellBack, v)
	}
	if !valkeyHas(t, vc, fmt.Sprintf("rate_limit:user:{%d}:getUser", id)) {
		t.Error("after Valkey's return the limiter wrote no bucket there")
	}
}
