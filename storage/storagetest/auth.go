package storagetest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage"
)

// RunAuthState runs the storage.AuthState conformance suite. Every subtest checks one part of the
// AuthState contract on its own state from newState, which must return a new, empty state and
// release it when its t ends. The subtests run in parallel.
//
// Backends keep TTLs on their own clock, so the suite uses the real one: the expiry tests sleep,
// with windows of about a second, none more than about 1.2 s. Times are compared to the
// millisecond, the precision the backends keep.
func RunAuthState(t *testing.T, newState func(t *testing.T) storage.AuthState) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a storage.AuthState)
	}{
		{"Ping", testAuthPing},
		{"CreateAuthenticate", testCreateAuthenticate},
		{"NotFound", testAuthNotFound},
		{"TouchSession", testTouchSession},
		{"SlidingIdleExpiry", testSlidingIdleExpiry},
		{"AbsoluteExpiry", testAbsoluteExpiry},
		{"DenyBeatsLiveSession", testDenyBeatsLiveSession},
		{"RotateRefresh", testRotateRefresh},
		{"RotateRefreshNotFound", testRotateRefreshNotFound},
		{"RotateRefreshConcurrent", testRotateRefreshConcurrent},
		{"RotateRefreshReuseAfterGrace", testRotateRefreshReuseAfterGrace},
		{"RotateRefreshReuseOlder", testRotateRefreshReuseOlder},
		{"EndSession", testEndSession},
		{"EndSessionDenyTTL", testEndSessionDenyTTL},
		{"EndAllSessions", testEndAllSessions},
		{"ListSessions", testListSessions},
		{"ListSessionsPrunesExpired", testListSessionsPrunesExpired},
		{"LoginFailures", testLoginFailures},
		{"LoginFailuresFixedWindow", testLoginFailuresFixedWindow},
		{"ForgiveLoginFailure", testForgiveLoginFailure},
		{"ResetToken", testResetToken},
		{"ResetTokenConcurrent", testResetTokenConcurrent},
		{"ResetTokenExpires", testResetTokenExpires},
		{"SessionEpoch", testSessionEpoch},
		{"SessionEpochPerUser", testSessionEpochPerUser},
		{"DenyToken", testDenyToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newState(t))
		})
	}
}

// Durations the tests share. authHour is "long enough never to matter during a test".
const (
	authHour  = time.Hour
	authGrace = 5 * time.Second
)

func testAuthPing(t *testing.T, a storage.AuthState) {
	if err := a.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testCreateAuthenticate(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	s := newAuthSession(7, now, now.Add(authHour))
	mustCreateSession(t, a, s, authHour)

	later := now.Add(1500 * time.Millisecond) // the caller's clock, not the backend's
	got, err := a.Authenticate(ctx, 7, s.ID, "jti-1", later)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	// Authenticate writes nothing: the last activity is still the creation's.
	if diff := cmp.Diff(s, got); diff != "" {
		t.Errorf("Authenticate mismatch (-want +got):\n%s", diff)
	}
	if err := a.TouchSession(ctx, 7, s.ID, later, authHour); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	mustAuthenticate(t, a, 7, s.ID, later, touched(s, later))
	// Sub-millisecond parts are dropped, never rounded up.
	odd := later.Add(2*time.Second + 999*time.Microsecond)
	if err := a.TouchSession(ctx, 7, s.ID, odd, authHour); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	mustAuthenticate(t, a, 7, s.ID, odd, touched(s, odd))

	// Another user's session of the same id is another session.
	if _, err := a.Authenticate(ctx, 8, s.ID, "jti-1", now); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Authenticate as another user: err = %v, want ErrNotFound", err)
	}
	if err := a.TouchSession(ctx, 8, s.ID, now, authHour); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TouchSession as another user: err = %v, want ErrNotFound", err)
	}
}

