package valkey_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/storagetest"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
)

func TestLimiter(t *testing.T) {
	storagetest.RunLimiter(t, func(t *testing.T) storage.Limiter {
		return valkey.NewLimiter(valkeytest.Open(t), 0)
	})
}

// testAddr is the server valkeytest uses.
func testAddr() string {
	if addr := os.Getenv("TEST_VALKEY_ADDR"); addr != "" {
		return addr
	}
	return valkeytest.DefaultAddr
}

// serverAddrs are the addresses of c's server: its one address, or every node of a cluster.
func serverAddrs(c *valkey.Client) []string {
	return slices.Sorted(maps.Keys(c.Valkey().Nodes()))
}

// openAlso opens another client on c's server (a cluster if c is on one), under c's key prefix
// (so it sees c's keys, and c's cleanup deletes them), through addr when not empty. It is
// closed when t ends.
func openAlso(t *testing.T, c *valkey.Client, addr string, cfg valkey.Config) *valkey.Client {
	t.Helper()
	cfg.Addrs, cfg.KeyPrefix = serverAddrs(c), c.KeyPrefix()
	if addr != "" {
		cfg.Addrs = []string{addr}
	}
	other, err := valkey.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open another client: %v", err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

// TestLimiterInstancesShareBuckets: 300 requests at once from three service instances (three
// clients, three pools) sharing one server against a limit of 50 let exactly 50 through.
func TestLimiterInstancesShareBuckets(t *testing.T) {
	limiterInstancesShareBuckets(t, valkeytest.Open(t))
}

func limiterInstancesShareBuckets(t *testing.T, c *valkey.Client) {
	limiters := []storage.Limiter{
		valkey.NewLimiter(c, 0),
		valkey.NewLimiter(openAlso(t, c, "", valkey.Config{CommandTimeout: 5 * time.Second}), 0),
		valkey.NewLimiter(openAlso(t, c, "", valkey.Config{CommandTimeout: 5 * time.Second}), 0),
	}
	for _, alg := range storage.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			r := storage.LimitRequest{Key: "rate_limit:user:{7}:" + string(alg), Limit: 50, Window: time.Minute, Algorithm: alg}
			if got := storagetest.ConcurrentAllowed(t, limiters, r, 300); got != 50 {
				t.Errorf("%d of 300 concurrent requests over 3 instances allowed, want exactly 50", got)
			}
		})
	}
}

