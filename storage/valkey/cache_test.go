package valkey_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/storagetest"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
)

// openCache opens a cache on c's server (a cluster if c is on one) under c's key prefix (so
// c's cleanup deletes its keys); several caches on one c are several instances sharing a
// server.
func openCache(t *testing.T, c *valkey.Client, opt valkey.CacheOptions) *valkey.Cache {
	t.Helper()
	ca, err := valkey.OpenCache(t.Context(), valkey.Config{
		Addrs: serverAddrs(c), KeyPrefix: c.KeyPrefix(),
		DialTimeout: 5 * time.Second, CommandTimeout: 5 * time.Second,
	}, opt)
	if err != nil {
		t.Fatalf("OpenCache: %v", err)
	}
	t.Cleanup(func() { ca.Close() })
	return ca
}

// testOptions are roomier than production's timeouts: the test machine is busy.
var cacheTestOptions = valkey.CacheOptions{Timeout: 2 * time.Second}

func TestCache(t *testing.T) { runCacheSuites(t, valkeytest.Open) }

// runCacheSuites runs the cache conformance suites on caches sharing client's server.
func runCacheSuites(t *testing.T, client func(testing.TB) *valkey.Client) {
	storagetest.RunCache(t, func(t *testing.T) storage.Cache {
		return openCache(t, client(t), cacheTestOptions)
	})
	storagetest.RunCacheObserved(t, func(t *testing.T, obs storage.CacheObserver) storage.Cache {
		opt := cacheTestOptions
		opt.Observer = obs
		return openCache(t, client(t), opt)
	})
}

func fillOf(v string, n *atomic.Int64) storage.FillFunc {
	return func(context.Context) ([]byte, time.Duration, error) {
		if n != nil {
			n.Add(1)
		}
		return []byte(v), 0, nil
	}
}

// TestCacheTTLJitter reads the PTTLs the server holds: within ±10% of the nominal TTL, and
// spread.
func TestCacheTTLJitter(t *testing.T) {
	c := valkeytest.Open(t)
	ca := openCache(t, c, cacheTestOptions)
	s := server{t: t, c: c, vk: c.Valkey()}
	const ttl = 100 * time.Second
	seen := map[time.Duration]bool{}
	for i := range 30 {
		k := "user:" + strconv.Itoa(i)
		if _, _, err := ca.Get(t.Context(), k, ttl, fillOf("v", nil)); err != nil {
			t.Fatal(err)
		}
		p := s.pttl(k)
		if p < 90*time.Second-time.Second || p > 110*time.Second {
			t.Errorf("PTTL %s = %v, want within [90s, 110s]", k, p)
		}
		seen[p/time.Second] = true
	}
	if len(seen) < 5 {
		t.Errorf("30 PTTLs fell in %d distinct seconds, want them spread", len(seen))
	}
	// A fill's own TTL (a negative entry) is jittered too.
	_, _, err := ca.Get(t.Context(), "user:404", ttl, func(context.Context) ([]byte, time.Duration, error) {
		return []byte("404"), 30 * time.Second, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := s.pttl("user:404"); p < 26*time.Second || p > 33*time.Second {
		t.Errorf("PTTL of a 30 s entry = %v", p)
	}
	if got := s.get("user:404"); got != "v404" {
		t.Errorf("stored %q, want the tag byte and the value", got)
	}
}

// TestCacheLocalTier: the second read of a key is served from process memory.
func TestCacheLocalTier(t *testing.T) {
	ca := openCache(t, valkeytest.Open(t), cacheTestOptions)
	ctx := t.Context()
	var srcs []storage.Source
	for range 3 {
		_, src, err := ca.Get(ctx, "user:1", time.Minute, fillOf("v", nil))
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, src)
	}
	if srcs[0] != storage.SourceFill || srcs[1] != storage.SourceRemote && srcs[1] != storage.SourceLocal || srcs[2] != storage.SourceLocal {
		t.Errorf("sources %v, want fill, then remote or local, then local", srcs)
	}
}

// TestCacheSingleFlightAcrossInstances: 50 concurrent misses spread over two instances sharing
// one server run fill once in all.
func TestCacheSingleFlightAcrossInstances(t *testing.T) {
	c := valkeytest.Open(t)
	cas := []*valkey.Cache{openCache(t, c, cacheTestOptions), openCache(t, c, cacheTestOptions)}
	var n atomic.Int64
	fill := func(context.Context) ([]byte, time.Duration, error) {
		n.Add(1)
		time.Sleep(150 * time.Millisecond)
		return []byte("v"), 0, nil
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			v, _, err := cas[i%2].Get(t.Context(), "hot", time.Minute, fill)
			if err != nil || string(v) != "v" {
				t.Errorf("Get = %q, %v", v, err)
			}
		})
	}
	wg.Wait()
	if n.Load() != 1 {
		t.Errorf("fill ran %d times across two instances, want 1", n.Load())
	}
}

// TestCacheStaleSetAcrossInstances: instance A's slow fill is overtaken by instance B's
// invalidation; A's old value is not stored, and neither instance serves it afterwards.
func TestCacheStaleSetAcrossInstances(t *testing.T) {
	c := valkeytest.Open(t)
	a, b := openCache(t, c, cacheTestOptions), openCache(t, c, cacheTestOptions)
	ctx := t.Context()
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Get(ctx, "user:7", time.Minute, func(context.Context) ([]byte, time.Duration, error) {
			close(started)
			<-release
			return []byte("old"), 0, nil
		})
	}()
	<-started
	if err := b.Invalidate(ctx, []string{"user:7"}, nil); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
	for name, ca := range map[string]*valkey.Cache{"a": a, "b": b} {
		v, _, err := ca.Get(ctx, "user:7", time.Minute, fillOf("new", nil))
		if err != nil || string(v) != "new" {
			t.Errorf("%s: Get = %q, %v; want \"new\"", name, v, err)
		}
	}
}