func testAuthNotFound(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	if _, err := a.Authenticate(ctx, 1, "nosuch", "jti", now); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Authenticate unknown: err = %v, want ErrNotFound", err)
	}
	if _, err := a.RotateRefresh(ctx, 1, "nosuch", "h1", "h2", now, authHour, authGrace); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RotateRefresh unknown: err = %v, want ErrNotFound", err)
	}
	if err := a.EndSession(ctx, 1, "nosuch", "", 0); err != nil {
		t.Errorf("EndSession unknown: %v", err)
	}
	if n, err := a.EndAllSessions(ctx, 1); err != nil || n != 0 {
		t.Errorf("EndAllSessions unknown = %d, %v; want 0, nil", n, err)
	}
	if got, err := a.ListSessions(ctx, 1); err != nil || len(got) != 0 {
		t.Errorf("ListSessions unknown = %v, %v; want none", got, err)
	}
	if n, ttl, err := a.LoginFailures(ctx, "nobody@example.com"); err != nil || n != 0 || ttl != 0 {
		t.Errorf("LoginFailures unknown = %d, %v, %v; want 0, 0, nil", n, ttl, err)
	}
	if err := a.ClearLoginFailures(ctx, "nobody@example.com"); err != nil {
		t.Errorf("ClearLoginFailures unknown: %v", err)
	}
	if _, err := a.ConsumeResetToken(ctx, "nosuch"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ConsumeResetToken unknown: err = %v, want ErrNotFound", err)
	}

	// A session created past its ExpiresAt is over before it starts.
	past := newAuthSession(1, now, now.Add(-time.Second))
	var err error
	if past.Epoch, err = a.SessionEpoch(ctx, 1); err != nil { // moved on by EndAllSessions above
		t.Fatalf("SessionEpoch: %v", err)
	}
	mustCreateSession(t, a, past, authHour)
	if _, err := a.Authenticate(ctx, 1, past.ID, "jti", now); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Authenticate of a session created expired: err = %v, want ErrNotFound", err)
	}
	if got, err := a.ListSessions(ctx, 1); err != nil || len(got) != 0 {
		t.Errorf("ListSessions after creating an expired session = %v, %v; want none", got, err)
	}
}

func testSlidingIdleExpiry(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	const idle = time.Second
	now := nowMillis()
	byTouch := newAuthSession(1, now, now.Add(authHour))
	byRotate := newAuthSession(1, now, now.Add(authHour))
	untouched := newAuthSession(1, now, now.Add(authHour))
	authenticated := newAuthSession(1, now, now.Add(authHour))
	for _, s := range []storage.Session{byTouch, byRotate, untouched, authenticated} {
		mustCreateSession(t, a, s, idle)
	}

	time.Sleep(600 * time.Millisecond)
	if err := a.TouchSession(ctx, 1, byTouch.ID, time.Now(), idle); err != nil {
		t.Fatalf("TouchSession at 0.6s: %v", err)
	}
	if _, err := a.RotateRefresh(ctx, 1, byRotate.ID, hashOf(byRotate), "h2", time.Now(), idle, authGrace); err != nil {
		t.Fatalf("RotateRefresh at 0.6s: %v", err)
	}
	if _, err := a.Authenticate(ctx, 1, authenticated.ID, "jti", time.Now()); err != nil {
		t.Fatalf("Authenticate at 0.6s: %v", err)
	}

	time.Sleep(600 * time.Millisecond)
	// 0.6s after their touch: alive. 1.2s after creation: the untouched ones are gone, the one
	// only authenticated too (Authenticate does not extend). (Checked in this order because a
	// slow machine can only make the later checks later, which is safe.)
	if _, err := a.Authenticate(ctx, 1, byTouch.ID, "jti", time.Now()); err != nil {
		t.Errorf("Authenticate at 1.2s, touched by TouchSession at 0.6s: %v", err)
	}
	if _, err := a.Authenticate(ctx, 1, byRotate.ID, "jti", time.Now()); err != nil {
		t.Errorf("Authenticate at 1.2s, touched by RotateRefresh at 0.6s: %v", err)
	}
	if _, err := a.Authenticate(ctx, 1, untouched.ID, "jti", time.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Authenticate at 1.2s, untouched for longer than idle: err = %v, want ErrNotFound", err)
	}
	if _, err := a.Authenticate(ctx, 1, authenticated.ID, "jti", time.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Authenticate at 1.2s, only authenticated (not touched) at 0.6s: err = %v, want ErrNotFound", err)
	}
	if err := a.TouchSession(ctx, 1, untouched.ID, time.Now(), idle); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TouchSession of a session past its idle expiry: err = %v, want ErrNotFound (no revival)", err)
	}
}

