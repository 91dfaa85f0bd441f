package api_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/client"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/clustertest"
)

// A few API tests again on a Valkey Cluster of three primaries (clustertest's, one per test
// binary, started by the first of them): the production pairing with identity, cache and
// limiter on the cluster. Not the whole suite: the cluster is about the storage layer, whose
// own tests run their conformance suites on it too (storage/valkey/cluster_test.go).

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }

// clusterBackend is the production pairing with Valkey on the package's cluster: the auth
// state, the limiter (when on) and the cache, under one fresh prefix.
func clusterBackend(t testing.TB) backend {
	vc := clustertest.Open(t)
	cache := openValkeyCacheOn(t, clustertest.Addrs(t), vc.KeyPrefix(), nil)
	return backend{store: pgtest.Open(t), state: valkey.NewAuthState(vc), cache: cache, valkey: vc}
}

// openAlso opens another client on vc's server (every node of a cluster) under vc's prefix,
// as another instance of the service would; it is closed when t ends.
func openAlso(t testing.TB, vc *valkey.Client) *valkey.Client {
	t.Helper()
	addrs := slices.Sorted(maps.Keys(vc.Valkey().Nodes()))
	other, err := valkey.Open(context.Background(), valkey.Config{Addrs: addrs, KeyPrefix: vc.KeyPrefix(), CommandTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	return other
}

// TestClusterSmoke: register, sign in, create a vehicle, read it twice (the second a cache
// hit), sign out, and the token is refused; rate limited all along by the cluster, never by
// the fallback.
func TestClusterSmoke(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, clusterBackend(t), withRateLimit(nil))
	const email = "cluster@example.com"
	if resp, body := rlReq(t, s, "POST", "/users", "", "", map[string]string{
		"email": email, "name": "Cluster User", "password": testPassword}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %s", resp.StatusCode, body)
	}
	pair := s.login(t, email, testPassword)
	me, err := s.clientWith(t, pair.AccessToken).GetMeWithResponse(context.Background())
	if err != nil || me.JSON200 == nil {
		t.Fatalf("/auth/me: %v %s", err, me.Body)
	}
	uid := me.JSON200.User.Id
	resp, body := rlReq(t, s, "POST", "/vehicles", pair.AccessToken, "", map[string]any{
		"userId": uid, "make": "Toyota", "model": "Corolla", "year": 2020, "vin": vin(1), "licensePlate": "AB-123-CD"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create vehicle: %d %s", resp.StatusCode, body)
	}
	path := fmt.Sprintf("/vehicles/%d", decodeAs[client.Vehicle](t, body).Id)
	for _, want := range []string{"miss", "hit"} {
		resp, body := rlReq(t, s, "GET", path, pair.AccessToken, "", nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Cache") != want {
			t.Fatalf("GET %s: %d, X-Cache %q, want 200 and %s: %s", path, resp.StatusCode, resp.Header.Get("X-Cache"), want, body)
		}
	}
	// The user's keys share their {userId} slot; the limiter's keys are there too.
	vc := s.Backend.valkey
	for _, key := range []string{fmt.Sprintf("sessions:{%d}", uid), "rate_limit:ip:{127.0.0.1}:global"} {
		if !valkeyHas(t, vc, key) {
			t.Errorf("the cluster has no key %s", key)
		}
	}
	if resp, body := rlReq(t, s, "POST", "/auth/logout", pair.AccessToken, "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	if resp, body := rlReq(t, s, "GET", path, pair.AccessToken, "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET %s after logout: %d %s, want 401", path, resp.StatusCode, body)
	}
	for _, name := range []string{"motorpool_ratelimit_store_errors_total", "motorpool_ratelimit_fallback_total"} {
		if n := metricSum(t, s, name); n != 0 {
			t.Errorf("%s = %v, want 0: the cluster decided every request", name, n)
		}
	}
}

// metricSum adds up every sample of the metric name (all its label sets).
func metricSum(t testing.TB, s *testServer, name string) float64 {
	t.Helper()
	_, body := rlReq(t, s, "GET", "/metrics", "", "", nil)
	var sum float64
	for line := range strings.Lines(string(body)) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), name)
		if !ok || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		f, err := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += f
	}
	return sum
}

// TestClusterRateLimitExactAcrossInstances: three instances sharing the cluster decide exactly.
func TestClusterRateLimitExactAcrossInstances(t *testing.T) {
	t.Parallel()
	rateLimitExactAcrossInstances(t, clustertest.Open(t))
}

// callCounts counts a valkey-go client's calls by kind. A cached read counts only when the
// server was asked for it: a reply from the client-side cache costs no round trip.
type callCounts struct {
	valkeygo.Client
	do, multi, cacheMissed atomic.Int64
}

func (c *callCounts) Do(ctx context.Context, cmd valkeygo.Completed) valkeygo.ValkeyResult {
	c.do.Add(1)
	return c.Client.Do(ctx, cmd)
}

func (c *callCounts) DoMulti(ctx context.Context, cmds ...valkeygo.Completed) []valkeygo.ValkeyResult {
	c.multi.Add(1)
	return c.Client.DoMulti(ctx, cmds...)
}

