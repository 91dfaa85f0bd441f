package breaker_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/motorpool/motorpool/storage/breaker"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var errDown = errors.New("down")

func TestBreaker(t *testing.T) {
	c := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := breaker.New(3, 5*time.Second, c.Now)
	call := func(err error) bool {
		t.Helper()
		if !b.Allow() {
			return false
		}
		b.Record(err)
		return true
	}
	want := func(s breaker.State) {
		t.Helper()
		if got := b.State(); got != s {
			t.Fatalf("state = %v, want %v", got, s)
		}
	}

	// A success in between resets the count.
	for _, err := range []error{errDown, errDown, nil, errDown, errDown} {
		if !call(err) {
			t.Fatal("closed breaker refused a call")
		}
	}
	want(breaker.Closed)
	call(errDown) // the third in a row
	want(breaker.Open)
	if b.Allow() {
		t.Fatal("open breaker allowed a call")
	}

	// After the cooldown one probe goes; a failed probe opens it for another cooldown.
	c.Add(5 * time.Second)
	if !b.Allow() {
		t.Fatal("no probe after the cooldown")
	}
	want(breaker.HalfOpen)
	if b.Allow() {
		t.Fatal("a second call allowed while the probe is out")
	}
	b.Record(errDown)
	want(breaker.Open)
	c.Add(4 * time.Second)
	if b.Allow() {
		t.Fatal("allowed before the second cooldown ended")
	}

	// A lost probe is replaced after a cooldown; a successful one closes it.
	c.Add(time.Second)
	if !b.Allow() {
		t.Fatal("no probe after the second cooldown")
	}
	c.Add(5 * time.Second)
	if !b.Allow() {
		t.Fatal("no new probe after the first was lost")
	}
	b.Record(nil)
	want(breaker.Closed)
	if !call(nil) {
		t.Fatal("closed breaker refused a call")
	}
}

// TestBreakerOneProbe: of many callers at the end of the cooldown, exactly one probes.
func TestBreakerOneProbe(t *testing.T) {
	c := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := breaker.New(1, time.Second, c.Now)
	b.Allow()
	b.Record(errDown)
	c.Add(time.Second)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if b.Allow() {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 1 {
		t.Errorf("%d probes allowed, want 1", n)
	}
}