func testAbsoluteExpiry(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	// By the backend's clock: touching does not keep a session past ExpiresAt.
	s := newAuthSession(1, now, now.Add(time.Second))
	mustCreateSession(t, a, s, authHour)
	time.Sleep(600 * time.Millisecond)
	if err := a.TouchSession(ctx, 1, s.ID, time.Now(), authHour); err != nil {
		t.Fatalf("TouchSession at 0.6s: %v", err)
	}
	time.Sleep(600 * time.Millisecond)
	if _, err := a.Authenticate(ctx, 1, s.ID, "jti", time.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Authenticate at 1.2s, past ExpiresAt: err = %v, want ErrNotFound", err)
	}

	// By the caller's clock: a now at or past ExpiresAt ends the session, whatever its TTL.
	for _, tc := range []struct {
		name  string
		touch func(s storage.Session) error
	}{
		{"Authenticate at ExpiresAt", func(s storage.Session) error {
			_, err := a.Authenticate(ctx, 1, s.ID, "jti", s.ExpiresAt)
			return err
		}},
		{"Authenticate past ExpiresAt", func(s storage.Session) error {
			_, err := a.Authenticate(ctx, 1, s.ID, "jti", s.ExpiresAt.Add(time.Minute))
			return err
		}},
		{"TouchSession at ExpiresAt", func(s storage.Session) error {
			return a.TouchSession(ctx, 1, s.ID, s.ExpiresAt, authHour)
		}},
		{"RotateRefresh past ExpiresAt", func(s storage.Session) error {
			_, err := a.RotateRefresh(ctx, 1, s.ID, hashOf(s), "h2", s.ExpiresAt.Add(time.Millisecond), authHour, authGrace)
			return err
		}},
	} {
		s := newAuthSession(1, now, now.Add(authHour))
		mustCreateSession(t, a, s, authHour)
		if err := tc.touch(s); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", tc.name, err)
		}
		if _, err := a.Authenticate(ctx, 1, s.ID, "jti", now); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s, then Authenticate now: err = %v, want ErrNotFound (the session ended)", tc.name, err)
		}
	}

	// Just before ExpiresAt the session lives and reports its ExpiresAt unchanged.
	s = newAuthSession(1, now, now.Add(authHour))
	mustCreateSession(t, a, s, authHour)
	at := s.ExpiresAt.Add(-time.Millisecond)
	got, err := a.Authenticate(ctx, 1, s.ID, "jti", at)
	if err != nil {
		t.Fatalf("Authenticate 1ms before ExpiresAt: %v", err)
	}
	if diff := cmp.Diff(s, got); diff != "" {
		t.Errorf("Authenticate 1ms before ExpiresAt mismatch (-want +got):\n%s", diff)
	}
	// A touch then is still a touch (of a session with a millisecond left by that clock).
	if err := a.TouchSession(ctx, 1, s.ID, at, authHour); err != nil {
		t.Errorf("TouchSession 1ms before ExpiresAt: %v", err)
	}
}

func testDenyBeatsLiveSession(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	s := newAuthSession(1, now, now.Add(authHour))
	mustCreateSession(t, a, s, authHour)
	// Deny a jti by ending some other session with it.
	if err := a.EndSession(ctx, 1, "other", "jti-denied", authHour); err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	if _, err := a.Authenticate(ctx, 1, s.ID, "jti-denied", now); !errors.Is(err, storage.ErrTokenDenied) {
		t.Errorf("Authenticate with a denied jti on a live session: err = %v, want ErrTokenDenied", err)
	}
	if _, err := a.Authenticate(ctx, 1, "nosuch", "jti-denied", now); !errors.Is(err, storage.ErrTokenDenied) {
		t.Errorf("Authenticate with a denied jti on no session: err = %v, want ErrTokenDenied", err)
	}
	if _, err := a.Authenticate(ctx, 1, s.ID, "jti-fine", now); err != nil {
		t.Errorf("Authenticate with another jti: %v", err)
	}
}

func testRotateRefresh(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	s := newAuthSession(3, now, now.Add(authHour))
	mustCreateSession(t, a, s, authHour)

	at := now.Add(10 * time.Second)
	got, err := a.RotateRefresh(ctx, 3, s.ID, hashOf(s), "h2", at, authHour, authGrace)
	if err != nil {
		t.Fatalf("RotateRefresh h1→h2: %v", err)
	}
	if diff := cmp.Diff(touched(s, at), got); diff != "" {
		t.Errorf("RotateRefresh mismatch (-want +got):\n%s", diff)
	}
	at = at.Add(10 * time.Second)
	got, err = a.RotateRefresh(ctx, 3, s.ID, "h2", "h3", at, authHour, authGrace)
	if err != nil {
		t.Fatalf("RotateRefresh h2→h3: %v", err)
	}
	if diff := cmp.Diff(touched(s, at), got); diff != "" {
		t.Errorf("second RotateRefresh mismatch (-want +got):\n%s", diff)
	}
	if _, err := a.Authenticate(ctx, 3, s.ID, "jti", at); err != nil {
		t.Errorf("Authenticate after rotations: %v", err)
	}
	// The rotation touched the session: the list shows the new last activity.
	list, err := a.ListSessions(ctx, 3)
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	if diff := cmp.Diff([]storage.Session{touched(s, at)}, list); diff != "" {
		t.Errorf("ListSessions after rotations (-want +got):\n%s", diff)
	}
}

