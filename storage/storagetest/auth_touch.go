package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage"
)

// The lazy sliding expiry: Authenticate writes nothing, TouchSession extends.

// mustAuthenticate authenticates and compares the session with want.
func mustAuthenticate(t *testing.T, a storage.AuthState, userID int64, sid string, now time.Time, want storage.Session) {
	t.Helper()
	got, err := a.Authenticate(t.Context(), userID, sid, "jti-check", now)
	if err != nil {
		t.Fatalf("Authenticate at %v: %v", now, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Authenticate at %v mismatch (-want +got):\n%s", now, diff)
	}
}

// testTouchSession: a touch never moves the last activity back (a later touch from another
// instance got there first), and never revives a session that has ended.
func testTouchSession(t *testing.T, a storage.AuthState) {
	ctx := t.Context()
	now := nowMillis()
	s := newAuthSession(1, now, now.Add(authHour))
	mustCreateSession(t, a, s, authHour)
	late, early := now.Add(2*time.Second), now.Add(time.Second)
	if err := a.TouchSession(ctx, 1, s.ID, late, authHour); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	if err := a.TouchSession(ctx, 1, s.ID, early, authHour); err != nil {
		t.Fatalf("TouchSession with an earlier now: %v", err)
	}
	mustAuthenticate(t, a, 1, s.ID, late, touched(s, late))
	got, err := a.ListSessions(ctx, 1)
	if err != nil || len(got) != 1 || !got[0].LastActivityAt.Equal(late) {
		t.Errorf("ListSessions after touches = %v, %v; want one, last active at %v", got, err, late)
	}

	if err := a.EndSession(ctx, 1, s.ID, "", 0); err != nil {
		t.Fatal(err)
	}
	if err := a.TouchSession(ctx, 1, s.ID, late.Add(time.Second), authHour); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TouchSession of an ended session: err = %v, want ErrNotFound", err)
	}
	checkSessionEnded(t, a, 1, s.ID, hashOf(s))
	if err := a.TouchSession(ctx, 1, "nosuch", now, authHour); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("TouchSession unknown: err = %v, want ErrNotFound", err)
	}
}