// TestCacheRemoteInvalidation: an invalidation by another instance reaches this one's local
// tier within a second.
func TestCacheRemoteInvalidation(t *testing.T) {
	c := valkeytest.Open(t)
	a, b := openCache(t, c, cacheTestOptions), openCache(t, c, cacheTestOptions)
	ctx := t.Context()
	for i := range 20 {
		old := "v" + strconv.Itoa(i)
		a.Get(ctx, "user:1", time.Minute, fillOf(old, nil))
		if _, src, _ := a.Get(ctx, "user:1", time.Minute, fillOf("x", nil)); src != storage.SourceLocal {
			// The first read after a fill may still go to the server; the next is local.
			if _, src, _ = a.Get(ctx, "user:1", time.Minute, fillOf("x", nil)); src != storage.SourceLocal {
				t.Fatalf("round %d: not in the local tier (%v)", i, src)
			}
		}
		vver, err := a.Version(ctx, "users:all")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Invalidate(ctx, []string{"user:1"}, []string{"users:all"}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Second)
		for {
			v, _, err := a.Get(ctx, "user:1", time.Minute, fillOf("new"+old, nil))
			if err != nil {
				t.Fatal(err)
			}
			ver, err := a.Version(ctx, "users:all")
			if err != nil {
				t.Fatal(err)
			}
			if string(v) != old && ver > vver {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: a still serves %q (version %d) a second after b's invalidation", i, v, ver)
			}
			time.Sleep(time.Millisecond)
		}
		a.Invalidate(ctx, []string{"user:1"}, nil)
	}
}

// TestCacheOutage stops a private server mid-test: reads fall through to fill within a bounded
// time, the breaker opens and then fails calls at once; once the server is back on its port,
// a probe closes the breaker.
func TestCacheOutage(t *testing.T) {
	srv := startRedis(t)
	rec := &storagetest.CacheRecorder{}
	ca, err := valkey.OpenCache(t.Context(), valkey.Config{Addrs: []string{srv.addr}, KeyPrefix: "outage:"}, valkey.CacheOptions{
		Timeout: 200 * time.Millisecond, BreakerFailures: 3, BreakerCooldown: 300 * time.Millisecond, Observer: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	ctx := t.Context()
	if v, src, err := ca.Get(ctx, "user:1", time.Minute, fillOf("v1", nil)); err != nil || string(v) != "v1" || src != storage.SourceFill {
		t.Fatalf("Get with the server up = %q, %v, %v", v, src, err)
	}

	srv.stop()
	for i := range 5 {
		start := time.Now()
		var n atomic.Int64
		v, src, err := ca.Get(ctx, "user:"+strconv.Itoa(i+2), time.Minute, fillOf("db", &n))
		if d := time.Since(start); d > time.Second {
			t.Errorf("Get %d with the server down took %v, want < 1 s", i, d)
		}
		if err != nil || string(v) != "db" || src != storage.SourceBypass || n.Load() != 1 {
			t.Errorf("Get %d with the server down = %q, %v, %v (fill ran %d times); want fill's value, bypass", i, v, src, err, n.Load())
		}
	}
	if !ca.BreakerOpen() {
		t.Fatal("breaker still closed after 5 failed reads")
	}
	if rec.Count(storage.CacheBreakerOpen) != 1 || rec.Count(storage.CacheError) == 0 {
		t.Errorf("events: %d breaker opens, %d errors", rec.Count(storage.CacheBreakerOpen), rec.Count(storage.CacheError))
	}
	// Open: fail fast, without touching the network.
	start := time.Now()
	for range 100 {
		if _, src, _ := ca.Get(ctx, "user:1", time.Minute, fillOf("db", nil)); src != storage.SourceBypass {
			t.Fatalf("Get with the breaker open: %v", src)
		}
	}
	if err := ca.Invalidate(ctx, []string{"user:1"}, nil); !errors.Is(err, storage.ErrCacheUnavailable) {
		t.Errorf("Invalidate with the breaker open: %v, want ErrCacheUnavailable", err)
	}
	if _, err := ca.Version(ctx, "users:all"); !errors.Is(err, storage.ErrCacheUnavailable) {
		t.Errorf("Version with the breaker open: %v, want ErrCacheUnavailable", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("102 calls with the breaker open took %v, want them to fail fast", d)
	}

	srv.start()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, src, err := ca.Get(ctx, "user:1", time.Minute, fillOf("v2", nil))
		if err != nil {
			t.Fatal(err)
		}
		if !ca.BreakerOpen() && src != storage.SourceBypass {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("breaker did not close within 5 s of the server's return")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rec.Count(storage.CacheBreakerClose) == 0 {
		t.Error("no breaker close reported")
	}
	if err := ca.Invalidate(ctx, []string{"user:1"}, nil); err != nil {
		t.Errorf("Invalidate after recovery: %v", err)
	}
}

// redisServer is a redis-server of the test's own, on a fixed free port, without persistence.
type redisServer struct {
	t    *testing.T
	addr string
	port string
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not on PATH")
		}
		t.Skip("redis-server is not on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	s := &redisServer{t: t, addr: addr, port: port}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--port", s.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not start: %v", s.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}
