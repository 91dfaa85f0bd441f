package valkey_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/storagetest"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
)

func TestAuthState(t *testing.T) {
	storagetest.RunAuthState(t, func(t *testing.T) storage.AuthState {
		return valkey.NewAuthState(valkeytest.Open(t))
	})
}

// server reads keys straight from Valkey, under the client's prefix.
type server struct {
	t  *testing.T
	c  *valkey.Client
	vk valkeygo.Client
}

func (s server) pttl(key string) time.Duration {
	s.t.Helper()
	n, err := s.vk.Do(s.t.Context(), s.vk.B().Pttl().Key(s.c.Key(key)).Build()).AsInt64()
	if err != nil {
		s.t.Fatalf("PTTL %s: %v", key, err)
	}
	return time.Duration(n) * time.Millisecond
}

func (s server) exists(key string) bool {
	s.t.Helper()
	n, err := s.vk.Do(s.t.Context(), s.vk.B().Exists().Key(s.c.Key(key)).Build()).AsInt64()
	if err != nil {
		s.t.Fatalf("EXISTS %s: %v", key, err)
	}
	return n == 1
}

func (s server) hgetall(key string) map[string]string {
	s.t.Helper()
	m, err := s.vk.Do(s.t.Context(), s.vk.B().Hgetall().Key(s.c.Key(key)).Build()).AsStrMap()
	if err != nil {
		s.t.Fatalf("HGETALL %s: %v", key, err)
	}
	return m
}

func (s server) get(key string) string {
	s.t.Helper()
	v, err := s.vk.Do(s.t.Context(), s.vk.B().Get().Key(s.c.Key(key)).Build()).ToString()
	if err != nil {
		s.t.Fatalf("GET %s: %v", key, err)
	}
	return v
}

func (s server) smembers(key string) []string {
	s.t.Helper()
	v, err := s.vk.Do(s.t.Context(), s.vk.B().Smembers().Key(s.c.Key(key)).Build()).AsStrSlice()
	if err != nil {
		s.t.Fatalf("SMEMBERS %s: %v", key, err)
	}
	return v
}

var cmpSorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })

// checkTTL checks that key expires in (want-slack, want].
func (s server) checkTTL(key string, want time.Duration) {
	s.t.Helper()
	const slack = 2 * time.Second
	if got := s.pttl(key); got > want || got <= want-slack {
		s.t.Errorf("PTTL %s = %v, want just under %v", key, got, want)
	}
}