// TestLimiterKeys checks the documented key names, types, contents and PTTLs on the server.
func TestLimiterKeys(t *testing.T) {
	ctx := t.Context()
	c := valkeytest.Open(t)
	l := valkey.NewLimiter(c, 0)
	srv := server{t: t, c: c, vk: c.Valkey()}
	vk := c.Valkey()
	kind := func(key string) string {
		t.Helper()
		s, err := vk.Do(ctx, vk.B().Type().Key(c.Key(key)).Build()).ToString()
		if err != nil {
			t.Fatalf("TYPE %s: %v", key, err)
		}
		return s
	}
	allow := func(r storage.LimitRequest) {
		t.Helper()
		if _, err := l.Allow(ctx, []storage.LimitRequest{r}); err != nil {
			t.Fatal(err)
		}
	}

	// Token bucket: 10 a minute, a token per 6 s; the key lives until the bucket is full.
	tb := storage.LimitRequest{Key: "rate_limit:ip:{203.0.113.7}:getUser", Limit: 10, Window: time.Minute}
	allow(tb)
	srv.checkTTL(tb.Key, 6*time.Second)
	allow(tb)
	srv.checkTTL(tb.Key, 12*time.Second)
	if k := kind(tb.Key); k != "string" {
		t.Errorf("token bucket key is a %s, want a string", k)
	}

	// Sliding window: a member per token; the key lives a window after the last one.
	sw := storage.LimitRequest{Key: "rate_limit:user:{42}:listVehicles", Limit: 10, Window: 30 * time.Second, Algorithm: storage.SlidingWindow}
	allow(sw)
	sw.Cost = 3
	allow(sw)
	srv.checkTTL(sw.Key, 30*time.Second)
	if n, err := vk.Do(ctx, vk.B().Zcard().Key(c.Key(sw.Key)).Build()).AsInt64(); err != nil || n != 4 {
		t.Errorf("ZCARD of the sliding window = %d, %v; want 4", n, err)
	}

	// Fixed window: start and count; the key lives until the window ends, not moved by later
	// requests.
	fw := storage.LimitRequest{Key: "rate_limit:ip:{203.0.113.7}:global", Limit: 10, Window: 20 * time.Second, Algorithm: storage.FixedWindow}
	allow(fw)
	time.Sleep(1100 * time.Millisecond)
	allow(fw)
	srv.checkTTL(fw.Key, 19*time.Second)
	h := srv.hgetall(fw.Key)
	if h["n"] != "2" || len(h) != 2 {
		t.Errorf("fixed window hash = %v, want start and n=2", h)
	}
	if _, err := strconv.ParseInt(h["start"], 10, 64); err != nil {
		t.Errorf("fixed window start %q: %v", h["start"], err)
	}

	// A denied request writes nothing: the TTL does not move.
	deny := storage.LimitRequest{Key: "rate_limit:ip:{203.0.113.9}:login", Limit: 1, Window: 10 * time.Second, Algorithm: storage.FixedWindow}
	allow(deny)
	time.Sleep(1100 * time.Millisecond)
	allow(deny)
	srv.checkTTL(deny.Key, 9*time.Second)

	// Every key is the caller's, under the prefix, braces and all.
	for _, k := range []string{tb.Key, sw.Key, fw.Key, deny.Key} {
		if !srv.exists(k) {
			t.Errorf("key %s%s does not exist", c.KeyPrefix(), k)
		}
	}
}

