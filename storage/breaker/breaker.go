// Package breaker is a small circuit breaker for calls to a shared store that may go away
// (Valkey under the rate limiter): after Threshold failures in a row it opens and callers skip
// the store (using their fallback) for Cooldown, then one probe call is let through; its
// success closes the breaker, its failure opens it for another Cooldown. So an outage costs
// Threshold slow calls, not one per request, and recovery is noticed within Cooldown.
//
// It imports only the standard library and knows nothing of the store: the caller asks Allow
// before each call and reports the outcome with Record, deciding which errors count (a store
// that is down or too slow, not a request it rejected or a client that went away).
package breaker

import (
	"sync"
	"time"
)

// State is where the breaker stands.
type State int

// The states.
const (
	// Closed: calls go to the store.
	Closed State = iota
	// Open: calls are refused until the cooldown ends.
	Open
	// HalfOpen: the cooldown ended; one probe call is out (or about to be) and the others are
	// refused until it reports.
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "unknown"
}

// Breaker is a circuit breaker. It is safe for concurrent use.
type Breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time

	mu       sync.Mutex
	state    State
	failures int       // in a row, while closed
	since    time.Time // when it opened, or when the probe went out
}

// New returns a closed breaker that opens after threshold failures in a row (at least 1) and
// stays open for cooldown, on the clock now (time.Now when nil).
func New(threshold int, cooldown time.Duration, now func() time.Time) *Breaker {
	if now == nil {
		now = time.Now
	}
	return &Breaker{threshold: max(threshold, 1), cooldown: cooldown, now: now}
}

// Allow reports whether a call may go to the store now. When it says yes in the HalfOpen
// state, the call is the probe, and its Record decides the state; a probe that never reports
// is given up after another cooldown and a new probe let through.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Closed:
		return true
	case Open, HalfOpen:
		// Open: the cooldown is over, probe. HalfOpen: the probe is lost, probe again.
		if t := b.now(); !t.Before(b.since.Add(b.cooldown)) {
			b.state, b.since = HalfOpen, t
			return true
		}
	}
	return false
}

// Record reports the outcome of a call Allow let through: err nil for success, non-nil for a
// failure that should count against the store.
func (b *Breaker) Record(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case err == nil && b.state != Open:
		// Success closes a half-open breaker. (One that opened meanwhile, by calls made at the
		// same time, waits for its probe.)
		b.state, b.failures = Closed, 0
	case err != nil && b.state == Closed:
		b.failures++
		if b.failures >= b.threshold {
			b.state, b.since, b.failures = Open, b.now(), 0
		}
	case err != nil && b.state == HalfOpen:
		b.state, b.since = Open, b.now()
	}
}

// State reports the breaker's state, for metrics and health.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}