// TestKeys checks the documented key names, their contents and their TTLs on the server.
func TestKeys(t *testing.T) {
	ctx := t.Context()
	c := valkeytest.Open(t)
	a := valkey.NewAuthState(c)
	srv := server{t: t, c: c, vk: c.Valkey()}

	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	s := storage.Session{
		ID: "abc", UserID: 7, Email: "ada@example.com", Role: storage.RoleAdmin,
		LoginAt: now, LastActivityAt: now, ExpiresAt: now.Add(2 * time.Hour),
		ClientIP: "192.0.2.1", UserAgent: "test",
	}
	rt := storage.RefreshToken{Hash: "h1", Family: "fam", ExpiresAt: now.Add(3 * time.Hour)}
	if err := a.CreateSession(ctx, s, rt, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	// A second, shorter session must not shorten the set's TTL.
	s2 := s
	s2.ID, s2.ExpiresAt = "def", now.Add(time.Hour)
	if err := a.CreateSession(ctx, s2, storage.RefreshToken{Hash: "x", ExpiresAt: s2.ExpiresAt}, time.Minute); err != nil {
		t.Fatal(err)
	}

	srv.checkTTL("session:{7}:{abc}", 30*time.Minute)
	srv.checkTTL("refresh_token:{7}:{abc}", 3*time.Hour)
	srv.checkTTL("sessions:{7}", 3*time.Hour)
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	wantSession := map[string]string{
		"user_id": "7", "email": "ada@example.com", "role": "admin",
		"login_at": ms(now), "last_activity_at": ms(now), "expires_at": ms(s.ExpiresAt),
		"client_ip": "192.0.2.1", "user_agent": "test", "epoch": "0",
	}
	if diff := cmp.Diff(wantSession, srv.hgetall("session:{7}:{abc}")); diff != "" {
		t.Errorf("session hash (-want +got):\n%s", diff)
	}
	wantRefresh := map[string]string{"current": "h1", "family": "fam", "expires_at": ms(rt.ExpiresAt)}
	if diff := cmp.Diff(wantRefresh, srv.hgetall("refresh_token:{7}:{abc}")); diff != "" {
		t.Errorf("refresh hash (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"abc", "def"}, srv.smembers("sessions:{7}"), cmpSorted); diff != "" {
		t.Errorf("sessions set (-want +got):\n%s", diff)
	}

	// Authenticate writes nothing; a touch near the absolute cap: the TTL shrinks to what is left.
	at := s.ExpiresAt.Add(-5 * time.Minute)
	if _, err := a.Authenticate(ctx, 7, "abc", "jti", at); err != nil {
		t.Fatal(err)
	}
	if got := srv.hgetall("session:{7}:{abc}")["last_activity_at"]; got != ms(now) {
		t.Errorf("last_activity_at after Authenticate = %s, want %s (unchanged)", got, ms(now))
	}
	if err := a.TouchSession(ctx, 7, "abc", at, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.checkTTL("session:{7}:{abc}", 5*time.Minute)
	if got := srv.hgetall("session:{7}:{abc}")["last_activity_at"]; got != ms(at) {
		t.Errorf("last_activity_at = %s, want %s", got, ms(at))
	}

	// Rotation keeps the refresh record's TTL and records the previous hash.
	before := srv.pttl("refresh_token:{7}:{abc}")
	rotatedAt := now.Add(time.Minute)
	if _, err := a.RotateRefresh(ctx, 7, "abc", "h1", "h2", rotatedAt, 30*time.Minute, time.Second); err != nil {
		t.Fatal(err)
	}
	if after := srv.pttl("refresh_token:{7}:{abc}"); after > before {
		t.Errorf("refresh PTTL after rotation = %v, more than %v before", after, before)
	}
	wantRefresh = map[string]string{
		"current": "h2", "prev": "h1", "rotated_at": ms(rotatedAt), "family": "fam", "expires_at": ms(rt.ExpiresAt),
	}
	if diff := cmp.Diff(wantRefresh, srv.hgetall("refresh_token:{7}:{abc}")); diff != "" {
		t.Errorf("refresh hash after rotation (-want +got):\n%s", diff)
	}
	srv.checkTTL("session:{7}:{abc}", 30*time.Minute)

	// EndSession with a jti to deny.
	if err := a.EndSession(ctx, 7, "abc", "jti-9", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"session:{7}:{abc}", "refresh_token:{7}:{abc}"} {
		if srv.exists(k) {
			t.Errorf("%s exists after EndSession", k)
		}
	}
	if diff := cmp.Diff([]string{"def"}, srv.smembers("sessions:{7}"), cmpSorted); diff != "" {
		t.Errorf("sessions set after EndSession (-want +got):\n%s", diff)
	}
	srv.checkTTL("blacklisted_token:{jti-9}", 10*time.Minute)

	// Login failures: a counter whose TTL is set by the first failure only.
	if _, err := a.RecordLoginFailure(ctx, "ada@example.com", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RecordLoginFailure(ctx, "ada@example.com", 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := srv.get("login_attempts:{ada@example.com}"); got != "2" {
		t.Errorf("login_attempts = %q, want 2", got)
	}
	srv.checkTTL("login_attempts:{ada@example.com}", time.Hour)

	// Reset tokens: JSON under the hash.
	if err := a.SaveResetToken(ctx, "feed", storage.ResetToken{UserID: 7, PasswordVersion: 2}, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := srv.get("reset_token:{feed}"); got != `{"user_id":7,"password_version":2}` {
		t.Errorf("reset_token = %s", got)
	}
	srv.checkTTL("reset_token:{feed}", 15*time.Minute)
	if _, err := a.ConsumeResetToken(ctx, "feed"); err != nil {
		t.Fatal(err)
	}
	if srv.exists("reset_token:{feed}") {
		t.Error("reset_token exists after ConsumeResetToken")
	}

	// EndAllSessions removes the set with the sessions.
	if n, err := a.EndAllSessions(ctx, 7); err != nil || n != 1 {
		t.Errorf("EndAllSessions = %d, %v; want 1, nil", n, err)
	}
	for _, k := range []string{"session:{7}:{def}", "refresh_token:{7}:{def}", "sessions:{7}"} {
		if srv.exists(k) {
			t.Errorf("%s exists after EndAllSessions", k)
		}
	}
}

// TestListPrunesSet checks that ListSessions drops expired ids and their refresh records.
func TestListPrunesSet(t *testing.T) {
	ctx := t.Context()
	c := valkeytest.Open(t)
	a := valkey.NewAuthState(c)
	srv := server{t: t, c: c, vk: c.Valkey()}
	now := time.Now()
	for _, sid := range []string{"live", "idle"} {
		idle := time.Hour
		if sid == "idle" {
			idle = 100 * time.Millisecond
		}
		s := storage.Session{ID: sid, UserID: 3, LoginAt: now, LastActivityAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := a.CreateSession(ctx, s, storage.RefreshToken{Hash: "h", ExpiresAt: s.ExpiresAt}, idle); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(250 * time.Millisecond)
	if _, err := a.ListSessions(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"live"}, srv.smembers("sessions:{3}"), cmpSorted); diff != "" {
		t.Errorf("sessions set after ListSessions (-want +got):\n%s", diff)
	}
	if srv.exists("refresh_token:{3}:{idle}") {
		t.Error("refresh record of an expired session survives ListSessions")
	}
}

// TestScriptCacheFlushed checks that the pipelined scripts recover when the server has
// forgotten them (restart, failover, SCRIPT FLUSH).
func TestScriptCacheFlushed(t *testing.T) {
	ctx := t.Context()
	c := valkeytest.Open(t)
	a := valkey.NewAuthState(c)
	vk := c.Valkey()
	now := time.Now()
	s := storage.Session{ID: "s", UserID: 1, LoginAt: now, LastActivityAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := a.CreateSession(ctx, s, storage.RefreshToken{Hash: "h", ExpiresAt: s.ExpiresAt}, time.Hour); err != nil {
		t.Fatal(err)
	}
	flush := func() {
		if err := vk.Do(ctx, vk.B().ScriptFlush().Build()).Error(); err != nil {
			t.Fatalf("SCRIPT FLUSH: %v", err)
		}
	}
	flush()
	if _, err := a.Authenticate(ctx, 1, "s", "jti", time.Now()); err != nil {
		t.Errorf("Authenticate after SCRIPT FLUSH: %v", err)
	}
	flush()
	if err := a.EndSession(ctx, 1, "s", "jti", time.Minute); err != nil {
		t.Errorf("EndSession after SCRIPT FLUSH: %v", err)
	}
	if _, err := a.Authenticate(ctx, 1, "s", "other", time.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Authenticate after EndSession: err = %v, want ErrNotFound", err)
	}
}

// TestOpenUnreachable checks that a server that is not there, or does not answer, fails Open
// within the default timeouts instead of hanging.
func TestOpenUnreachable(t *testing.T) {
	// A server that accepts connections and never answers: the handshake must time out.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // read nothing, answer nothing
		}
	}()

	for _, addr := range []string{
		"127.0.0.1:1",    // refused at once
		"192.0.2.1:6379", // TEST-NET-1: no route, or no answer and the dial timeout decides
		ln.Addr().String(),
	} {
		start := time.Now()
		c, err := valkey.Open(context.Background(), valkey.Config{Addrs: []string{addr}})
		if err == nil {
			c.Close()
			t.Errorf("Open(%s) succeeded", addr)
			continue
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Open(%s) took %v to fail, want under 3s", addr, d)
		}
	}
}

func TestOpenRejectsBracesInPrefix(t *testing.T) {
	if _, err := valkey.Open(context.Background(), valkey.Config{KeyPrefix: "app{1}:"}); err == nil {
		t.Error("Open with braces in KeyPrefix succeeded")
	}
}