func testRotateRefreshNotFound(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	// A session whose refresh record has already expired: nothing to rotate, but the session
	// itself is left alone.
	s := newAuthSession(1, now, now.Add(authHour))
	rt := storage.RefreshToken{Hash: hashOf(s), Family: "fam", ExpiresAt: now.Add(-time.Second)}
	if err := a.CreateSession(ctx, s, rt, authHour); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if _, err := a.RotateRefresh(ctx, 1, s.ID, hashOf(s), "h2", now, authHour, authGrace); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RotateRefresh without a refresh record: err = %v, want ErrNotFound", err)
	}
	if _, err := a.Authenticate(ctx, 1, s.ID, "jti", now); err != nil {
		t.Errorf("Authenticate after RotateRefresh without a refresh record: %v", err)
	}
	// Another user's id with the right hash is no session either.
	if _, err := a.RotateRefresh(ctx, 2, s.ID, hashOf(s), "h2", now, authHour, authGrace); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RotateRefresh as another user: err = %v, want ErrNotFound", err)
	}
}

func testRotateRefreshConcurrent(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	s := newAuthSession(5, now, now.Add(authHour))
	mustCreateSession(t, a, s, authHour)

	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	nexts := make([]string, n)
	for i := range n {
		nexts[i] = randomSID()
		wg.Go(func() {
			_, errs[i] = a.RotateRefresh(ctx, 5, s.ID, hashOf(s), nexts[i], time.Now(), authHour, authGrace)
		})
	}
	wg.Wait()
	winner, raced := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("RotateRefresh: goroutines %d and %d both won", winner, i)
			}
			winner = i
		case errors.Is(err, storage.ErrRefreshRaced):
			raced++
		default:
			t.Errorf("RotateRefresh %d: err = %v, want nil or ErrRefreshRaced", i, err)
		}
	}
	if winner < 0 || raced != n-1 {
		t.Fatalf("RotateRefresh ×%d: %d raced, winner %d; want %d raced and one winner", n, raced, winner, n-1)
	}

	if _, err := a.Authenticate(ctx, 5, s.ID, "jti", time.Now()); err != nil {
		t.Errorf("Authenticate after the race: %v", err)
	}
	// Raced attempts changed nothing: the old token still races, the winner's still rotates.
	if _, err := a.RotateRefresh(ctx, 5, s.ID, hashOf(s), "late", time.Now(), authHour, authGrace); !errors.Is(err, storage.ErrRefreshRaced) {
		t.Errorf("RotateRefresh with the old token again: err = %v, want ErrRefreshRaced", err)
	}
	if _, err := a.RotateRefresh(ctx, 5, s.ID, nexts[winner], "h3", time.Now(), authHour, authGrace); err != nil {
		t.Errorf("RotateRefresh with the winner's token: %v", err)
	}
	if _, err := a.RotateRefresh(ctx, 5, s.ID, "h3", "h4", time.Now(), authHour, authGrace); err != nil {
		t.Errorf("RotateRefresh h3→h4: %v", err)
	}
}

func testRotateRefreshReuseAfterGrace(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	for _, g := range []time.Duration{0, 500 * time.Millisecond} {
		s := newAuthSession(1, now, now.Add(authHour))
		mustCreateSession(t, a, s, authHour)
		if _, err := a.RotateRefresh(ctx, 1, s.ID, hashOf(s), "h2", time.Now(), authHour, g); err != nil {
			t.Fatalf("grace %v: RotateRefresh h1→h2: %v", g, err)
		}
		if g > 0 {
			if _, err := a.RotateRefresh(ctx, 1, s.ID, hashOf(s), "h2b", time.Now(), authHour, g); !errors.Is(err, storage.ErrRefreshRaced) {
				t.Errorf("grace %v: old token within grace: err = %v, want ErrRefreshRaced", g, err)
			}
			time.Sleep(g + 200*time.Millisecond)
		}
		if _, err := a.RotateRefresh(ctx, 1, s.ID, hashOf(s), "h2c", time.Now(), authHour, g); !errors.Is(err, storage.ErrRefreshReused) {
			t.Errorf("grace %v: old token after grace: err = %v, want ErrRefreshReused", g, err)
		}
		checkSessionEnded(t, a, 1, s.ID, "h2")
	}
}

