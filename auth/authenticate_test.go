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

// chargingState is the in-process auth state with AuthenticateAllow, as the Valkey backend
// has it: it records what it was asked to charge and answers as told.
type chargingState struct {
	*memory.AuthState
	asked  []storage.LimitRequest
	role   storage.Role
	answer storage.LimitCharge
	fail   error
}

func (c *chargingState) AuthenticateAllow(ctx context.Context, userID int64, sid, jti string, role storage.Role, now time.Time, reqs []storage.LimitRequest) (storage.Session, storage.LimitCharge, error) {
	c.asked, c.role = reqs, role
	if c.fail != nil {
		return storage.Session{}, storage.LimitCharge{Err: c.fail}, c.fail
	}
	s, err := c.Authenticate(ctx, userID, sid, jti, now)
	if err != nil || s.Role != role {
		return s, storage.LimitCharge{}, err
	}
	return s, c.answer, nil
}

// TestAuthenticateCharging: the buckets are named for the caller the token claims to be and
// charged with the session check when the state can; the charge is reported only when it
// stands, and never for a token refused before the store is asked or a service token.
func TestAuthenticateCharging(t *testing.T) {
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
	result := []storage.LimitResult{{Allowed: true, Limit: 60, Remaining: 59, Reset: time.Second}}
	st := &chargingState{AuthState: mem, answer: storage.LimitCharge{Results: result}}
	svc, err := auth.NewService(ctx, nil, st, tokens, plainHasher{}, nil, auth.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var claimed []auth.Caller
	buckets := func(c auth.Caller) []storage.LimitRequest {
		claimed = append(claimed, c)
		return []storage.LimitRequest{{Key: "rate_limit:user:{7}:getUser", Limit: 60, Window: time.Minute}}
	}
	call := func(tok string) (auth.Caller, *storage.LimitCharge, error) {
		claimed, st.asked, st.role = nil, nil, ""
		return svc.AuthenticateCharging(ctx, tok, buckets)
	}

	// A live session: the buckets are the claimed caller's, charged with the check.
	c, ch, err := call("alice")
	if err != nil {
		t.Fatal(err)
	}
	want := auth.Caller{UserID: 7, Role: storage.RoleUser, SessionID: "s7", TokenID: "j7", TokenExpiresAt: exp}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("caller (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]auth.Caller{want}, claimed); diff != "" {
		t.Errorf("buckets were named for (-want +got):\n%s", diff)
	}
	if len(st.asked) != 1 || st.role != storage.RoleUser {
		t.Errorf("the state was asked to charge %v for role %q, want the one bucket for user", st.asked, st.role)
	}
	if ch == nil || ch.Err != nil || len(ch.Results) != 1 || ch.Results[0] != result[0] {
		t.Errorf("charge %+v, want the state's results", ch)
	}

	// Refused before the store: no buckets named, nothing charged.
	for _, tok := range []string{"forged", "service"} {
		c, ch, err := call(tok)
		if claimed != nil || st.asked != nil || ch != nil {
			t.Errorf("%s: buckets named for %v, state asked %v, charge %+v; want none", tok, claimed, st.asked, ch)
		}
		if tok == "forged" && !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("forged token: %v, want ErrInvalidToken", err)
		}
		if tok == "service" && (err != nil || c.Role != auth.RoleService || c.UserID != 0) {
			t.Errorf("service token: %+v, %v; want the service caller", c, err)
		}
	}

	// The session is not the claimed one: refused or another role, and no charge stands. What
	// the Service decides here is ErrInvalidToken and the caller's role taken from the session;
	// ch == nil only follows from chargingState giving the charge back (an empty LimitCharge).
	// That the real state does refund is tested in storage/valkey/charge_test.go.
	if _, ch, err := call("gone"); !errors.Is(err, auth.ErrInvalidToken) || ch != nil {
		t.Errorf("ended session: %v, charge %+v; want ErrInvalidToken and none", err, ch)
	}
	if c, ch, err := call("admin?"); err != nil || c.Role != storage.RoleUser || ch != nil || st.role != storage.RoleAdmin {
		t.Errorf("token claiming admin for a user's session: caller %+v, charge %+v, %v; want the session's role (user), no charge", c, ch, err)
	}

	// The store failing: the request cannot be authenticated, and the charge says why.
	st.fail = errors.New("connection refused")
	_, ch, err = call("alice")
	if !errors.Is(err, auth.ErrUnavailable) || ch == nil || ch.Err == nil {
		t.Errorf("store down: %v, charge %+v; want ErrUnavailable and the charge's error", err, ch)
	}
	st.fail = nil

	// A state that cannot charge: authentication alone, and the caller charges itself.
	plain, err := auth.NewService(ctx, nil, mem, tokens, plainHasher{}, nil, auth.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	claimed = nil
	if c, ch, err := plain.AuthenticateCharging(ctx, "alice", buckets); err != nil || c.UserID != 7 || ch != nil || claimed != nil {
		t.Errorf("plain state: caller %+v, charge %+v, %v, buckets named %v; want the caller, no charge, none named", c, ch, err, claimed)
	}
}
