package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// Limiter is storage.Limiter in the process: the same algorithms, to the microsecond, as the
// Valkey scripts, on the injected clock. It is the limiter of a single instance, and the
// fallback of a shared one while Valkey is away (each instance then counts on its own).
//
// Every bucket has a deadline, when it reads as empty (its key would have expired in Valkey);
// expired buckets are dropped when touched, and swept as the AuthState's entries are, so memory
// stays proportional to the buckets in use, whatever number of subjects passes by.
type Limiter struct {
	clock func() time.Time

	mu         sync.Mutex
	buckets    map[string]*limitBucket
	writes     int // since the last sweep
	sweepEvery int
}

var _ storage.Limiter = (*Limiter)(nil)

// limitBucket is one key's state; which fields count depends on alg. Times are unix µs.
type limitBucket struct {
	alg      storage.Algorithm
	deadline int64   // when the bucket reads as empty, and is dropped
	tat      int64   // token bucket: when it is full again
	times    []int64 // sliding window: the tokens taken in the last window, oldest first
	start    int64   // fixed window: when the window started
	n        int     // fixed window: tokens taken in it
}

// NewLimiter returns an empty Limiter on the clock now (time.Now when nil).
func NewLimiter(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{clock: now, buckets: make(map[string]*limitBucket), sweepEvery: minSweepEvery}
}

// Allow implements storage.Limiter. The whole call holds the lock, so it is atomic, not only
// each bucket.
func (l *Limiter) Allow(_ context.Context, reqs []storage.LimitRequest) ([]storage.LimitResult, error) {
	for _, r := range reqs {
		if err := r.Check(); err != nil {
			return nil, fmt.Errorf("memory: allow: %w", err)
		}
	}
	out := make([]storage.LimitResult, len(reqs))
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock().UnixMicro()
	// Keep the buckets as they were, to put back if any rule refuses: a refused request costs
	// nothing in any of its buckets.
	saved := make(map[string]*limitBucket, len(reqs))
	for _, r := range reqs {
		if _, done := saved[r.Key]; done {
			continue
		}
		if b, ok := l.buckets[r.Key]; ok {
			// A shallow copy suffices: allow only reslices times from the front or appends
			// past its end, never writing over the entries this copy's slice still covers.
			c := *b
			saved[r.Key] = &c
		} else {
			saved[r.Key] = nil
		}
	}
	denied := false
	for i, r := range reqs {
		out[i] = l.allow(r, now)
		denied = denied || !out[i].Allowed
	}
	if denied {
		for k, b := range saved {
			if b == nil {
				delete(l.buckets, k)
			} else {
				l.buckets[k] = b
			}
		}
		for i, r := range reqs {
			if out[i].Allowed {
				out[i].Remaining += max(r.Cost, 1)
			}
		}
	}
	return out, nil
}

// allow decides one request, as the Lua scripts do. The caller holds l.mu.
func (l *Limiter) allow(r storage.LimitRequest, now int64) storage.LimitResult {
	alg := r.Algorithm
	if alg == "" {
		alg = storage.TokenBucket
	}
	b, ok := l.buckets[r.Key]
	if !ok || b.alg != alg || now >= b.deadline {
		// Unknown, another algorithm's (start over, as the scripts do) or expired.
		b = &limitBucket{alg: alg}
	}
	cost, limit := max(r.Cost, 1), r.Limit
	window := int64((r.Window + time.Microsecond - 1) / time.Microsecond)
	res := storage.LimitResult{Limit: limit}
	var reset, retry int64
	switch alg {
	case storage.TokenBucket:
		interval := r.TokenInterval().Microseconds()
		span := int64(limit) * interval
		tat := max(b.tat, now)
		next := tat + int64(cost)*interval
		if next-now > span {
			res.Remaining = max(0, int((span-(tat-now))/interval))
			reset, retry = tat-now, next-span-now
			break
		}
		b.tat, b.deadline = next, ceilMilli(now, next-now)
		res.Allowed, res.Remaining, reset = true, int((span-(next-now))/interval), next-now

	case storage.SlidingWindow:
		// A token taken at s leaves the window at s+window.
		keep := 0
		for keep < len(b.times) && b.times[keep] <= now-window {
			keep++
		}
		b.times = b.times[keep:]
		count := len(b.times)
		if count+cost <= limit {
			for range cost {
				b.times = append(b.times, now)
			}
			b.deadline = ceilMilli(now, window)
			res.Allowed, res.Remaining, reset = true, limit-count-cost, window
			break
		}
		need := count + cost - limit
		res.Remaining = max(0, limit-count)
		reset, retry = b.times[count-1]+window-now, b.times[need-1]+window-now

	case storage.FixedWindow:
		if b.n == 0 || now >= b.start+window {
			b.start, b.n = now, 0
		}
		reset = b.start + window - now
		if b.n+cost > limit {
			res.Remaining, retry = max(0, limit-b.n), reset
			break
		}
		b.n += cost
		b.deadline = ceilMilli(now, reset)
		res.Allowed, res.Remaining = true, limit-b.n
	}
	res.Reset = time.Duration(reset) * time.Microsecond
	res.RetryAfter = time.Duration(retry) * time.Microsecond
	if res.Allowed {
		l.buckets[r.Key] = b
		l.wrote(now)
	}
	return res
}

// ceilMilli is the deadline ttl µs after now, rounded up to the millisecond as PEXPIRE is.
func ceilMilli(now, ttl int64) int64 { return now + (ttl+999)/1000*1000 }

// wrote counts a write and sweeps when enough have accumulated. The caller holds l.mu.
func (l *Limiter) wrote(now int64) {
	l.writes++
	if l.writes < l.sweepEvery {
		return
	}
	for k, b := range l.buckets {
		if now >= b.deadline {
			delete(l.buckets, k)
		}
	}
	l.writes = 0
	// As in AuthState: sweep again after as many writes as there are buckets now.
	l.sweepEvery = max(minSweepEvery, len(l.buckets))
}

// Ping implements storage.Limiter; memory always answers.
func (l *Limiter) Ping(context.Context) error { return nil }

// Close implements storage.Limiter. It forgets every bucket.
func (l *Limiter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.buckets)
	return nil
}