func testRotateRefreshReuseOlder(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	keep := newAuthSession(1, now, now.Add(authHour))
	mustCreateSession(t, a, keep, authHour)

	s := newAuthSession(1, now.Add(time.Millisecond), now.Add(authHour))
	mustCreateSession(t, a, s, authHour)
	for _, step := range [][2]string{{hashOf(s), "h2"}, {"h2", "h3"}} {
		if _, err := a.RotateRefresh(ctx, 1, s.ID, step[0], step[1], time.Now(), authHour, authGrace); err != nil {
			t.Fatalf("RotateRefresh %s→%s: %v", step[0], step[1], err)
		}
	}
	// h1 is older than the previous token: reuse even within the grace period.
	if _, err := a.RotateRefresh(ctx, 1, s.ID, hashOf(s), "x", time.Now(), authHour, authGrace); !errors.Is(err, storage.ErrRefreshReused) {
		t.Errorf("RotateRefresh with a token two rotations old: err = %v, want ErrRefreshReused", err)
	}
	checkSessionEnded(t, a, 1, s.ID, "h3")

	// A token never issued for the session is reuse too.
	u := newAuthSession(1, now.Add(2*time.Millisecond), now.Add(authHour))
	mustCreateSession(t, a, u, authHour)
	if _, err := a.RotateRefresh(ctx, 1, u.ID, "forged", "x", time.Now(), authHour, authGrace); !errors.Is(err, storage.ErrRefreshReused) {
		t.Errorf("RotateRefresh with an unknown token: err = %v, want ErrRefreshReused", err)
	}
	checkSessionEnded(t, a, 1, u.ID, hashOf(u))

	// The user's other session is untouched.
	list, err := a.ListSessions(ctx, 1)
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	if diff := cmp.Diff([]storage.Session{keep}, list); diff != "" {
		t.Errorf("ListSessions after reuse (-want +got):\n%s", diff)
	}
}

func testEndSession(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	s1 := newAuthSession(1, now, now.Add(authHour))
	s2 := newAuthSession(1, now.Add(time.Millisecond), now.Add(authHour))
	mustCreateSession(t, a, s1, authHour)
	mustCreateSession(t, a, s2, authHour)

	if err := a.EndSession(ctx, 1, s1.ID, "jti-1", authHour); err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	checkSessionEnded(t, a, 1, s1.ID, hashOf(s1))
	if _, err := a.Authenticate(ctx, 1, s1.ID, "jti-1", now); !errors.Is(err, storage.ErrTokenDenied) {
		t.Errorf("Authenticate with the ended session's jti: err = %v, want ErrTokenDenied", err)
	}
	list, err := a.ListSessions(ctx, 1)
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	if diff := cmp.Diff([]storage.Session{s2}, list); diff != "" {
		t.Errorf("ListSessions after EndSession (-want +got):\n%s", diff)
	}

	// Idempotent, with or without a jti.
	if err := a.EndSession(ctx, 1, s1.ID, "jti-1", authHour); err != nil {
		t.Errorf("EndSession again: %v", err)
	}
	if err := a.EndSession(ctx, 1, s1.ID, "", 0); err != nil {
		t.Errorf("EndSession again without jti: %v", err)
	}
	if _, err := a.Authenticate(ctx, 1, s2.ID, "jti-2", now); err != nil {
		t.Errorf("Authenticate the other session: %v", err)
	}
}

func testEndSessionDenyTTL(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	s := newAuthSession(1, now, now.Add(authHour))
	mustCreateSession(t, a, s, authHour)
	if err := a.EndSession(ctx, 1, "gone", "jti-short", 400*time.Millisecond); err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	if _, err := a.Authenticate(ctx, 1, s.ID, "jti-short", time.Now()); !errors.Is(err, storage.ErrTokenDenied) {
		t.Errorf("Authenticate within deny TTL: err = %v, want ErrTokenDenied", err)
	}
	time.Sleep(600 * time.Millisecond)
	if _, err := a.Authenticate(ctx, 1, s.ID, "jti-short", time.Now()); err != nil {
		t.Errorf("Authenticate after deny TTL: %v", err)
	}
}

