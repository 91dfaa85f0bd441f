package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// A session decided on an epoch that EndAllSessions has moved on since is refused, and nothing
// of it is stored; one decided on the current epoch is stored and keeps its epoch.
func testSessionEpoch(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	e0, err := a.SessionEpoch(ctx, 1)
	if err != nil || e0 != 0 {
		t.Fatalf("SessionEpoch of a new user = %d, %v; want 0, nil", e0, err)
	}
	live := newAuthSession(1, now, now.Add(authHour))
	mustCreateSession(t, a, live, authHour)

	// A sign-in read the epoch, then the user was changed and their sessions ended.
	if _, err := a.EndAllSessions(ctx, 1); err != nil {
		t.Fatalf("EndAllSessions: %v", err)
	}
	e1, err := a.SessionEpoch(ctx, 1)
	if err != nil || e1 == e0 {
		t.Fatalf("SessionEpoch after EndAllSessions = %d, %v; want it moved on from %d", e1, err, e0)
	}
	stale := newAuthSession(1, now, now.Add(authHour))
	stale.Epoch = e0
	rt := storage.RefreshToken{Hash: hashOf(stale), Family: "f", ExpiresAt: stale.ExpiresAt}
	if err := a.CreateSession(ctx, stale, rt, authHour); !errors.Is(err, storage.ErrStale) {
		t.Fatalf("CreateSession on the old epoch: err = %v, want ErrStale", err)
	}
	checkSessionEnded(t, a, 1, stale.ID, hashOf(stale))
	if list, err := a.ListSessions(ctx, 1); err != nil || len(list) != 0 {
		t.Errorf("ListSessions after a refused CreateSession = %v, %v; want none", list, err)
	}

	fresh := newAuthSession(1, now, now.Add(authHour))
	fresh.Epoch = e1
	mustCreateSession(t, a, fresh, authHour)
	got, err := a.Authenticate(ctx, 1, fresh.ID, "jti", now)
	if err != nil {
		t.Fatalf("Authenticate a session on the current epoch: %v", err)
	}
	if got.Epoch != e1 {
		t.Errorf("session's Epoch = %d, want %d", got.Epoch, e1)
	}
	// A refused grant changes nothing for the user's other sessions.
	if err := a.CreateSession(ctx, stale, rt, authHour); !errors.Is(err, storage.ErrStale) {
		t.Fatalf("CreateSession on the old epoch again: err = %v, want ErrStale", err)
	}
	if _, err := a.Authenticate(ctx, 1, fresh.ID, "jti", now); err != nil {
		t.Errorf("Authenticate after a refused grant: %v", err)
	}
}

// One user's epoch is theirs alone: ending a user's sessions leaves other users' grants alone.
func testSessionEpochPerUser(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	for range 2 {
		if _, err := a.EndAllSessions(ctx, 1); err != nil {
			t.Fatalf("EndAllSessions: %v", err)
		}
	}
	if e, err := a.SessionEpoch(ctx, 2); err != nil || e != 0 {
		t.Fatalf("SessionEpoch of another user = %d, %v; want 0, nil", e, err)
	}
	mustCreateSession(t, a, newAuthSession(2, now, now.Add(authHour)), authHour)
	e1, err := a.SessionEpoch(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.EndAllSessions(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if e2, err := a.SessionEpoch(ctx, 1); err != nil || e2 == e1 {
		t.Errorf("SessionEpoch after another EndAllSessions = %d, %v; want it moved on from %d", e2, err, e1)
	}
}

// DenyToken denies a jti without a session, for its TTL: TokenDenied and Authenticate both see
// it; other jtis and a TTL that is not positive deny nothing.
func testDenyToken(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	if denied, err := a.TokenDenied(ctx, "jti-service"); err != nil || denied {
		t.Fatalf("TokenDenied before DenyToken = %v, %v; want false, nil", denied, err)
	}
	if err := a.DenyToken(ctx, "jti-service", 400*time.Millisecond); err != nil {
		t.Fatalf("DenyToken: %v", err)
	}
	if err := a.DenyToken(ctx, "jti-zero", 0); err != nil {
		t.Fatalf("DenyToken with no TTL: %v", err)
	}
	for jti, want := range map[string]bool{"jti-service": true, "jti-zero": false, "jti-other": false} {
		if denied, err := a.TokenDenied(ctx, jti); err != nil || denied != want {
			t.Errorf("TokenDenied(%s) = %v, %v; want %v", jti, denied, err, want)
		}
	}
	s := newAuthSession(1, now, now.Add(authHour))
	mustCreateSession(t, a, s, authHour)
	if _, err := a.Authenticate(ctx, 1, s.ID, "jti-service", now); !errors.Is(err, storage.ErrTokenDenied) {
		t.Errorf("Authenticate with a denied jti: err = %v, want ErrTokenDenied", err)
	}
	time.Sleep(600 * time.Millisecond)
	if denied, err := a.TokenDenied(ctx, "jti-service"); err != nil || denied {
		t.Errorf("TokenDenied after the TTL = %v, %v; want false, nil", denied, err)
	}
}