func (c *callCounts) DoCache(ctx context.Context, cmd valkeygo.Cacheable, ttl time.Duration) valkeygo.ValkeyResult {
	r := c.Client.DoCache(ctx, cmd, ttl)
	if !r.IsCacheHit() {
		c.cacheMissed.Add(1)
	}
	return r
}

func (c *callCounts) DoMultiCache(ctx context.Context, multi ...valkeygo.CacheableTTL) []valkeygo.ValkeyResult {
	res := c.Client.DoMultiCache(ctx, multi...)
	for _, r := range res {
		if !r.IsCacheHit() {
			c.cacheMissed.Add(1)
			break
		}
	}
	return res
}

func (c *callCounts) String() string {
	return fmt.Sprintf("%d Do, %d DoMulti, %d cached reads that asked the server", c.do.Load(), c.multi.Load(), c.cacheMissed.Load())
}

func (c *callCounts) reset() {
	c.do.Store(0)
	c.multi.Store(0)
	c.cacheMissed.Store(0)
}

// nodeOf is the address of the node that serves key's slot: the others answer MOVED.
func nodeOf(t testing.TB, vc *valkey.Client, key string) string {
	t.Helper()
	for addr, node := range vc.Valkey().Nodes() {
		err := node.Do(context.Background(), node.B().Exists().Key(key).Build()).Error()
		if err == nil {
			return addr
		}
		if verr, ok := valkeygo.IsValkeyErr(err); !ok {
			t.Fatalf("EXISTS %s on %s: %v", key, addr, err)
		} else if _, moved := verr.IsMoved(); !moved {
			t.Fatalf("EXISTS %s on %s: %v", key, addr, err)
		}
	}
	t.Fatalf("no node serves %s", key)
	return ""
}

// TestClusterWarmRequestRoundTrips: on the cluster, a warm signed-in, rate-limited, cached GET
// costs one DoMulti, the limiter's (its buckets live in the slots of two subjects, the
// caller's address and the user, on two nodes, to which valkey-go sends them at once);
// identity is answered by the client-side cache, and so is the cached response.
func TestClusterWarmRequestRoundTrips(t *testing.T) {
	t.Parallel()
	probe := clustertest.Open(t) // lends a fresh prefix, and deletes its keys at the end
	addrs := clustertest.Addrs(t)
	shared, cached := &callCounts{}, &callCounts{}
	vc, err := valkey.Open(context.Background(), valkey.Config{Addrs: addrs, KeyPrefix: probe.KeyPrefix(),
		Wrap: func(c valkeygo.Client) valkeygo.Client { shared.Client = c; return shared }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vc.Close() })
	cache := openValkeyCacheOn(t, addrs, probe.KeyPrefix(), func(c valkeygo.Client) valkeygo.Client { cached.Client = c; return cached })
	s := newTestServer(t, backend{store: pgtest.Open(t), state: valkey.NewAuthState(vc), cache: cache, valkey: vc},
		withTrustedProxies(loopback), withRateLimit(nil))
	id, tok := rlUser(t, s, "cluster-warm@example.com", storage.RoleUser)
	self := fmt.Sprintf("/users/%d", id)
	// A caller address whose buckets are on another node than the user's, so that the
	// limiter's pipeline spans two nodes.
	userNode, ip := nodeOf(t, vc, fmt.Sprintf("{%d}", id)), ""
	for i := 1; i < 255 && ip == ""; i++ {
		if a := fmt.Sprintf("203.0.113.%d", i); nodeOf(t, vc, "{"+a+"}") != userNode {
			ip = a
		}
	}
	if ip == "" {
		t.Fatalf("every address of 203.0.113.0/24 is on the user's node %s", userNode)
	}
	get := func() *http.Response {
		t.Helper()
		resp, body := rlReq(t, s, "GET", self, tok, ip, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", self, resp.StatusCode, body)
		}
		return resp
	}
	// Warm up: the scripts loaded on the nodes, the identity read once, the response cached
	// and read back once from the server (its store invalidated the local copy of the miss).
	const warmup, n = 3, 20
	for range warmup {
		get()
	}
	shared.reset()
	cached.reset()
	var last *http.Response
	for range n {
		last = get()
	}
	t.Logf("%d warm GET %s: auth state and limiter: %v; cache: %v", n, self, shared, cached)
	if shared.do.Load() != 0 || shared.cacheMissed.Load() != 0 || shared.multi.Load() != n {
		t.Errorf("%d warm GET %s on the auth state's and limiter's client: %v; want %d DoMulti (the limiter's) and nothing else (identity from the local cache)", n, self, shared, n)
	}
	if cached.do.Load()+cached.multi.Load()+cached.cacheMissed.Load() != 0 {
		t.Errorf("%d warm GET %s on the cache's client: %v; want none (the local tier)", n, self, cached)
	}
	// The limiter counted every request on the cluster: getUser's 60, less all of them.
	if _, named := rlHeaders(t, last); named.name != "getUser" || named.remain != 60-warmup-n {
		t.Errorf("RateLimit names %q with %d remaining, want getUser with %d", named.name, named.remain, 60-warmup-n)
	}
}
