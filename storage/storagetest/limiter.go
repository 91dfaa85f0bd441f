package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage"
)

// RunLimiter runs the storage.Limiter conformance suite. Every subtest gets its own limiter from
// newLimiter, which must return a new, empty one (or one whose keys no other subtest sees) and
// release it when its t ends. The subtests run in parallel.
//
// Buckets live on the backend's clock, which the suite cannot move, so it uses the real one:
// windows of about a second, no subtest sleeping more than about 1.5 s. Timing assertions
// that depend on how fast the machine answers are made only when the measured times prove
// them (a late answer skips such a check rather than failing it), so a loaded machine makes
// the suite weaker, never flaky.
func RunLimiter(t *testing.T, newLimiter func(t *testing.T) storage.Limiter) {
	perAlgorithm := []struct {
		name string
		fn   func(t *testing.T, l storage.Limiter, alg storage.Algorithm)
	}{
		{"ExactLimit", testLimitExact},
		{"DeniedRequestsFree", testLimitDeniedFree},
		{"RemainingAndReset", testLimitRemainingReset},
		{"RetryAfterHonoured", testLimitRetryAfter},
		{"IndependentKeys", testLimitIndependentKeys},
		{"Cost", testLimitCost},
		{"Concurrent", testLimitConcurrent},
	}
	for _, alg := range storage.Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			for _, tt := range perAlgorithm {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t, newLimiter(t), alg)
				})
			}
		})
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, l storage.Limiter)
	}{
		{"Ping", testLimitPing},
		{"DefaultAlgorithm", testLimitDefaultAlgorithm},
		{"AllowMany", testLimitAllowMany},
		{"Empty", testLimitEmpty},
		{"Invalid", testLimitInvalid},
		{"SwitchAlgorithm", testLimitSwitchAlgorithm},
		{"TokenBucketRefill", testLimitTokenBucketRefill},
		{"WindowBoundary", testLimitWindowBoundary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newLimiter(t))
		})
	}
}

// Keys as the middleware builds them: literal braces around the subject.
const (
	limitKeyA = "rate_limit:ip:{203.0.113.7}:getUser"
	limitKeyB = "rate_limit:user:{42}:getUser"
	limitKeyC = "rate_limit:ip:{2001:db8:1:2::}:global"
)

// limitMinute is a window no test waits for.
const limitMinute = time.Minute

// allowOne charges one bucket and returns its result.
func allowOne(t *testing.T, l storage.Limiter, r storage.LimitRequest) storage.LimitResult {
	t.Helper()
	res, err := l.Allow(t.Context(), []storage.LimitRequest{r})
	if err != nil {
		t.Fatalf("Allow(%+v): %v", r, err)
	}
	if len(res) != 1 {
		t.Fatalf("Allow(%+v) returned %d results, want 1", r, len(res))
	}
	return res[0]
}

// timedAllow is allowOne, with when the request was sent and when its answer arrived: the
// backend decided somewhere in between.
func timedAllow(t *testing.T, l storage.Limiter, r storage.LimitRequest) (res storage.LimitResult, sent, got time.Time) {
	t.Helper()
	sent = time.Now()
	res = allowOne(t, l, r)
	return res, sent, time.Now()
}

// mustAllowN checks that the next n requests are allowed and the one after is denied.
func mustAllowN(t *testing.T, l storage.Limiter, r storage.LimitRequest, n int, when string) {
	t.Helper()
	for i := range n {
		if res := allowOne(t, l, r); !res.Allowed {
			t.Fatalf("%s: request %d of %d denied: %+v", when, i+1, n, res)
		}
	}
	if res := allowOne(t, l, r); res.Allowed {
		t.Fatalf("%s: request %d allowed, want exactly %d", when, n+1, n)
	}
}

// checkWithin checks lo <= got <= hi.
func checkWithin(t *testing.T, what string, got, lo, hi time.Duration) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("%s = %v, want within [%v, %v]", what, got, lo, hi)
	}
}

