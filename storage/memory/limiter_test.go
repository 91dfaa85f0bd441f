package memory_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/memory"
	"github.com/motorpool/motorpool/storage/storagetest"
)

func TestLimiter(t *testing.T) {
	storagetest.RunLimiter(t, func(t *testing.T) storage.Limiter {
		l := memory.NewLimiter(nil)
		t.Cleanup(func() { l.Close() })
		return l
	})
}

// TestLimiterInjectedClock checks every algorithm's exact numbers on an injected clock, to the
// microsecond, including the instants just before and at a retry time.
func TestLimiterInjectedClock(t *testing.T) {
	type step struct {
		at   time.Duration // on the clock, from the start
		want storage.LimitResult
	}
	ok := func(remaining int, reset time.Duration) storage.LimitResult {
		return storage.LimitResult{Allowed: true, Limit: 0, Remaining: remaining, Reset: reset}
	}
	no := func(remaining int, reset, retry time.Duration) storage.LimitResult {
		return storage.LimitResult{Remaining: remaining, Reset: reset, RetryAfter: retry}
	}
	const ms, us = time.Millisecond, time.Microsecond
	for _, tc := range []struct {
		alg   storage.Algorithm
		limit int
		steps []step
	}{
		{storage.TokenBucket, 4, []step{
			// 250ms per token.
			{0, ok(3, 250*ms)},
			{0, ok(2, 500*ms)},
			{0, ok(1, 750*ms)},
			{0, ok(0, 1000*ms)},
			{0, no(0, 1000*ms, 250*ms)},
			{250*ms - us, no(0, 750*ms+us, us)},
			{250 * ms, ok(0, 1000*ms)},
			{1000 * ms, ok(2, 500*ms)}, // 3 back (full at 1250), one taken
			{5000 * ms, ok(3, 250*ms)}, // full long ago
		}},
		{storage.SlidingWindow, 2, []step{
			{0, ok(1, 1000*ms)},
			{400 * ms, ok(0, 1000*ms)},
			{500 * ms, no(0, 900*ms, 500*ms)},
			{1000*ms - us, no(0, 400*ms+us, us)},
			{1000 * ms, ok(0, 1000*ms)},          // the first token left
			{1400*ms - us, no(0, 600*ms+us, us)}, // the second leaves at 1400
			{1400 * ms, ok(0, 1000*ms)},
			{3000 * ms, ok(1, 1000*ms)},
		}},
		{storage.FixedWindow, 2, []step{
			{0, ok(1, 1000*ms)},
			{400 * ms, ok(0, 600*ms)},
			{500 * ms, no(0, 500*ms, 500*ms)},
			{1000*ms - us, no(0, us, us)},
			{1000 * ms, ok(1, 1000*ms)}, // a new window, from now
			{1900 * ms, ok(0, 100*ms)},
			{2000 * ms, ok(1, 1000*ms)},
		}},
	} {
		t.Run(string(tc.alg), func(t *testing.T) {
			start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			c := &clock{t: start}
			l := memory.NewLimiter(c.Now)
			r := storage.LimitRequest{Key: "rate_limit:ip:{192.0.2.1}:getUser", Limit: tc.limit, Window: time.Second, Algorithm: tc.alg}
			for i, s := range tc.steps {
				c.Add(start.Add(s.at).Sub(c.Now()))
				got, err := l.Allow(t.Context(), []storage.LimitRequest{r})
				if err != nil {
					t.Fatal(err)
				}
				s.want.Limit = tc.limit
				if diff := cmp.Diff(s.want, got[0]); diff != "" {
					t.Errorf("step %d at %v (-want +got):\n%s", i+1, s.at, diff)
				}
			}
		})
	}
}

// TestLimiterSweep checks that buckets of subjects that never come back do not pile up.
func TestLimiterSweep(t *testing.T) {
	c := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	l := memory.NewLimiter(c.Now)
	const n = 20000
	for i := range n {
		reqs := []storage.LimitRequest{
			{Key: fmt.Sprintf("rate_limit:ip:{%d}:getUser", i), Limit: 10, Window: time.Minute},
			{Key: fmt.Sprintf("rate_limit:ip:{%d}:global", i), Limit: 10, Window: time.Minute, Algorithm: storage.SlidingWindow},
			{Key: fmt.Sprintf("rate_limit:user:{%d}:global", i), Limit: 10, Window: time.Minute, Algorithm: storage.FixedWindow},
		}
		if _, err := l.Allow(t.Context(), reqs); err != nil {
			t.Fatal(err)
		}
		c.Add(100 * time.Millisecond) // about 600 subjects, 1800 buckets, alive at any time
	}
	if got := l.Len(); got > 6000 {
		t.Errorf("%d buckets stored after %d subjects with about 1800 alive, want them swept", got, n)
	}
}