// TestLimiterUsesServerClock: the buckets are stamped with the server's TIME, not the
// application's clock (which the scripts never see, so a skewed instance clock cannot matter).
func TestLimiterUsesServerClock(t *testing.T) {
	ctx := t.Context()
	c := valkeytest.Open(t)
	vk := c.Valkey()
	l := valkey.NewLimiter(c, 0)
	serverNow := func() time.Time {
		tm, err := vk.Do(ctx, vk.B().Time().Build()).AsStrSlice()
		if err != nil || len(tm) != 2 {
			t.Fatalf("TIME = %v, %v", tm, err)
		}
		s, _ := strconv.ParseInt(tm[0], 10, 64)
		us, _ := strconv.ParseInt(tm[1], 10, 64)
		return time.Unix(s, us*1000)
	}
	r := storage.LimitRequest{Key: "rate_limit:user:{1}:global", Limit: 10, Window: 10 * time.Minute}
	before := serverNow()
	if _, err := l.Allow(ctx, []storage.LimitRequest{r}); err != nil {
		t.Fatal(err)
	}
	after := serverNow()
	v, err := vk.Do(ctx, vk.B().Get().Key(c.Key(r.Key)).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	// Full again one interval (a minute) after the script's TIME.
	tat := time.UnixMicro(v)
	if tat.Before(before.Add(time.Minute)) || tat.After(after.Add(time.Minute)) {
		t.Errorf("bucket full at %v, want a minute after the server's time, within [%v, %v]", tat, before.Add(time.Minute), after.Add(time.Minute))
	}
}

// counting is a valkey-go client that counts the calls that go through it and the commands
// marked retryable among them.
type counting struct {
	valkeygo.Client
	do, multi, retryable atomic.Int64
	// cached counts DoCache and DoMultiCache calls; missed, those of them that went to the
	// server (a result that was not a local cache hit: one round trip for the call).
	cached, missed atomic.Int64
}

func (c *counting) DoCache(ctx context.Context, cmd valkeygo.Cacheable, ttl time.Duration) valkeygo.ValkeyResult {
	r := c.Client.DoCache(ctx, cmd, ttl)
	c.cached.Add(1)
	if !r.IsCacheHit() {
		c.missed.Add(1)
	}
	return r
}

func (c *counting) DoMultiCache(ctx context.Context, multi ...valkeygo.CacheableTTL) []valkeygo.ValkeyResult {
	res := c.Client.DoMultiCache(ctx, multi...)
	c.cached.Add(1)
	for _, r := range res {
		if !r.IsCacheHit() {
			c.missed.Add(1)
			break
		}
	}
	return res
}

// roundTrips is how many calls went to the server.
func (c *counting) roundTrips() int64 { return c.do.Load() + c.multi.Load() + c.missed.Load() }

func (c *counting) Do(ctx context.Context, cmd valkeygo.Completed) valkeygo.ValkeyResult {
	c.do.Add(1)
	if cmd.IsRetryable() {
		c.retryable.Add(1)
	}
	return c.Client.Do(ctx, cmd)
}

func (c *counting) DoMulti(ctx context.Context, cmds ...valkeygo.Completed) []valkeygo.ValkeyResult {
	c.multi.Add(1)
	for _, cmd := range cmds {
		if cmd.IsRetryable() {
			c.retryable.Add(1)
		}
	}
	return c.Client.DoMulti(ctx, cmds...)
}

func (c *counting) reset() {
	c.do.Store(0)
	c.multi.Store(0)
	c.retryable.Store(0)
	c.cached.Store(0)
	c.missed.Store(0)
}

// openCounting opens another client on c's server and key prefix whose calls cnt counts.
func openCounting(t *testing.T, c *valkey.Client) (*valkey.Client, *counting) {
	t.Helper()
	cnt := &counting{}
	wrapped := openAlso(t, c, "", valkey.Config{
		CommandTimeout: 5 * time.Second,
		Wrap: func(vk valkeygo.Client) valkeygo.Client {
			cnt.Client = vk
			return cnt
		},
	})
	return wrapped, cnt
}

// TestLimiterRoundTrips: one Allow is one pipelined call however many buckets it charges, in
// any mix of slots, and none of its commands is one valkey-go may retry. After the server
// loses its scripts, one more round trip resends them, and no bucket is charged twice.
func TestLimiterRoundTrips(t *testing.T) {
	ctx := t.Context()
	c := valkeytest.Open(t)
	wrapped, cnt := openCounting(t, c)
	l := valkey.NewLimiter(wrapped, 0)
	reqs := func(n int, subject string) []storage.LimitRequest {
		var rs []storage.LimitRequest
		for i := range n {
			rs = append(rs, storage.LimitRequest{
				Key:       fmt.Sprintf("rate_limit:ip:{%s-%d}:op%d", subject, i%3, i),
				Limit:     5,
				Window:    time.Minute,
				Algorithm: storage.Algorithms[i%len(storage.Algorithms)],
			})
		}
		return rs
	}
	if _, err := l.Allow(ctx, reqs(3, "warm")); err != nil { // loads the scripts
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3, 10} {
		cnt.reset()
		res, err := l.Allow(ctx, reqs(n, "n"+strconv.Itoa(n)))
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != n {
			t.Fatalf("%d results for %d requests", len(res), n)
		}
		if do, multi := cnt.do.Load(), cnt.multi.Load(); do != 0 || multi != 1 {
			t.Errorf("Allow of %d buckets: %d Do and %d DoMulti calls, want 0 and 1", n, do, multi)
		}
		if r := cnt.retryable.Load(); r != 0 {
			t.Errorf("Allow of %d buckets sent %d retryable commands, want none", n, r)
		}
	}

	// SCRIPT FLUSH: the EVALSHAs fail with NOSCRIPT without running; EVAL runs them once.
	vk := c.Valkey()
	if err := vk.Do(ctx, vk.B().ScriptFlush().Build()).Error(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	cnt.reset()
	res, err := l.Allow(ctx, reqs(3, "n3"))
	if err != nil {
		t.Fatalf("Allow after SCRIPT FLUSH: %v", err)
	}
	for i, r := range res {
		if !r.Allowed || r.Remaining != 3 {
			t.Errorf("bucket %d after SCRIPT FLUSH: %+v, want allowed with 3 remaining (charged once, twice in all)", i, r)
		}
	}
	if do, multi := cnt.do.Load(), cnt.multi.Load(); do != 0 || multi != 2 {
		t.Errorf("Allow after SCRIPT FLUSH: %d Do and %d DoMulti calls, want 0 and 2", do, multi)
	}
	if r := cnt.retryable.Load(); r != 0 {
		t.Errorf("Allow after SCRIPT FLUSH sent %d retryable commands, want none", r)
	}
}

// proxy forwards TCP connections to a server until it is told to stop answering (blackhole)
// or to go away (down).
type proxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	blackhole bool
	clients   []net.Conn
	upstreams []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.down)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.clients = append(p.clients, c)
		hole := p.blackhole
		p.mu.Unlock()
		if hole {
			continue // held open, never answered
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.upstreams = append(p.upstreams, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() {
			_, _ = io.Copy(c, up)
			p.mu.Lock()
			defer p.mu.Unlock()
			if !p.blackhole {
				c.Close()
			}
		}()
	}
}

// stopAnswering keeps every connection open and forwards nothing any more.
func (p *proxy) stopAnswering() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blackhole = true
	for _, up := range p.upstreams {
		up.Close()
	}
}

