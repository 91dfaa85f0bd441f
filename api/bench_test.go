package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/client"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
)

// The whole handler stack (logging, metrics, bearer authentication against the auth state
// store, validation, strict server, store), in process, with no network between client and
// server; the stores are real (SQLite and memory, or PostgreSQL and Valkey).

// roundTrips counts calls into valkey-go: each Do or DoMulti is one round trip (DoMulti
// pipelines its commands).
type roundTrips struct {
	valkeygo.Client
	n *atomic.Int64
}

func (c roundTrips) Do(ctx context.Context, cmd valkeygo.Completed) valkeygo.ValkeyResult {
	c.n.Add(1)
	return c.Client.Do(ctx, cmd)
}

func (c roundTrips) DoMulti(ctx context.Context, cmds ...valkeygo.Completed) []valkeygo.ValkeyResult {
	c.n.Add(1)
	return c.Client.DoMulti(ctx, cmds...)
}

// benchServer is newTestServer on the named pairing, without the cache; on production it
// counts Valkey round trips in rtt, as countedBackend.
func benchServer(b *testing.B, name string) (*testServer, *atomic.Int64) {
	if name == "embedded" {
		return newTestServer(b, backends[name](b)), new(atomic.Int64)
	}
	be, rtt := countedBackend(b)
	return newTestServer(b, be), rtt
}

// countedBackend is the production pairing without a cache, counting in rtt the round trips of
// the client the auth state and the limiter share (a cache would have its own).
func countedBackend(t testing.TB) (backend, *atomic.Int64) {
	rtt := new(atomic.Int64)
	probe := valkeytest.Open(t) // fails or skips when Valkey is missing; lends a fresh prefix
	vc, err := valkey.Open(context.Background(), valkey.Config{Addrs: []string{valkeyAddr()}, KeyPrefix: probe.KeyPrefix(),
		Wrap: func(c valkeygo.Client) valkeygo.Client { return roundTrips{c, rtt} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vc.Close() })
	return backend{store: pgtest.Open(t), state: valkey.NewAuthState(vc), valkey: vc}, rtt
}

func reportRTT(b *testing.B, rtt *atomic.Int64, before int64) {
	b.ReportMetric(float64(rtt.Load()-before)/float64(b.N), "valkey-rtt/op")
}

func serve(b *testing.B, h http.Handler, req *http.Request, want int) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", req.Method, req.URL, rec.Code, rec.Body)
	}
}

func authed(req *http.Request, tok string) *http.Request {
	req.Header.Set("Authorization", "Bearer "+tok)
	return req
}

// benchGet runs an authenticated GET of the path setup returns, on each pairing.
func benchGet(b *testing.B, setup func(b *testing.B, s *testServer, u client.User) string) {
	for _, name := range []string{"embedded", "production"} {
		b.Run(name, func(b *testing.B) {
			s, rtt := benchServer(b, name)
			u, tok, _ := s.member(b, "bench@example.com")
			path := setup(b, s, u)
			b.ReportAllocs()
			before := rtt.Load()
			b.ResetTimer()
			for b.Loop() {
				serve(b, s.Handler, authed(httptest.NewRequest("GET", path, nil), tok), http.StatusOK)
			}
			reportRTT(b, rtt, before)
		})
	}
}

func BenchmarkGetUser(b *testing.B) {
	benchGet(b, func(_ *testing.B, _ *testServer, u client.User) string { return fmt.Sprintf("/users/%d", u.Id) })
}

func BenchmarkGetVehicle(b *testing.B) {
	benchGet(b, func(b *testing.B, s *testServer, u client.User) string {
		return fmt.Sprintf("/vehicles/%d", mustVehicle(b, s, u.Id, 1).Id)
	})
}

func BenchmarkCreateVehicle(b *testing.B) {
	for _, name := range []string{"embedded", "production"} {
		b.Run(name, func(b *testing.B) {
			s, rtt := benchServer(b, name)
			_, tok, _ := s.member(b, "bench@example.com")
			var n atomic.Int64
			b.ReportAllocs()
			before := rtt.Load()
			b.ResetTimer()
			for b.Loop() {
				body := fmt.Sprintf(`{"make":"Toyota","model":"Corolla","year":2020,"vin":%q,"licensePlate":"AB-123-CD","color":"blue"}`, vin(int(n.Add(1))))
				req := authed(httptest.NewRequest("POST", "/vehicles", strings.NewReader(body)), tok)
				req.Header.Set("Content-Type", "application/json")
				serve(b, s.Handler, req, http.StatusCreated)
			}
			reportRTT(b, rtt, before)
		})
	}
}

