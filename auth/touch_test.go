package auth_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/memory"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// touchCounting counts TouchSession calls; gate, when set, holds each until it is closed, and
// fail makes them fail.
type touchCounting struct {
	*memory.AuthState
	touches atomic.Int64
	gate    chan struct{}
	fail    error
}

func (c *touchCounting) TouchSession(ctx context.Context, userID int64, sid string, now time.Time, idle time.Duration) error {
	c.touches.Add(1)
	if c.gate != nil {
		<-c.gate
	}
	if c.fail != nil {
		return c.fail
	}
	return c.AuthState.TouchSession(ctx, userID, sid, now, idle)
}

// touchFixture is a service on the in-process state with one session of user 7 ("alice"),
// created at t0, and a clock both share.
func touchFixture(t *testing.T, cfg auth.Config) (*auth.Service, *touchCounting, *testClock, time.Time) {
	t.Helper()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := &testClock{t: t0}
	st := &touchCounting{AuthState: memory.NewAuthState(clk.Now)}
	sess := storage.Session{ID: "s7", UserID: 7, Role: storage.RoleUser, LoginAt: t0, LastActivityAt: t0, ExpiresAt: t0.Add(cfg.SessionMaxAge)}
	if err := st.CreateSession(t.Context(), sess, storage.RefreshToken{Hash: "h", ExpiresAt: sess.ExpiresAt}, cfg.SessionIdleTTL); err != nil {
		t.Fatal(err)
	}
	tokens := fakeTokens{"alice": {UserID: 7, Role: storage.RoleUser, SessionID: "s7", ID: "j7", ExpiresAt: sess.ExpiresAt}}
	svc, err := auth.NewService(t.Context(), nil, st, tokens, plainHasher{}, nil, cfg, auth.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	return svc, st, clk, t0
}

func lastActivity(t *testing.T, st storage.AuthState) time.Time {
	t.Helper()
	ss, err := st.ListSessions(t.Context(), 7)
	if err != nil || len(ss) != 1 {
		t.Fatalf("ListSessions = %v, %v", ss, err)
	}
	return ss[0].LastActivityAt
}

// TestAuthenticateTouchesLazily: a request extends the session's idle expiry only when its last
// touch is an interval (SessionTouchInterval) old, in the background, once; the idle limit then
// holds to the millisecond: the session ends idle after its last touch, which is less than
// the interval before the last request (never later than idle after that request).
func TestAuthenticateTouchesLazily(t *testing.T) {
	cfg := auth.DefaultConfig() // idle 30m, touch interval 1m
	svc, st, clk, t0 := touchFixture(t, cfg)
	ctx := t.Context()
	authAt := func(at time.Time) error {
		t.Helper()
		clk.Set(at)
		_, err := svc.Authenticate(ctx, "alice")
		if err := svc.WaitTouches(ctx); err != nil {
			t.Fatal(err)
		}
		return err
	}
	for _, d := range []time.Duration{time.Second, 30 * time.Second, 59*time.Second + 999*time.Millisecond} {
		if err := authAt(t0.Add(d)); err != nil {
			t.Fatalf("Authenticate at +%v: %v", d, err)
		}
	}
	if n := st.touches.Load(); n != 0 {
		t.Errorf("%d touches within the first minute, want 0 (no write per request)", n)
	}
	if got := lastActivity(t, st); !got.Equal(t0) {
		t.Errorf("LastActivityAt = %v, want %v (untouched)", got, t0)
	}

	touch := t0.Add(time.Minute)
	if err := authAt(touch); err != nil {
		t.Fatalf("Authenticate at +1m: %v", err)
	}
	if n := st.touches.Load(); n != 1 {
		t.Errorf("%d touches after a minute, want 1", n)
	}
	if got := lastActivity(t, st); !got.Equal(touch) {
		t.Errorf("LastActivityAt = %v, want %v (touched)", got, touch)
	}
	last := touch.Add(59 * time.Second) // the last request: not due, so no touch
	if err := authAt(last); err != nil {
		t.Fatalf("Authenticate at +1m59s: %v", err)
	}
	if n := st.touches.Load(); n != 1 {
		t.Errorf("%d touches, want still 1", n)
	}

	// The session ends idle after the touch: 59 s before idle after the last request.
	end := touch.Add(cfg.SessionIdleTTL)
	clk.Set(end.Add(-time.Millisecond))
	if _, err := st.AuthState.Authenticate(ctx, 7, "s7", "j7", end.Add(-time.Millisecond)); err != nil {
		t.Errorf("a millisecond before idle after the last touch: %v, want alive", err)
	}
	clk.Set(end)
	if _, err := svc.Authenticate(ctx, "alice"); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("idle after the last touch (%v after the last request): err = %v, want ErrInvalidToken", end.Sub(last), err)
	}
	if d := last.Add(cfg.SessionIdleTTL).Sub(end); d <= 0 || d >= cfg.SessionTouchInterval {
		t.Errorf("the session ended %v before idle after the last request, want within (0, %v)", d, cfg.SessionTouchInterval)
	}
}

// TestAuthenticateTouchOffPath: the touch never holds the request up, only one per session is
// in flight however many requests find it due, and a touch the store fails is counted while
// the request still succeeds.
func TestAuthenticateTouchOffPath(t *testing.T) {
	cfg := auth.DefaultConfig()
	svc, st, clk, t0 := touchFixture(t, cfg)
	ctx := t.Context()
	st.gate = make(chan struct{})
	clk.Set(t0.Add(2 * time.Minute))
	for i := range 20 {
		if _, err := svc.Authenticate(ctx, "alice"); err != nil { // would block if the touch were inline
			t.Fatalf("Authenticate %d with a touch held: %v", i, err)
		}
	}
	close(st.gate)
	if err := svc.WaitTouches(ctx); err != nil {
		t.Fatal(err)
	}
	if n := st.touches.Load(); n != 1 {
		t.Errorf("%d touches for 20 requests that found the session due, want 1", n)
	}

	st.gate, st.fail = nil, errors.New("store away")
	clk.Set(t0.Add(4 * time.Minute))
	if _, err := svc.Authenticate(ctx, "alice"); err != nil {
		t.Fatalf("Authenticate with a failing touch: %v", err)
	}
	if err := svc.WaitTouches(ctx); err != nil {
		t.Fatal(err)
	}
	if failed, _ := svc.TouchStats(); failed != 1 {
		t.Errorf("TouchStats failed = %d, want 1", failed)
	}
}

// TestTouchIntervalCapped: with an idle TTL short enough that the interval would stop it
// sliding, the interval in force is a tenth of the idle TTL.
func TestTouchIntervalCapped(t *testing.T) {
	cfg := auth.DefaultConfig()
	cfg.SessionIdleTTL = 3 * time.Second
	svc, st, clk, t0 := touchFixture(t, cfg)
	clk.Set(t0.Add(300 * time.Millisecond))
	if _, err := svc.Authenticate(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	if err := svc.WaitTouches(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := st.touches.Load(); n != 1 {
		t.Errorf("%d touches 300ms in with a 3s idle TTL, want 1", n)
	}
}
