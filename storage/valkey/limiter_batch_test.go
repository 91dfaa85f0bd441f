package valkey_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
)

// gated holds the first two calls into valkey-go until each is released, and records how
// many keys each call carried.
type gated struct {
	valkeygo.Client
	held    chan struct{}
	release [2]chan struct{}
	n       atomic.Int32
	mu      sync.Mutex
	keys    []int // per call, the script's key count
}

func (g *gated) DoMulti(ctx context.Context, cmds ...valkeygo.Completed) []valkeygo.ValkeyResult {
	if n := g.n.Add(1); n <= 2 {
		g.held <- struct{}{}
		<-g.release[n-1]
	}
	g.mu.Lock()
	for _, c := range cmds {
		if a := c.Commands(); len(a) > 2 && a[0] == "EVALSHA" {
			var k int
			fmt.Sscan(a[2], &k)
			g.keys = append(g.keys, k)
		}
	}
	g.mu.Unlock()
	return g.Client.DoMulti(ctx, cmds...)
}

// TestLimiterBatches: requests arriving while two batches are on the wire go out together in
// the next one, one script call for all of them, and each is still decided on its own,
// all-or-nothing, in arrival order.
func TestLimiterBatches(t *testing.T) {
	c := valkeytest.Open(t)
	g := &gated{held: make(chan struct{}), release: [2]chan struct{}{make(chan struct{}), make(chan struct{})}}
	l := valkey.NewLimiter(openAlso(t, c, "", valkey.Config{CommandTimeout: 5 * time.Second,
		Wrap: func(vk valkeygo.Client) valkeygo.Client { g.Client = vk; return g }}), 0)
	shared := storage.LimitRequest{Key: "rate_limit:ip:{192.0.2.1}:global", Limit: 8, Window: time.Hour}
	own := func(i int) storage.LimitRequest {
		return storage.LimitRequest{Key: fmt.Sprintf("rate_limit:user:{%d}:op", i), Limit: 1, Window: time.Hour}
	}
	type answer struct {
		res []storage.LimitResult
		err error
	}
	answers := make([]chan answer, 12)
	ask := func(i int, reqs ...storage.LimitRequest) {
		answers[i] = make(chan answer, 1)
		go func() {
			res, err := l.Allow(context.Background(), reqs)
			answers[i] <- answer{res, err}
		}()
	}
	// Two requests hold both places in flight.
	ask(0, shared, own(0))
	<-g.held
	ask(1, shared, own(1))
	<-g.held
	// Ten more queue; every third asks its own bucket twice, more than it holds, and so must
	// take nothing from the shared one.
	for i := 2; i < 12; i++ {
		if i%3 == 0 {
			ask(i, shared, own(i), own(i))
		} else {
			ask(i, shared, own(i))
		}
		for valkey.BatchQueued(l) != i-1 {
			time.Sleep(time.Millisecond) // polling the queue, not waiting for a timing
		}
	}
	// Request 0's call goes through; the next batch follows it at once, while request 1's is
	// still held. So the shared bucket of 8 sees request 0, then the batch in arrival order
	// (3, 6 and 9 refuse themselves and take nothing; 2, 4, 5, 7, 8, 10 and 11 take the other
	// seven), then request 1, which finds it empty.
	close(g.release[0])
	check := func(i int) {
		a := <-answers[i]
		if a.err != nil {
			t.Fatalf("request %d: %v", i, a.err)
		}
		ok := true
		for _, r := range a.res {
			ok = ok && r.Allowed
		}
		if want := i != 1 && (i == 0 || i%3 != 0); ok != want {
			t.Errorf("request %d: allowed %v, want %v (%+v)", i, ok, want, a.res)
		}
	}
	check(0)
	for i := 2; i < 12; i++ {
		check(i)
	}
	close(g.release[1])
	check(1)
	// A refused request was charged nothing: its own bucket still holds its token.
	for _, i := range []int{1, 3, 6, 9} {
		res, err := l.Allow(context.Background(), []storage.LimitRequest{own(i)})
		if err != nil || !res[0].Allowed {
			t.Errorf("request %d's own bucket afterwards: %+v, %v; want its token still there", i, res, err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	got := slices.Sorted(slices.Values(g.keys))
	if want := []int{1, 1, 1, 1, 2, 2, 23}; !slices.Equal(got, want) {
		t.Fatalf("script calls carried %v keys, want %v: the ten queued requests in one call", got, want)
	}
}