// BenchmarkLogin is dominated by argon2id (19 MiB, t=2), as it should be.
func BenchmarkLogin(b *testing.B) {
	for _, name := range []string{"embedded", "production"} {
		b.Run(name, func(b *testing.B) {
			s, rtt := benchServer(b, name)
			mustUser(b, s, "bench@example.com")
			body := `{"email":"bench@example.com","password":"` + testPassword + `"}`
			b.ReportAllocs()
			before := rtt.Load()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/auth/login", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				serve(b, s.Handler, req, http.StatusOK)
			}
			reportRTT(b, rtt, before)
		})
	}
}

// countingStore counts the store calls the handlers make (database queries).
type countingStore struct {
	storage.Store
	n *atomic.Int64
}

func (s countingStore) GetUser(ctx context.Context, id int64) (storage.User, error) {
	s.n.Add(1)
	return s.Store.GetUser(ctx, id)
}

func (s countingStore) ListVehicles(ctx context.Context, f storage.VehicleFilter, p storage.Page) ([]storage.Vehicle, error) {
	s.n.Add(1)
	return s.Store.ListVehicles(ctx, f, p)
}

// cacheBench builds a production server (PostgreSQL, Valkey) whose reads are uncached, cached
// in Valkey only (every hit a round trip), or cached with the local tier too. It counts
// database queries and the round trips of the auth state and of the cache separately.
func cacheBench(b *testing.B, mode string) (s *testServer, dbq, authRTT, cacheRTT *atomic.Int64) {
	dbq, cacheRTT = new(atomic.Int64), new(atomic.Int64)
	be, authRTT := countedBackend(b)
	if mode != "uncached" {
		c, err := valkey.OpenCache(context.Background(), valkey.Config{Addrs: []string{valkeyAddr()}, KeyPrefix: be.valkey.KeyPrefix(),
			Wrap: func(c valkeygo.Client) valkeygo.Client { return roundTrips{c, cacheRTT} }},
			valkey.CacheOptions{RemoteOnly: mode == "valkey"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		be.cache = c
	}
	be = observed(b, be)
	be.store = countingStore{be.store, dbq}
	return newTestServer(b, be), dbq, authRTT, cacheRTT
}

func runCached(b *testing.B, mode, path string, setup func(b *testing.B, s *testServer) string) {
	s, dbq, authRTT, cacheRTT := cacheBench(b, mode)
	tok := setup(b, s)
	serve(b, s.Handler, authed(httptest.NewRequest("GET", path, nil), tok), http.StatusOK) // warm
	q0, a0, c0 := dbq.Load(), authRTT.Load(), cacheRTT.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		serve(b, s.Handler, authed(httptest.NewRequest("GET", path, nil), tok), http.StatusOK)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(dbq.Load()-q0)/n, "db-queries/op")
	b.ReportMetric(float64(authRTT.Load()-a0)/n, "auth-rtt/op")
	b.ReportMetric(float64(cacheRTT.Load()-c0)/n, "cache-rtt/op")
}

// BenchmarkCacheGetUser: GET /users/{id} uncached, cached in Valkey, and in the local tier.
func BenchmarkCacheGetUser(b *testing.B) {
	for _, mode := range []string{"uncached", "valkey", "local"} {
		b.Run(mode, func(b *testing.B) {
			// The admin is user 1 of the fresh database.
			runCached(b, mode, "/users/1", func(b *testing.B, s *testServer) string {
				if s.Admin.Id != 1 {
					b.Fatalf("admin id %d, want 1", s.Admin.Id)
				}
				return s.token
			})
		})
	}
}

// BenchmarkCacheListVehicles: GET /vehicles (a page of 20) the same three ways.
func BenchmarkCacheListVehicles(b *testing.B) {
	for _, mode := range []string{"uncached", "valkey", "local"} {
		b.Run(mode, func(b *testing.B) {
			runCached(b, mode, "/vehicles", func(b *testing.B, s *testServer) string {
				for i := range 20 {
					mustVehicle(b, s, s.Admin.Id, i+1)
				}
				return s.token
			})
		})
	}
}

// BenchmarkRateLimitHTTP: GET /vehicles/{id} (cached in the local tier) through real HTTP on
// loopback, PostgreSQL and Valkey, on two servers at once, one with the limiter off and one
// with it on (the admin's multiplier is raised so nothing is refused: every request pays the
// full check). Both get the same requests from 32 clients, in alternating slices, so that the
// machine's drift (a shared machine's speed changes over seconds) falls on both alike. It
// reports, for each, requests per second, p99 latency, the round trips of the client the auth
// state and the limiter share (the limiter's are on minus off), and CPU per request of this
// process and of Valkey; and cost-%, the throughput the limiter costs.
func BenchmarkRateLimitHTTP(b *testing.B) {
	type side struct {
		name       string
		url, token string
		rtt        *atomic.Int64
		lat        []time.Duration
		elapsed    time.Duration
		cpu, vcpu  time.Duration
		trips      int64
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	get := func(url, token string) (time.Duration, error) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET %s: %d", url, resp.StatusCode)
		}
		return time.Since(start), nil
	}
	open := func(limited bool) *side {
		be, rtt := countedBackend(b)
		be.cache = openValkeyCache(b, be.valkey.KeyPrefix(), nil)
		var opts []serverOption
		if limited {
			// The backend's limiter, charged with the session check, as main wires it.
			opts = append(opts, withRateLimit(func(c *api.RateLimitConfig) {
				c.Multipliers[storage.RoleAdmin] = 1e6
				c.IPMax, c.UserMax = 1e9, 1e9
			}))
		}
		s := newTestServer(b, be, opts...)
		v := mustVehicle(b, s, s.Admin.Id, 1)
		sd := &side{name: map[bool]string{false: "off", true: "on"}[limited], url: fmt.Sprintf("%s/vehicles/%d", s.URL, v.Id), token: s.token, rtt: rtt}
		if _, err := get(sd.url, sd.token); err != nil { // fills the cache, loads the scripts
			b.Fatal(err)
		}
		return sd
	}
	sides := []*side{open(false), open(true)}
	info := valkeytest.Open(b) // reads Valkey's CPU time without counting as a round trip
	// run sends n requests to sd from many clients at once, as a server sees them: throughput
	// is then bound by work, not by one client's round trips.
	run := func(sd *side, n int) {
		var next atomic.Int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs := make(chan error, 1)
		cpu0, vcpu0, trips0 := processCPU(), valkeyCPU(b, info), sd.rtt.Load()
		start := time.Now()
		for range 32 {
			wg.Go(func() {
				var mine []time.Duration
				for next.Add(1) <= int64(n) {
					d, err := get(sd.url, sd.token)
					if err != nil {
						select {
						case errs <- err:
						default:
						}
						return
					}
					mine = append(mine, d)
				}
				mu.Lock()
				sd.lat = append(sd.lat, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
		sd.elapsed += time.Since(start)
		sd.cpu += processCPU() - cpu0
		sd.vcpu += valkeyCPU(b, info) - vcpu0
		sd.trips += sd.rtt.Load() - trips0
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
	}
	b.ResetTimer()
	for done, round := 0, 0; done < b.N; round++ {
		n := min(2000, b.N-done)
		run(sides[round%2], n)
		run(sides[(round+1)%2], n)
		done += n
	}
	b.StopTimer()
	rate := func(sd *side) float64 { return float64(len(sd.lat)) / sd.elapsed.Seconds() }
	for _, sd := range sides {
		slices.Sort(sd.lat)
		n := float64(len(sd.lat))
		b.ReportMetric(rate(sd), sd.name+"-req/s")
		b.ReportMetric(float64(sd.lat[len(sd.lat)*99/100].Microseconds()), sd.name+"-p99-µs")
		b.ReportMetric(float64(sd.trips)/n, sd.name+"-valkey-rtt/op")
		// CPU per request is steadier than req/s on a shared machine: the clients, the
		// servers and Valkey all run on the same cores.
		b.ReportMetric(float64(sd.cpu.Microseconds())/n, sd.name+"-cpu-µs/op")
		b.ReportMetric(float64(sd.vcpu.Microseconds())/n, sd.name+"-valkey-cpu-µs/op")
	}
	b.ReportMetric(100*(1-rate(sides[1])/rate(sides[0])), "cost-%")
}

// processCPU is the CPU time this process (clients and server) has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// valkeyCPU is the CPU time the Valkey server has used (INFO cpu).
func valkeyCPU(b *testing.B, c *valkey.Client) time.Duration {
	info, err := c.Valkey().Do(context.Background(), c.Valkey().B().Info().Section("cpu").Build()).ToString()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}