func testEndAllSessions(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	var mine []storage.Session
	for i := range 3 {
		s := newAuthSession(1, now.Add(time.Duration(i)*time.Millisecond), now.Add(authHour))
		mustCreateSession(t, a, s, authHour)
		mine = append(mine, s)
	}
	// Expired sessions still in the set do not count.
	idled := newAuthSession(1, now, now.Add(authHour))
	mustCreateSession(t, a, idled, 300*time.Millisecond)
	capped := newAuthSession(1, now, now.Add(authHour))
	mustCreateSession(t, a, capped, authHour)
	if _, err := a.Authenticate(ctx, 1, capped.ID, "jti", capped.ExpiresAt); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Authenticate at ExpiresAt: err = %v, want ErrNotFound", err)
	}
	other := newAuthSession(2, now, now.Add(authHour))
	mustCreateSession(t, a, other, authHour)
	time.Sleep(500 * time.Millisecond)

	n, err := a.EndAllSessions(ctx, 1)
	if err != nil {
		t.Fatalf("EndAllSessions: %v", err)
	}
	if n != len(mine) {
		t.Errorf("EndAllSessions = %d, want %d", n, len(mine))
	}
	for _, s := range mine {
		checkSessionEnded(t, a, 1, s.ID, hashOf(s))
	}
	if n, err := a.EndAllSessions(ctx, 1); err != nil || n != 0 {
		t.Errorf("EndAllSessions again = %d, %v; want 0, nil", n, err)
	}
	if _, err := a.Authenticate(ctx, 2, other.ID, "jti", time.Now()); err != nil {
		t.Errorf("Authenticate another user's session: %v", err)
	}
	// The user can sign in again afterwards, on the epoch as it is now.
	again := newAuthSession(1, nowMillis(), now.Add(authHour))
	if again.Epoch, err = a.SessionEpoch(ctx, 1); err != nil {
		t.Fatalf("SessionEpoch: %v", err)
	}
	mustCreateSession(t, a, again, authHour)
	if _, err := a.Authenticate(ctx, 1, again.ID, "jti", time.Now()); err != nil {
		t.Errorf("Authenticate a session created after EndAllSessions: %v", err)
	}
}

func testListSessions(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	// Created in another order than they logged in.
	b := newAuthSession(4, now.Add(-2*time.Minute), now.Add(authHour))
	c := newAuthSession(4, now.Add(-time.Minute), now.Add(authHour))
	first := newAuthSession(4, now.Add(-3*time.Minute), now.Add(2*authHour))
	for _, s := range []storage.Session{c, b, first} {
		s.LastActivityAt = now
		mustCreateSession(t, a, s, authHour)
	}
	mustCreateSession(t, a, newAuthSession(5, now.Add(-4*time.Minute), now.Add(authHour)), authHour)

	got, err := a.ListSessions(ctx, 4)
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	var want []storage.Session
	for _, s := range []storage.Session{first, b, c} {
		s.LastActivityAt = now
		want = append(want, s)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListSessions (-want +got):\n%s", diff)
	}
}

func testListSessionsPrunesExpired(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	live := newAuthSession(1, now, now.Add(authHour))
	idled := newAuthSession(1, now.Add(-time.Minute), now.Add(authHour))
	capped := newAuthSession(1, now.Add(-2*time.Minute), now.Add(authHour))
	mustCreateSession(t, a, live, authHour)
	mustCreateSession(t, a, idled, 300*time.Millisecond)
	mustCreateSession(t, a, capped, authHour)
	if _, err := a.Authenticate(ctx, 1, capped.ID, "jti", capped.ExpiresAt); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Authenticate at ExpiresAt: err = %v, want ErrNotFound", err)
	}
	time.Sleep(500 * time.Millisecond)
	for range 2 { // the second call sees the pruned set
		got, err := a.ListSessions(ctx, 1)
		if err != nil {
			t.Fatalf("ListSessions: %v", err)
		}
		if diff := cmp.Diff([]storage.Session{live}, got); diff != "" {
			t.Errorf("ListSessions with expired sessions (-want +got):\n%s", diff)
		}
	}
}

