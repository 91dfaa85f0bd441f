package memory_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/memory"
)

// A restart in embedded mode keeps what was live: sessions (with their refresh records),
// denied tokens, failed-login counts and reset grants; what had expired stays gone.
func TestSnapshotRoundTrip(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := memory.NewAuthState(clock)
	sess := storage.Session{ID: "s1", UserID: 7, Email: "ada@example.com", Role: storage.RoleUser,
		LoginAt: now, LastActivityAt: now, ExpiresAt: now.Add(12 * time.Hour), ClientIP: "192.0.2.1", UserAgent: "test"}
	if err := a.CreateSession(ctx, sess, storage.RefreshToken{Hash: "h1", Family: "f", ExpiresAt: now.Add(12 * time.Hour)}, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	short := sess
	short.ID = "s2"
	if err := a.CreateSession(ctx, short, storage.RefreshToken{Hash: "h2", Family: "g", ExpiresAt: now.Add(time.Hour)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := a.EndSession(ctx, 8, "gone", "jti-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RecordLoginFailure(ctx, "bob@example.com", 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := a.SaveResetToken(ctx, "resethash", storage.ResetToken{UserID: 7, PasswordVersion: 3}, time.Hour); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state", "auth-state.json")
	if err := a.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil {
		t.Fatalf("snapshot file: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file mode %v, want 0600", fi.Mode().Perm())
	}

	now = now.Add(5 * time.Minute) // the restart took a while: s2's one-minute idle has passed
	b := memory.NewAuthState(clock)
	if err := b.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := b.Authenticate(ctx, 7, "s1", "jti-x", now)
	if err != nil {
		t.Fatalf("session after restart: %v", err)
	}
	if diff := cmp.Diff(sess, got); diff != "" {
		t.Errorf("session after restart (-want +got):\n%s", diff)
	}
	if _, err := b.Authenticate(ctx, 7, "s2", "jti-x", now); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("an idle-expired session came back: %v", err)
	}
	if _, err := b.Authenticate(ctx, 7, "s1", "jti-1", now); !errors.Is(err, storage.ErrTokenDenied) {
		t.Errorf("denylist lost across restart: %v", err)
	}
	if _, err := b.RotateRefresh(ctx, 7, "s1", "h1", "h1b", now, 30*time.Minute, 0); err != nil {
		t.Errorf("refresh record lost across restart: %v", err)
	}
	if n, _, err := b.LoginFailures(ctx, "bob@example.com"); err != nil || n != 1 {
		t.Errorf("login failures after restart = %d, %v; want 1", n, err)
	}
	if r, err := b.ConsumeResetToken(ctx, "resethash"); err != nil || r != (storage.ResetToken{UserID: 7, PasswordVersion: 3}) {
		t.Errorf("reset grant after restart = %+v, %v", r, err)
	}
}

func TestLoadFileMissingAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	a := memory.NewAuthState(nil)
	if err := a.LoadFile(filepath.Join(dir, "none.json")); err != nil {
		t.Errorf("missing snapshot (first start): %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.LoadFile(bad); err == nil {
		t.Error("a corrupt snapshot loaded without error")
	}
	if b, _ := os.ReadFile(bad); string(b) != "{not json" {
		t.Error("a corrupt snapshot was modified")
	}
}

// The session epochs survive a restart, as they do in Valkey: a grant decided on an epoch from
// before a change that ended the user's sessions is still refused after the restart.
func TestSnapshotKeepsSessionEpochs(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := memory.NewAuthState(clock)
	if _, err := a.EndAllSessions(ctx, 7); err != nil {
		t.Fatal(err)
	}
	moved, err := a.SessionEpoch(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "auth-state.json")
	if err := a.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	b := memory.NewAuthState(clock)
	if err := b.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if got, err := b.SessionEpoch(ctx, 7); err != nil || got != moved {
		t.Fatalf("SessionEpoch after restart = %d, %v; want %d", got, err, moved)
	}
	stale := storage.Session{ID: "s1", UserID: 7, LoginAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := b.CreateSession(ctx, stale, storage.RefreshToken{Hash: "h", ExpiresAt: now.Add(time.Hour)}, time.Minute); !errors.Is(err, storage.ErrStale) {
		t.Errorf("CreateSession on the epoch from before the change: err = %v, want ErrStale", err)
	}
}
