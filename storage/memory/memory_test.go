package memory_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/memory"
	"github.com/motorpool/motorpool/storage/storagetest"
)

func TestAuthState(t *testing.T) {
	storagetest.RunAuthState(t, func(t *testing.T) storage.AuthState {
		a := memory.NewAuthState(nil)
		t.Cleanup(func() { a.Close() })
		return a
	})
}

// clock is a time that tests move by hand.
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

// TestInjectedClock checks every expiry against an injected clock, without sleeping: the
// backend's deadlines follow the clock it was given, not the wall.
func TestInjectedClock(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	a := memory.NewAuthState(c.Now)
	defer a.Close()
	start := c.Now()

	const idle = 30 * time.Minute
	s := storage.Session{
		ID: "sid1", UserID: 1, Email: "ada@example.com", Role: storage.RoleAdmin,
		LoginAt: start, LastActivityAt: start, ExpiresAt: start.Add(time.Hour),
	}
	rt := storage.RefreshToken{Hash: "h1", Family: "f", ExpiresAt: s.ExpiresAt}
	if err := a.CreateSession(ctx, s, rt, idle); err != nil {
		t.Fatal(err)
	}
	if err := a.EndSession(ctx, 1, "other", "jti-denied", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := a.SaveResetToken(ctx, "reset", storage.ResetToken{UserID: 1, PasswordVersion: 1}, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RecordLoginFailure(ctx, "ada@example.com", 20*time.Minute); err != nil {
		t.Fatal(err)
	}

	// 25 minutes: within idle; the deny entry (10 min) and the reset token (15 min) are gone,
	// the failures (20 min, from the first one) too.
	c.Add(25 * time.Minute)
	if err := a.TouchSession(ctx, 1, "sid1", c.Now(), idle); err != nil {
		t.Fatalf("TouchSession at 25m: %v", err)
	}
	got, err := a.Authenticate(ctx, 1, "sid1", "jti-denied", c.Now())
	if err != nil {
		t.Fatalf("Authenticate at 25m: %v", err)
	}
	want := s
	want.LastActivityAt = c.Now()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Authenticate at 25m (-want +got):\n%s", diff)
	}
	if _, err := a.ConsumeResetToken(ctx, "reset"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ConsumeResetToken at 25m: err = %v, want ErrNotFound", err)
	}
	if n, ttl, err := a.LoginFailures(ctx, "ada@example.com"); n != 0 || ttl != 0 || err != nil {
		t.Errorf("LoginFailures at 25m = %d, %v, %v; want 0, 0, nil", n, ttl, err)
	}

	// 50 minutes: 25 after the touch, alive. Rotation at 50 touches it again.
	c.Add(25 * time.Minute)
	if _, err := a.RotateRefresh(ctx, 1, "sid1", "h1", "h2", c.Now(), idle, time.Minute); err != nil {
		t.Fatalf("RotateRefresh at 50m: %v", err)
	}
	// 50m30s: the old token races; 51m30s: it is reuse, but first check the cap.
	c.Add(30 * time.Second)
	if _, err := a.RotateRefresh(ctx, 1, "sid1", "h1", "h3", c.Now(), idle, time.Minute); !errors.Is(err, storage.ErrRefreshRaced) {
		t.Errorf("RotateRefresh with the old token within grace: err = %v, want ErrRefreshRaced", err)
	}
	// 70 minutes: the touch at 50 allowed until 80 by idle, but ExpiresAt is at 60.
	c.Add(20*time.Minute - 30*time.Second)
	if _, err := a.Authenticate(ctx, 1, "sid1", "jti", c.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Authenticate past ExpiresAt: err = %v, want ErrNotFound", err)
	}
	if got, err := a.ListSessions(ctx, 1); err != nil || len(got) != 0 {
		t.Errorf("ListSessions past ExpiresAt = %v, %v; want none", got, err)
	}
}

// TestIdleByClock checks the sliding idle expiry by the backend's clock alone: the caller's now
// stays fixed, so only the backend's deadline can end the session.
func TestIdleByClock(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	a := memory.NewAuthState(c.Now)
	start := c.Now()
	s := storage.Session{ID: "sid", UserID: 1, LoginAt: start, LastActivityAt: start, ExpiresAt: start.Add(24 * time.Hour)}
	if err := a.CreateSession(ctx, s, storage.RefreshToken{Hash: "h", ExpiresAt: s.ExpiresAt}, time.Minute); err != nil {
		t.Fatal(err)
	}
	c.Add(59 * time.Second)
	if _, err := a.Authenticate(ctx, 1, "sid", "j", start); err != nil {
		t.Fatalf("Authenticate at 59s: %v", err)
	}
	if err := a.TouchSession(ctx, 1, "sid", start.Add(59*time.Second), time.Minute); err != nil {
		t.Fatalf("TouchSession at 59s: %v", err)
	}
	c.Add(59 * time.Second)
	if _, err := a.Authenticate(ctx, 1, "sid", "j", start); err != nil {
		t.Fatalf("Authenticate at 1m58s, touched at 59s: %v", err)
	}
	c.Add(time.Minute)
	if _, err := a.Authenticate(ctx, 1, "sid", "j", start); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Authenticate a minute after the last touch: err = %v, want ErrNotFound", err)
	}
}

// TestSweep checks that expired entries nobody touches again do not pile up.
func TestSweep(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	a := memory.NewAuthState(c.Now)
	const n = 5000
	for i := range n {
		now := c.Now()
		s := storage.Session{ID: fmt.Sprint(i), UserID: int64(i), LoginAt: now, LastActivityAt: now, ExpiresAt: now.Add(time.Minute)}
		if err := a.CreateSession(ctx, s, storage.RefreshToken{Hash: "h", ExpiresAt: s.ExpiresAt}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := a.RecordLoginFailure(ctx, fmt.Sprint(i, "@example.com"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := a.SaveResetToken(ctx, fmt.Sprint(i), storage.ResetToken{UserID: 1}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := a.EndSession(ctx, 0, "x", fmt.Sprint("jti", i), time.Minute); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Second) // about 60 of each are alive at any time
	}
	// Alive: ~60 each of sessions, refresh records, sets, failures, resets, denials (360).
	// Without sweeps there would be 6×5000.
	if got := a.Len(); got > 2000 {
		t.Errorf("%d entries stored after %d writes with about 360 alive, want them swept", got, 4*n)
	}
}