func testLoginFailures(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	const email, window = "ada@example.com", time.Minute
	for want := 1; want <= 3; want++ {
		n, err := a.RecordLoginFailure(ctx, email, window)
		if err != nil || n != want {
			t.Fatalf("RecordLoginFailure #%d = %d, %v; want %d, nil", want, n, err, want)
		}
	}
	n, ttl, err := a.LoginFailures(ctx, email)
	if err != nil || n != 3 {
		t.Errorf("LoginFailures = %d, %v; want 3, nil", n, err)
	}
	if ttl <= window-10*time.Second || ttl > window {
		t.Errorf("LoginFailures ttl = %v, want just under %v", ttl, window)
	}
	if n, ttl, err := a.LoginFailures(ctx, "grace@example.com"); err != nil || n != 0 || ttl != 0 {
		t.Errorf("LoginFailures of another email = %d, %v, %v; want 0, 0, nil", n, ttl, err)
	}

	if err := a.ClearLoginFailures(ctx, email); err != nil {
		t.Fatalf("ClearLoginFailures: %v", err)
	}
	if n, ttl, err := a.LoginFailures(ctx, email); err != nil || n != 0 || ttl != 0 {
		t.Errorf("LoginFailures after clear = %d, %v, %v; want 0, 0, nil", n, ttl, err)
	}
	if n, err := a.RecordLoginFailure(ctx, email, window); err != nil || n != 1 {
		t.Errorf("RecordLoginFailure after clear = %d, %v; want 1, nil", n, err)
	}
}

func testForgiveLoginFailure(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	const email, window = "ada@example.com", time.Minute
	if err := a.ForgiveLoginFailure(ctx, email); err != nil {
		t.Fatalf("ForgiveLoginFailure without a count: %v", err)
	}
	if n, ttl, err := a.LoginFailures(ctx, email); err != nil || n != 0 || ttl != 0 {
		t.Errorf("LoginFailures after forgiving nothing = %d, %v, %v; want 0, 0, nil", n, ttl, err)
	}
	for range 3 {
		if _, err := a.RecordLoginFailure(ctx, email, window); err != nil {
			t.Fatal(err)
		}
	}
	_, before, _ := a.LoginFailures(ctx, email)
	if err := a.ForgiveLoginFailure(ctx, email); err != nil {
		t.Fatalf("ForgiveLoginFailure: %v", err)
	}
	n, ttl, err := a.LoginFailures(ctx, email)
	if err != nil || n != 2 {
		t.Errorf("LoginFailures after forgiving one of 3 = %d, %v; want 2, nil", n, err)
	}
	if ttl <= 0 || ttl > before {
		t.Errorf("forgiving moved the window: %v left before, %v after", before, ttl)
	}
	if n, err := a.RecordLoginFailure(ctx, email, window); err != nil || n != 3 {
		t.Errorf("RecordLoginFailure after forgiving = %d, %v; want 3, nil", n, err)
	}
	for range 5 {
		if err := a.ForgiveLoginFailure(ctx, email); err != nil {
			t.Fatal(err)
		}
	}
	if n, ttl, err := a.LoginFailures(ctx, email); err != nil || n != 0 || ttl != 0 {
		t.Errorf("LoginFailures after forgiving more than was counted = %d, %v, %v; want 0, 0, nil", n, ttl, err)
	}
	if n, err := a.RecordLoginFailure(ctx, email, window); err != nil || n != 1 {
		t.Errorf("RecordLoginFailure after the count reached zero = %d, %v; want 1, nil", n, err)
	}
}

func testLoginFailuresFixedWindow(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	const email, window = "ada@example.com", time.Second
	if n, err := a.RecordLoginFailure(ctx, email, window); err != nil || n != 1 {
		t.Fatalf("RecordLoginFailure = %d, %v; want 1, nil", n, err)
	}
	time.Sleep(600 * time.Millisecond)
	if n, err := a.RecordLoginFailure(ctx, email, window); err != nil || n != 2 {
		t.Fatalf("RecordLoginFailure at 0.6s = %d, %v; want 2, nil", n, err)
	}
	// The window runs from the first failure: about 0.4s are left, not 1s.
	if n, ttl, err := a.LoginFailures(ctx, email); err != nil || n != 2 || ttl <= 0 || ttl > 450*time.Millisecond {
		t.Errorf("LoginFailures at 0.6s = %d, %v, %v; want 2, ≤0.4s, nil", n, ttl, err)
	}
	time.Sleep(600 * time.Millisecond)
	if n, ttl, err := a.LoginFailures(ctx, email); err != nil || n != 0 || ttl != 0 {
		t.Errorf("LoginFailures at 1.2s = %d, %v, %v; want 0, 0, nil", n, ttl, err)
	}
	if n, err := a.RecordLoginFailure(ctx, email, window); err != nil || n != 1 {
		t.Errorf("RecordLoginFailure at 1.2s = %d, %v; want 1, nil", n, err)
	}
}