// down closes the listener and every connection: connecting is refused from now on.
func (p *proxy) down() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range append(p.clients, p.upstreams...) {
		c.Close()
	}
}

// TestLimiterUnavailable: when the server goes away or stops answering, Allow fails quickly,
// within the limiter's timeout, instead of hanging the request.
func TestLimiterUnavailable(t *testing.T) {
	r := []storage.LimitRequest{{Key: "rate_limit:ip:{192.0.2.1}:global", Limit: 10, Window: time.Minute}}
	for _, tc := range []struct {
		name    string
		timeout time.Duration // the limiter's; 0 for the client's default (2s)
		fail    func(p *proxy)
		within  time.Duration
	}{
		{"down, client timeout", 0, (*proxy).down, 2 * time.Second},
		{"down, 50ms", 50 * time.Millisecond, (*proxy).down, 500 * time.Millisecond},
		{"not answering, client timeout", 0, (*proxy).stopAnswering, 2500 * time.Millisecond},
		{"not answering, 50ms", 50 * time.Millisecond, (*proxy).stopAnswering, 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := valkeytest.Open(t)
			p := newProxy(t, testAddr())
			// Production's defaults: a one-second dial timeout, a two-second command timeout.
			l := valkey.NewLimiter(openAlso(t, c, p.addr(), valkey.Config{}), tc.timeout)
			if _, err := l.Allow(t.Context(), r); err != nil {
				t.Fatalf("Allow through the proxy: %v", err)
			}
			tc.fail(p)
			for i := range 3 { // the first call notices, the next ones must not hang either
				start := time.Now()
				_, err := l.Allow(t.Context(), r)
				if err == nil {
					t.Fatalf("Allow %d with the server unavailable succeeded", i+1)
				}
				if errors.Is(err, storage.ErrInvalidLimit) {
					t.Fatalf("Allow %d: %v", i+1, err)
				}
				t.Logf("Allow %d failed after %v: %v", i+1, time.Since(start), err)
				if d := time.Since(start); d > tc.within {
					t.Errorf("Allow %d took %v to fail (%v), want under %v", i+1, d, err, tc.within)
				}
			}
		})
	}
}