func testLimitPing(t *testing.T, l storage.Limiter) {
	if err := l.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// testLimitExact: Limit requests pass, the next ones do not, with the counts to match.
func testLimitExact(t *testing.T, l storage.Limiter, alg storage.Algorithm) {
	r := storage.LimitRequest{Key: limitKeyA, Limit: 5, Window: limitMinute, Algorithm: alg, Cost: 1}
	for i := range 5 {
		got := allowOne(t, l, r)
		if !got.Allowed || got.Limit != 5 || got.Remaining != 4-i || got.RetryAfter != 0 || got.Reset <= 0 {
			t.Errorf("request %d = %+v, want allowed, limit 5, remaining %d, no retry, a reset", i+1, got, 4-i)
		}
	}
	for i := range 3 {
		got := allowOne(t, l, r)
		if got.Allowed || got.Limit != 5 || got.Remaining != 0 || got.RetryAfter <= 0 || got.Reset <= 0 {
			t.Errorf("request %d over the limit = %+v, want denied, limit 5, remaining 0, retry and reset", 6+i, got)
		}
		if got.RetryAfter > got.Reset {
			t.Errorf("request %d: retry after %v is later than the reset %v", 6+i, got.RetryAfter, got.Reset)
		}
	}
}

// testLimitDeniedFree: a stream of denied requests does not delay the bucket's recovery. The
// wait is taken from the first denial, before the others; had they counted, fewer than
// Limit requests would pass once it is over.
func testLimitDeniedFree(t *testing.T, l storage.Limiter, alg storage.Algorithm) {
	r := storage.LimitRequest{Key: limitKeyA, Limit: 3, Window: 600 * time.Millisecond, Algorithm: alg}
	mustAllowN(t, l, r, 3, "fresh bucket")
	first, sent, got := timedAllow(t, l, r)
	if first.Allowed {
		t.Fatal("request 4 allowed")
	}
	// Denials until shortly before the retry time (a token bucket's first token is back after
	// 200ms, the windows' after 600ms): a bucket that counted them would be pushed later by
	// as much.
	denials := 0
	for time.Since(sent) < first.RetryAfter-60*time.Millisecond {
		res := allowOne(t, l, r)
		if res.Allowed && time.Since(sent) < first.RetryAfter {
			t.Fatalf("denial %d allowed %v after the first, before its retry time %v", denials+1, time.Since(sent), first.RetryAfter)
		}
		denials++
		time.Sleep(10 * time.Millisecond)
	}
	if denials == 0 {
		t.Logf("no time for denials before the retry time")
	}
	time.Sleep(time.Until(got.Add(first.Reset + 20*time.Millisecond)))
	mustAllowN(t, l, r, 3, "after the first denial's reset")
}

// testLimitRemainingReset checks Remaining and Reset request by request, against bounds the
// test's own clock proves: the backend decided between a request's sending and its answer.
func testLimitRemainingReset(t *testing.T, l storage.Limiter, alg storage.Algorithm) {
	const limit, window = 4, 4 * time.Second
	r := storage.LimitRequest{Key: limitKeyA, Limit: limit, Window: window, Algorithm: alg}
	interval := window / limit
	var res [limit + 1]storage.LimitResult
	var sent, got [limit + 1]time.Time
	for i := range res {
		res[i], sent[i], got[i] = timedAllow(t, l, r)
	}
	if got[limit].Sub(sent[0]) >= interval {
		t.Skipf("%d requests took %v, too slow to tell the values apart", limit+1, got[limit].Sub(sent[0]))
	}
	// The backend's time between request i and request j is at most span(i, j).
	span := func(i, j int) time.Duration { return got[j].Sub(sent[i]) }
	for i := range limit {
		if !res[i].Allowed || res[i].Remaining != limit-1-i || res[i].RetryAfter != 0 {
			t.Errorf("request %d = %+v, want allowed, remaining %d, no retry", i+1, res[i], limit-1-i)
		}
		switch alg {
		case storage.TokenBucket:
			// Full again one interval per token taken after request 1.
			want := time.Duration(i+1) * interval
			checkWithin(t, fmt.Sprintf("reset of request %d", i+1), res[i].Reset, want-span(0, i), want)
		case storage.SlidingWindow:
			// Clear when this request's token leaves the window: exactly a window later.
			if res[i].Reset != window {
				t.Errorf("request %d: reset = %v, want the window, %v", i+1, res[i].Reset, window)
			}
		case storage.FixedWindow:
			// The window opened with request 1.
			checkWithin(t, fmt.Sprintf("reset of request %d", i+1), res[i].Reset, window-span(0, i), window)
		}
	}
	d := res[limit]
	if d.Allowed || d.Remaining != 0 {
		t.Fatalf("request %d = %+v, want denied with 0 remaining", limit+1, d)
	}
	switch alg {
	case storage.TokenBucket:
		// Full a window after request 1 (four tokens, an interval each); one token back an
		// interval after request 1.
		checkWithin(t, "reset of the denial", d.Reset, window-span(0, limit), window)
		checkWithin(t, "retry after of the denial", d.RetryAfter, interval-span(0, limit), interval)
	case storage.SlidingWindow:
		// Clear when request 4's token leaves; one free when request 1's does.
		checkWithin(t, "reset of the denial", d.Reset, window-span(limit-1, limit), window)
		checkWithin(t, "retry after of the denial", d.RetryAfter, window-span(0, limit), window)
	case storage.FixedWindow:
		checkWithin(t, "reset of the denial", d.Reset, window-span(0, limit), window)
		if d.RetryAfter != d.Reset {
			t.Errorf("denial: retry after %v, want the window's end, %v", d.RetryAfter, d.Reset)
		}
	}
}

// testLimitRetryAfter: a client that waits RetryAfter succeeds; one that waits clearly less
// does not (checked only when the clock proves it waited less).
func testLimitRetryAfter(t *testing.T, l storage.Limiter, alg storage.Algorithm) {
	r := storage.LimitRequest{Key: limitKeyA, Limit: 2, Window: time.Second, Algorithm: alg}
	mustAllowN(t, l, r, 2, "fresh bucket")
	d1, sent1, got1 := timedAllow(t, l, r)
	if d1.Allowed || d1.RetryAfter <= 0 {
		t.Fatalf("request 3 = %+v, want denied with a retry after", d1)
	}
	const early = 150 * time.Millisecond
	time.Sleep(time.Until(sent1.Add(d1.RetryAfter - early)))
	d2, sent2, got2 := timedAllow(t, l, r)
	if got2.Sub(sent1) < d1.RetryAfter {
		// Certainly decided before the retry time.
		if d2.Allowed {
			t.Fatalf("request %v before its retry time allowed", d1.RetryAfter-got2.Sub(sent1))
		}
		// The new retry after is the old one, less the time that passed.
		checkWithin(t, "retry after, asked again", d2.RetryAfter, d1.RetryAfter-got2.Sub(sent1), d1.RetryAfter-sent2.Sub(got1))
	} else {
		t.Logf("the early retry was answered %v after the first, too late to check", got2.Sub(sent1))
	}
	if !d2.Allowed {
		// Exactly the time it says, from when the answer arrived.
		time.Sleep(time.Until(got2.Add(d2.RetryAfter)))
		if res := allowOne(t, l, r); !res.Allowed {
			t.Fatalf("request after waiting the retry after %v denied: %+v", d2.RetryAfter, res)
		}
	}
}

func testLimitIndependentKeys(t *testing.T, l storage.Limiter, alg storage.Algorithm) {
	a := storage.LimitRequest{Key: limitKeyA, Limit: 2, Window: limitMinute, Algorithm: alg}
	mustAllowN(t, l, a, 2, "key A")
	for _, key := range []string{limitKeyB, limitKeyC, limitKeyA + "x", "rate_limit:ip:{203.0.113.8}:getUser"} {
		b := a
		b.Key = key
		if res := allowOne(t, l, b); !res.Allowed || res.Remaining != 1 {
			t.Errorf("key %s after key A was exhausted = %+v, want allowed, 1 remaining", key, res)
		}
	}
}

func testLimitCost(t *testing.T, l storage.Limiter, alg storage.Algorithm) {
	r := storage.LimitRequest{Key: limitKeyA, Limit: 5, Window: limitMinute, Algorithm: alg, Cost: 2}
	for i, want := range []struct {
		cost      int
		allowed   bool
		remaining int
	}{
		{2, true, 3},
		{2, true, 1},
		{2, false, 1}, // one token left: not enough, and not taken
		{0, true, 0},  // cost 0 means 1
		{1, false, 0},
	} {
		r.Cost = want.cost
		got := allowOne(t, l, r)
		if got.Allowed != want.allowed || got.Remaining != want.remaining {
			t.Errorf("request %d (cost %d) = %+v, want allowed %v, remaining %d", i+1, want.cost, got, want.allowed, want.remaining)
		}
	}
}

// testLimitConcurrent: 300 requests at once against a limit of 50 let exactly 50 through.
func testLimitConcurrent(t *testing.T, l storage.Limiter, alg storage.Algorithm) {
	r := storage.LimitRequest{Key: limitKeyA, Limit: 50, Window: limitMinute, Algorithm: alg}
	if got := ConcurrentAllowed(t, []storage.Limiter{l}, r, 300); got != 50 {
		t.Errorf("%d of 300 concurrent requests allowed, want exactly 50", got)
	}
}

// ConcurrentAllowed sends n single requests r at once, spread over the limiters in turn (for
// several instances sharing one backend), and returns how many were allowed.
func ConcurrentAllowed(t *testing.T, ls []storage.Limiter, r storage.LimitRequest, n int) int {
	t.Helper()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := ls[i%len(ls)].Allow(t.Context(), []storage.LimitRequest{r})
			if err != nil {
				errs <- err
				return
			}
			if res[0].Allowed {
				allowed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Allow: %v", err)
	}
	return int(allowed.Load())
}

func testLimitDefaultAlgorithm(t *testing.T, l storage.Limiter) {
	// The empty algorithm is the token bucket: half a window later, half the tokens are back.
	r := storage.LimitRequest{Key: limitKeyA, Limit: 4, Window: 800 * time.Millisecond}
	_, sent, got := timedAllow(t, l, r)
	mustAllowN(t, l, r, 3, "fresh bucket")
	// 200ms per token: at least 450ms after the backend's time of request 1, two are back.
	time.Sleep(time.Until(got.Add(450 * time.Millisecond)))
	for i := range 2 {
		if res := allowOne(t, l, r); !res.Allowed {
			t.Fatalf("half a window after emptying it, token %d denied (want a token bucket): %+v", i+1, res)
		}
	}
	// A third is due 600ms after request 1.
	if res, _, got3 := timedAllow(t, l, r); res.Allowed && got3.Sub(sent) < 600*time.Millisecond {
		t.Errorf("a third token back within %v of an 800ms window", got3.Sub(sent))
	}
}

// testLimitAllowMany: one call, several buckets, results in order; when every bucket allows,
// each is charged and repeated keys see each other; when one denies, none is charged.
func testLimitAllowMany(t *testing.T, l storage.Limiter) {
	type brief struct {
		Allowed          bool
		Limit, Remaining int
	}
	call := func(reqs []storage.LimitRequest, want []brief) {
		t.Helper()
		res, err := l.Allow(t.Context(), reqs)
		if err != nil {
			t.Fatalf("Allow: %v", err)
		}
		got := make([]brief, len(res))
		for i, r := range res {
			got[i] = brief{r.Allowed, r.Limit, r.Remaining}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Allow results (-want +got):\n%s", diff)
		}
	}
	a := storage.LimitRequest{Key: limitKeyA, Limit: 2, Window: limitMinute}
	b := storage.LimitRequest{Key: limitKeyB, Limit: 1, Window: limitMinute, Algorithm: storage.FixedWindow}
	c := storage.LimitRequest{Key: limitKeyC, Limit: 3, Window: limitMinute, Algorithm: storage.SlidingWindow}
	// All allow: all charged, A twice.
	call([]storage.LimitRequest{a, b, a, c}, []brief{{true, 2, 1}, {true, 1, 0}, {true, 2, 0}, {true, 3, 2}})
	// B is empty: the call is refused, and C (which would allow) is not charged; it reports its
	// remaining as if untouched.
	call([]storage.LimitRequest{c, b}, []brief{{true, 3, 2}, {false, 1, 0}})
	// C still has 2: this takes one.
	call([]storage.LimitRequest{c}, []brief{{true, 3, 1}})
	// A is empty too: refusing A leaves C alone again.
	call([]storage.LimitRequest{c, a}, []brief{{true, 3, 1}, {false, 2, 0}})
	call([]storage.LimitRequest{c}, []brief{{true, 3, 0}})
}

func testLimitEmpty(t *testing.T, l storage.Limiter) {
	res, err := l.Allow(t.Context(), nil)
	if err != nil || len(res) != 0 {
		t.Errorf("Allow(nil) = %v, %v; want no results, no error", res, err)
	}
}

// testLimitInvalid: a bad request fails the call before anything is charged.
func testLimitInvalid(t *testing.T, l storage.Limiter) {
	good := storage.LimitRequest{Key: limitKeyA, Limit: 2, Window: limitMinute}
	for _, bad := range []storage.LimitRequest{
		{Key: "", Limit: 1, Window: time.Second},
		{Key: limitKeyB, Limit: 0, Window: time.Second},
		{Key: limitKeyB, Limit: -1, Window: time.Second},
		{Key: limitKeyB, Limit: 1, Window: 0},
		{Key: limitKeyB, Limit: 1, Window: time.Microsecond},
		{Key: limitKeyB, Limit: 2, Window: time.Second, Cost: 3},
		{Key: limitKeyB, Limit: 2, Window: time.Second, Cost: -1},
		{Key: limitKeyB, Limit: 2, Window: time.Second, Algorithm: "leaky_bucket"},
	} {
		if _, err := l.Allow(t.Context(), []storage.LimitRequest{good, bad}); !errors.Is(err, storage.ErrInvalidLimit) {
			t.Errorf("Allow with %+v: err = %v, want ErrInvalidLimit", bad, err)
		}
	}
	if res := allowOne(t, l, good); !res.Allowed || res.Remaining != 1 {
		t.Errorf("the valid request of the failed calls was charged: %+v, want 1 remaining", res)
	}
}

// testLimitSwitchAlgorithm: a key met with another algorithm (a new configuration) starts over
// instead of failing.
func testLimitSwitchAlgorithm(t *testing.T, l storage.Limiter) {
	r := storage.LimitRequest{Key: limitKeyA, Limit: 2, Window: limitMinute}
	for _, alg := range []storage.Algorithm{storage.TokenBucket, storage.SlidingWindow, storage.FixedWindow, storage.TokenBucket, storage.FixedWindow} {
		r.Algorithm = alg
		mustAllowN(t, l, r, 2, "switched to "+string(alg))
	}
}

// testLimitTokenBucketRefill: tokens come back one interval at a time, not all at once.
func testLimitTokenBucketRefill(t *testing.T, l storage.Limiter) {
	r := storage.LimitRequest{Key: limitKeyA, Limit: 5, Window: time.Second, Algorithm: storage.TokenBucket}
	_, sent, got := timedAllow(t, l, r)
	mustAllowN(t, l, r, 4, "fresh bucket")
	// 200ms per token: 450ms after emptying it (at least that after the backend's time of the
	// first request), 2 are back; a third needs 600ms.
	time.Sleep(time.Until(got.Add(450 * time.Millisecond)))
	for i := range 2 {
		if res := allowOne(t, l, r); !res.Allowed {
			t.Fatalf("refilled token %d denied: %+v", i+1, res)
		}
	}
	res, _, got3 := timedAllow(t, l, r)
	if got3.Sub(sent) < 600*time.Millisecond {
		if res.Allowed {
			t.Errorf("a third token back %v after the first request, want 600ms", got3.Sub(sent))
		}
		// The third token is due an interval (200ms) after the second.
		checkWithin(t, "retry after for the third token", res.RetryAfter, time.Microsecond, 200*time.Millisecond)
	}
}

// testLimitWindowBoundary contrasts the windows: a request at 0, three at 0.6 s, then just
// after the first window ends, the fixed window allows a whole new limit (7 requests within
// half a second) while the sliding window allows only the one that left it.
func testLimitWindowBoundary(t *testing.T, l storage.Limiter) {
	const limit, window = 4, time.Second
	fixed := storage.LimitRequest{Key: limitKeyA, Limit: limit, Window: window, Algorithm: storage.FixedWindow}
	sliding := storage.LimitRequest{Key: limitKeyB, Limit: limit, Window: window, Algorithm: storage.SlidingWindow}
	both := []storage.LimitRequest{fixed, sliding}
	sent := time.Now()
	if res, err := l.Allow(t.Context(), both); err != nil || !res[0].Allowed || !res[1].Allowed {
		t.Fatalf("first request: %+v, %v", res, err)
	}
	time.Sleep(time.Until(sent.Add(600 * time.Millisecond)))
	var last []storage.LimitResult
	var got time.Time
	for i := range limit - 1 {
		res, err := l.Allow(t.Context(), both)
		got = time.Now()
		if err != nil || !res[0].Allowed || !res[1].Allowed {
			t.Fatalf("request %d at 0.6s: %+v, %v", i+2, res, err)
		}
		last = res
	}
	for i, res := range last {
		if res.Remaining != 0 {
			t.Errorf("%s at 0.6s: %+v, want 0 remaining", both[i].Algorithm, res)
		}
	}
	// The fixed window ends at its reset; the sliding one lets the first request out then.
	time.Sleep(time.Until(got.Add(last[0].Reset + 30*time.Millisecond)))
	mustAllowN(t, l, fixed, limit, "fixed window, after its window ended")
	if res := allowOne(t, l, sliding); !res.Allowed {
		t.Fatalf("sliding window, a second after its first request: %+v, want allowed", res)
	}
	res, _, got2 := timedAllow(t, l, sliding)
	if got2.Sub(sent) < 1600*time.Millisecond {
		if res.Allowed {
			t.Errorf("sliding window allowed a fifth request within %v of the second", got2.Sub(sent))
		}
		// Free again when the first request at 0.6s leaves, at least 1.6s after the start.
		checkWithin(t, "sliding window's retry after", res.RetryAfter, 1600*time.Millisecond-got2.Sub(sent), window)
	}
}
