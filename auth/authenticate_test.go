package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/memory"
)

// fakeTokens accepts the tokens in its map as access tokens, and nothing else.
type fakeTokens map[string]auth.Claims

func (f fakeTokens) Issue(int64, string, storage.Role, auth.TokenType, time.Time) (string, auth.Claims, error) {
	return "", auth.Claims{}, errors.New("not issuing")
}

func (f fakeTokens) Verify(tok string, typ auth.TokenType) (auth.Claims, error) {
	c, ok := f[tok]
	if !ok || typ != auth.AccessToken {
		return auth.Claims{}, errors.New("invalid")
	}
	return c, nil
}

type plainHasher struct{}

func (plainHasher) Hash(_ context.Context, p string) (string, error) { return "h:" + p, nil }
func (plainHasher) Verify(_ context.Context, e, p string) (bool, error) {
	return e == "h:"+p, nil
}

// failingState is the in-process auth state whose session checks fail as told.
type failingState struct {
	*memory.AuthState
	fail error
}

func (f *failingState) Authenticate(ctx context.Context, userID int64, sid, jti string, now time.Time) (storage.Session, error) {
	if f.fail != nil {
		return storage.Session{}, f.fail
	}
	return f.AuthState.Authenticate(ctx, userID, sid, jti, now)
}

// TestAuthenticate: a live session makes the caller, with the session's role whatever the
// token claims; a forged token or an ended session is refused; a service token needs no
// session; a state store failing is ErrUnavailable, not a refusal.
func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	exp := now.Add(time.Hour)
	tokens := fakeTokens{
		"alice":   {UserID: 7, SessionID: "s7", ID: "j7", Role: storage.RoleUser, ExpiresAt: exp},
		"gone":    {UserID: 8, SessionID: "s8", ID: "j8", Role: storage.RoleUser, ExpiresAt: exp},
		"service": {SessionID: "svc", ID: "j9", Role: auth.RoleService, ExpiresAt: exp},
		"admin?":  {UserID: 7, SessionID: "s7", ID: "j10", Role: storage.RoleAdmin, ExpiresAt: exp},
	}
	mem := memory.NewAuthState(nil)
	t.Cleanup(func() { _ = mem.Close() })
	sess := storage.Session{ID: "s7", UserID: 7, Role: storage.RoleUser, LoginAt: now, LastActivityAt: now, ExpiresAt: exp}
	if err := mem.CreateSession(ctx, sess, storage.RefreshToken{Hash: "r", ExpiresAt: exp}, time.Hour); err != nil {
		t.Fatal(err)
	}
	st := &failingState{AuthState: mem}
	svc, err := auth.NewService(ctx, nil, st, tokens, plainHasher{}, nil, auth.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}

	c, err := svc.Authenticate(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := auth.Caller{UserID: 7, Role: storage.RoleUser, SessionID: "s7", TokenID: "j7", TokenExpiresAt: exp}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("caller (-want +got):\n%s", diff)
	}
	for _, tok := range []string{"forged", "gone"} {
		if _, err := svc.Authenticate(ctx, tok); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", tok, err)
		}
	}
	if c, err := svc.Authenticate(ctx, "service"); err != nil || c.Role != auth.RoleService || c.UserID != 0 {
		t.Errorf("service token: %+v, %v; want the service caller", c, err)
	}
	if c, err := svc.Authenticate(ctx, "admin?"); err != nil || c.Role != storage.RoleUser {
		t.Errorf("token claiming admin for a user's session: caller %+v, %v; want the session's role (user)", c, err)
	}
	st.fail = errors.New("connection refused")
	if _, err := svc.Authenticate(ctx, "alice"); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("store down: %v, want ErrUnavailable", err)
	}
}
