package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Algorithm names how a Limiter counts a bucket's requests.
type Algorithm string

// The algorithms every Limiter implements. The empty Algorithm means TokenBucket.
const (
	// TokenBucket holds Limit tokens and refills one every Window/Limit, continuously: a full
	// bucket allows a burst of Limit requests, after which requests are spread out evenly.
	// It is kept as one timestamp (GCRA's theoretical arrival time), the default.
	TokenBucket Algorithm = "token_bucket"
	// SlidingWindow allows Limit requests in any interval of length Window: it remembers the
	// time of every allowed request of the last Window (so its memory grows with Limit) and
	// never lets through more than Limit in a row across a window boundary.
	SlidingWindow Algorithm = "sliding_window"
	// FixedWindow allows Limit requests per window; a window starts with the first request
	// after the previous one ended (not on a clock boundary, so subjects do not all reset at
	// once). Cheapest, but up to 2×Limit requests can pass in a short interval around the
	// moment one window ends and the next begins.
	FixedWindow Algorithm = "fixed_window"
)

// Algorithms lists every Algorithm, the default first.
var Algorithms = []Algorithm{TokenBucket, SlidingWindow, FixedWindow}

// ParseAlgorithm returns the Algorithm named s (as RATE_LIMIT_ALGORITHM spells it, ignoring case
// and surrounding space); the empty string is TokenBucket.
func ParseAlgorithm(s string) (Algorithm, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return TokenBucket, nil
	}
	for _, a := range Algorithms {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown rate-limit algorithm %q (want token_bucket, sliding_window or fixed_window)", s)
}

// ErrInvalidLimit: a LimitRequest breaks the rules LimitRequest.Check lists. Allow returns it,
// wrapped, before it charges any bucket.
var ErrInvalidLimit = errors.New("invalid limit request")

// LimitRequest asks a Limiter to charge one bucket for one request.
type LimitRequest struct {
	// Key names the bucket, in full, e.g. rate_limit:ip:{203.0.113.7}:getUser. The caller
	// builds it; braces are literal (a Valkey Cluster hash tag). The backend puts its key
	// prefix in front. A key is meant to be used with one Algorithm, Limit and Window: when
	// they change (a new configuration), the bucket carries on as well as its state allows,
	// and a bucket met with another Algorithm starts over, full.
	Key string
	// Limit is how many requests (tokens) the bucket holds: at least 1.
	Limit int
	// Window is the time over which Limit requests are allowed: the token bucket's time to
	// refill from empty, the windows' length. At least a millisecond; backends count in
	// microseconds.
	Window time.Duration
	// Algorithm is how the bucket counts; empty means TokenBucket.
	Algorithm Algorithm
	// Cost is how many tokens the request takes: 0 means 1; never more than Limit.
	Cost int
}

// Check reports a request a Limiter cannot serve, as an error wrapping ErrInvalidLimit: an
// empty Key, a Limit below 1, a Window under a millisecond, a negative Cost or one above Limit,
// an unknown Algorithm.
func (r LimitRequest) Check() error {
	var why string
	switch {
	case r.Key == "":
		why = "empty key"
	case r.Limit < 1:
		why = fmt.Sprintf("limit %d is below 1", r.Limit)
	case r.Window < time.Millisecond:
		why = fmt.Sprintf("window %v is under 1ms", r.Window)
	case r.Cost < 0 || r.Cost > r.Limit:
		why = fmt.Sprintf("cost %d is not within 0..limit (%d)", r.Cost, r.Limit)
	case r.Algorithm != "" && !slices.Contains(Algorithms, r.Algorithm):
		why = fmt.Sprintf("unknown algorithm %q", r.Algorithm)
	default:
		return nil
	}
	return fmt.Errorf("%w: %s: %s", ErrInvalidLimit, r.Key, why)
}

// TokenInterval is the time a token bucket takes to refill one token: Window/Limit, rounded up
// to the microsecond so that backends count in whole microseconds. The bucket's effective
// window, Limit×TokenInterval, is thus longer than Window by less than Limit microseconds.
func (r LimitRequest) TokenInterval() time.Duration {
	w := (r.Window + time.Microsecond - 1) / time.Microsecond
	l := time.Duration(max(r.Limit, 1))
	return (w + l - 1) / l * time.Microsecond
}

// LimitResult is a Limiter's decision on one LimitRequest. Times are measured from the moment
// the backend decided, on the backend's clock, to the microsecond.
type LimitResult struct {
	// Allowed reports whether the bucket had Cost tokens; they were taken only if so (a denied
	// request costs nothing).
	Allowed bool
	// Limit is the request's Limit, for the X-RateLimit-Limit header.
	Limit int
	// Remaining is how many more requests of cost 1 the bucket would allow right now, after
	// this one: from Limit-1 for the first request down to 0.
	Remaining int
	// Reset is the time until the bucket is back to Limit remaining if nothing else is
	// charged: the token bucket full, the sliding window's last request out of it, the fixed
	// window over. Always positive: every result leaves something in the bucket or was denied
	// by something in it.
	Reset time.Duration
	// RetryAfter is 0 when Allowed; when not, the time until the same request would be
	// allowed if nothing else is charged meanwhile, exactly: a client that waits at least this
	// long (from when it got the answer) succeeds.
	RetryAfter time.Duration
}

// Limiter keeps rate-limit buckets. Implementations are safe for concurrent use; keys expire on
// their own (a bucket that has reset takes no space), and a bucket's clock is the backend's own
// (Valkey's TIME, the memory backend's injected clock), never the caller's.
type Limiter interface {
	// Allow charges each request's bucket, atomically per bucket, and returns one result per
	// request, in order. When any bucket of the call denies, the others are not charged
	// either (they report Allowed, and Remaining as if untouched): a request refused by one
	// rule costs nothing in any. Requests on one key see each other, in order. An allowed call
	// is one round trip to a remote backend; a refused one takes a second, to give back what
	// the allowing buckets took (their keys may live in other cluster slots, so one script
	// cannot decide them all); after the server has lost its scripts, one more. The backend
	// never retries a script on its own, so no request is counted twice. An empty reqs
	// returns no results and no error.
	//
	// A request that fails Check fails the whole call with ErrInvalidLimit before any bucket is
	// charged. Any other error (the backend is unreachable or too slow) comes back within the
	// backend's short timeout, with no results; some buckets may have been charged already.
	// Whether to let the request through then is the caller's policy.
	Allow(ctx context.Context, reqs []LimitRequest) ([]LimitResult, error)
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	// Close releases the backend.
	Close() error
}