func testResetToken(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	grant := storage.ResetToken{UserID: 7, PasswordVersion: 3}
	if err := a.SaveResetToken(ctx, "hash-1", grant, authHour); err != nil {
		t.Fatalf("SaveResetToken: %v", err)
	}
	if err := a.SaveResetToken(ctx, "hash-2", storage.ResetToken{UserID: 8, PasswordVersion: 1}, authHour); err != nil {
		t.Fatalf("SaveResetToken: %v", err)
	}
	got, err := a.ConsumeResetToken(ctx, "hash-1")
	if err != nil {
		t.Fatalf("ConsumeResetToken: %v", err)
	}
	if diff := cmp.Diff(grant, got); diff != "" {
		t.Errorf("ConsumeResetToken (-want +got):\n%s", diff)
	}
	if _, err := a.ConsumeResetToken(ctx, "hash-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ConsumeResetToken again: err = %v, want ErrNotFound", err)
	}
	if got, err := a.ConsumeResetToken(ctx, "hash-2"); err != nil || got.UserID != 8 {
		t.Errorf("ConsumeResetToken of the other token = %+v, %v; want user 8", got, err)
	}
}

func testResetTokenConcurrent(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	for round := range 5 {
		if err := a.SaveResetToken(ctx, "hash", storage.ResetToken{UserID: 7, PasswordVersion: 1}, authHour); err != nil {
			t.Fatalf("SaveResetToken: %v", err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() { _, errs[i] = a.ConsumeResetToken(ctx, "hash") })
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, storage.ErrNotFound):
				t.Errorf("round %d: ConsumeResetToken: err = %v, want nil or ErrNotFound", round, err)
			}
		}
		if wins != 1 {
			t.Errorf("round %d: %d concurrent ConsumeResetToken succeeded, want 1", round, wins)
		}
	}
}

func testResetTokenExpires(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	if err := a.SaveResetToken(ctx, "hash", storage.ResetToken{UserID: 7, PasswordVersion: 1}, 300*time.Millisecond); err != nil {
		t.Fatalf("SaveResetToken: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := a.ConsumeResetToken(ctx, "hash"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ConsumeResetToken after ttl: err = %v, want ErrNotFound", err)
	}
}

// checkSessionEnded checks that a session is gone everywhere: Authenticate, RotateRefresh with
// its current token, and the user's list.
func checkSessionEnded(t *testing.T, a storage.AuthState, userID int64, sid, current string) {
	t.Helper()
	ctx := t.Context()
	if _, err := a.Authenticate(ctx, userID, sid, "jti-check", time.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Authenticate ended session: err = %v, want ErrNotFound", err)
	}
	if _, err := a.RotateRefresh(ctx, userID, sid, current, "next", time.Now(), authHour, authGrace); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RotateRefresh ended session: err = %v, want ErrNotFound", err)
	}
	list, err := a.ListSessions(ctx, userID)
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	for _, s := range list {
		if s.ID == sid {
			t.Errorf("ListSessions lists ended session %s", sid)
		}
	}
}

// newAuthSession returns a session of user with a random id that logged in (and was last
// active) at login, with times at the millisecond precision backends keep.
func newAuthSession(userID int64, login, expires time.Time) storage.Session {
	login, expires = toMillis(login), toMillis(expires)
	return storage.Session{
		ID:             randomSID(),
		UserID:         userID,
		Email:          "ada@example.com",
		Role:           storage.RoleUser,
		LoginAt:        login,
		LastActivityAt: login,
		ExpiresAt:      expires,
		ClientIP:       "192.0.2.7",
		UserAgent:      "Mozilla/5.0 (storagetest)",
	}
}

// mustCreateSession creates s with a refresh record whose hash is hashOf(s), expiring with s.
func mustCreateSession(t *testing.T, a storage.AuthState, s storage.Session, idle time.Duration) {
	t.Helper()
	rt := storage.RefreshToken{Hash: hashOf(s), Family: "family-" + s.ID, ExpiresAt: s.ExpiresAt}
	if err := a.CreateSession(t.Context(), s, rt, idle); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

// hashOf is the refresh-token hash a session is created with.
func hashOf(s storage.Session) string { return "h1-" + s.ID }

// touched is s as Authenticate returns it after TouchSession at now.
func touched(s storage.Session, now time.Time) storage.Session {
	s.LastActivityAt = toMillis(now)
	return s
}

// randomID returns a session id as the service makes them: random, URL-safe, no braces or colons.
func randomSID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

func nowMillis() time.Time { return toMillis(time.Now()) }

// toMillis truncates t to the millisecond, in UTC.
func toMillis(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }
