package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// Errors the HTTP layer maps to statuses.
var (
	// ErrInvalidCredentials: wrong email or password (deliberately not saying which). 401.
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrInvalidToken: a token that is malformed, badly signed, expired, of the wrong type,
	// denied, or whose session has ended. 401.
	ErrInvalidToken = errors.New("invalid or expired token")
	// ErrInvalidResetToken: a reset token that is unknown, used, expired or outdated. 400.
	ErrInvalidResetToken = errors.New("invalid, used or expired reset token")
	// ErrUnavailable: the auth state store does not answer; fail closed. 503.
	ErrUnavailable = errors.New("session store unavailable")
)

// LockedError: too many failed logins for the email; retry after RetryAfter. 429.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string {
	return fmt.Sprintf("too many failed logins; retry in %s", e.RetryAfter.Round(time.Second))
}

// RoleService is the role of internal services' tokens: no session, no rate limits.
const RoleService storage.Role = "service"

// TokenType keeps access and refresh tokens apart.
type TokenType string

// The two token types.
const (
	AccessToken  TokenType = "access"
	RefreshToken TokenType = "refresh"
)

// Claims are what this package needs from a verified token.
type Claims struct {
	UserID    int64
	SessionID string
	ID        string // jti
	Role      storage.Role
	ExpiresAt time.Time
}

// Tokens issues and verifies signed tokens.
type Tokens interface {
	Issue(userID int64, sid string, role storage.Role, typ TokenType, expiresAt time.Time) (string, Claims, error)
	// Verify returns an error for any token that is not valid as typ.
	Verify(token string, typ TokenType) (Claims, error)
}

// PasswordHasher hashes and checks passwords.
type PasswordHasher interface {
	Hash(ctx context.Context, plain string) (string, error)
	Verify(ctx context.Context, encoded, plain string) (bool, error)
}

// Mailer delivers password-reset links.
type Mailer interface {
	SendPasswordReset(ctx context.Context, to, link string) error
}

// Config holds the durations and limits of the auth rules.
type Config struct {
	AccessTTL      time.Duration // access token lifetime (15m)
	RefreshTTL     time.Duration // refresh token lifetime, an absolute cap (7d)
	SessionIdleTTL time.Duration // sliding session expiry (30m)
	SessionMaxAge  time.Duration // absolute session cap (12h)
	// SessionTouchInterval: a session's idle expiry is extended at most this often (1m), in
	// the background of a request; capped at a tenth of SessionIdleTTL. See storage.TouchDue.
	SessionTouchInterval time.Duration
	RefreshGrace         time.Duration // a just-rotated refresh token presented again within this is refused without ending the session (10s)
	MaxLoginFailures     int           // failures before lockout (5)
	LockoutWindow        time.Duration // how long failures count and the lockout lasts (15m)
	ResetTTL             time.Duration // reset token lifetime (1h)
	Skew                 time.Duration // clock skew allowed on token times, added to denylist TTLs
	PublicBaseURL        string        // where reset links point; never taken from a request
	StateTimeout         time.Duration // bound on every call to the auth state store (1s)
}

// DefaultConfig returns the plan's values.
func DefaultConfig() Config {
	return Config{
		AccessTTL:            15 * time.Minute,
		RefreshTTL:           7 * 24 * time.Hour,
		SessionIdleTTL:       30 * time.Minute,
		SessionMaxAge:        12 * time.Hour,
		SessionTouchInterval: time.Minute,
		RefreshGrace:         10 * time.Second,
		MaxLoginFailures:     5,
		LockoutWindow:        15 * time.Minute,
		ResetTTL:             time.Hour,
		Skew:                 30 * time.Second,
		PublicBaseURL:        "http://localhost:8080",
		StateTimeout:         time.Second,
	}
}

// Service implements the auth rules.
type Service struct {
	store  storage.Store
	state  storage.AuthState
	tokens Tokens
	hasher PasswordHasher
	mailer Mailer
	cfg    Config
	log    *slog.Logger
	now    func() time.Time

	dummyHash string // verified for unknown emails, so they cost what a known one does

	beforeSessionWrite func(ctx context.Context, userID int64) // a test's hook; nil in production

	mailWG    sync.WaitGroup
	mailSlots chan struct{} // bounds reset mails in flight, so a flood cannot pile up goroutines

	touches *toucher // sessions' idle expiry, extended in the background
}

// Option configures a Service.
type Option func(*Service)

// WithBeforeSessionWrite registers f to run after a sign-in has checked the password and
// before it writes the session, and before a refresh rotates its session: the window in which
// a concurrent change of the user must still win. For tests, which block in f to interleave a
// change deterministically.
func WithBeforeSessionWrite(f func(ctx context.Context, userID int64)) Option {
	return func(s *Service) { s.beforeSessionWrite = f }
}

// WithClock sets the service's clock (time.Now by default), for tests.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithLogger sets the security event log.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// errNoPasswords is what sign-in and password resets return on a Service built without a
// hasher and mailer: their routes are not served by its process.
var errNoPasswords = errors.New("auth: this process handles no passwords (it does not serve the users domain)")

// NewService returns a Service. It hashes a throwaway password once, for login timing.
// hasher and mailer are nil in a process that only authenticates (one that does not serve
// the users domain); Login and the password resets then fail.
func NewService(ctx context.Context, store storage.Store, state storage.AuthState, tokens Tokens, hasher PasswordHasher, mailer Mailer, cfg Config, opts ...Option) (*Service, error) {
	s := &Service{store: store, state: state, tokens: tokens, hasher: hasher, mailer: mailer, cfg: cfg,
		log: slog.New(slog.DiscardHandler), now: time.Now, mailSlots: make(chan struct{}, 64), touches: newToucher()}
	for _, o := range opts {
		o(s)
	}
	if hasher == nil || mailer == nil {
		s.hasher, s.mailer = nil, nil
		return s, nil
	}
	h, err := hasher.Hash(ctx, randomToken(16))
	if err != nil {
		return nil, fmt.Errorf("auth: dummy hash: %w", err)
	}
	s.dummyHash = h
	return s, nil
}

// TokenPair is what login and refresh return.
type TokenPair struct {
	AccessToken      string
	RefreshToken     string
	AccessExpiresAt  time.Time
	RefreshExpiresAt time.Time
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// stateCtx bounds a call to the auth state store, so an unreachable Valkey fails fast.
func (s *Service) stateCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.StateTimeout)
}

// stateErr turns a store failure other than the contract's sentinels into ErrUnavailable.
func stateErr(err error) error {
	if err == nil || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrTokenDenied) ||
		errors.Is(err, storage.ErrRefreshReused) || errors.Is(err, storage.ErrRefreshRaced) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func (s *Service) event(ctx context.Context, level slog.Level, event string, attrs ...any) {
	c := ClientFrom(ctx)
	s.log.Log(ctx, level, "security event", append([]any{"event", event, "client_ip", c.IP}, attrs...)...)
}

// Login checks the credentials and starts a session. Every attempt counts against the email
// before the password is checked, so concurrent guesses cannot slip past the limit; a
// success clears the count, and an attempt that could not be decided is taken back.
func (s *Service) Login(ctx context.Context, email, password string) (TokenPair, error) {
	if s.hasher == nil {
		return TokenPair{}, errNoPasswords
	}
	key := storage.NormalizeEmail(email)
	sctx, cancel := s.stateCtx(ctx)
	n, err := s.state.RecordLoginFailure(sctx, key, s.cfg.LockoutWindow)
	cancel()
	if err != nil {
		return TokenPair{}, stateErr(err)
	}
	if n > s.cfg.MaxLoginFailures {
		_, _ = s.hasher.Verify(ctx, s.dummyHash, password) // same cost as any other answer
		sctx, cancel := s.stateCtx(ctx)
		_, retry, err := s.state.LoginFailures(sctx, key)
		cancel()
		if err != nil {
			return TokenPair{}, stateErr(err)
		}
		if retry <= 0 {
			retry = time.Second
		}
		s.event(ctx, slog.LevelWarn, "login_locked", "email_hash", hashToken(key)[:16], "retry_after_ms", retry.Milliseconds())
		return TokenPair{}, &LockedError{RetryAfter: retry}
	}
	pair, err := s.login(ctx, email, key, password, n)
	if err != nil && !errors.Is(err, ErrInvalidCredentials) {
		// Undecided (the database or the session store away, the client gone): no guess was
		// judged, so the attempt must not count toward a lockout; retries during an outage
		// would lock the user out.
		sctx, cancel := s.stateCtx(context.WithoutCancel(ctx))
		if ferr := s.state.ForgiveLoginFailure(sctx, key); ferr != nil {
			s.log.Warn("login failure not forgiven", "error", ferr.Error())
		}
		cancel()
	}
	return pair, err
}

// login decides a sign-in already counted as the n-th attempt for the email normalized as key.
func (s *Service) login(ctx context.Context, email, key, password string, n int) (TokenPair, error) {
	u, err := s.store.GetUserByEmail(ctx, email)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		_, _ = s.hasher.Verify(ctx, s.dummyHash, password)
		s.loginFailed(ctx, 0, key, n)
		return TokenPair{}, ErrInvalidCredentials
	case err != nil:
		return TokenPair{}, fmt.Errorf("login: %w", err)
	}
	pair, sess, err := s.grantSession(ctx, u, key, password)
	if errors.Is(err, ErrInvalidCredentials) {
		s.loginFailed(ctx, u.ID, key, n)
	}
	if err != nil {
		return TokenPair{}, err
	}
	sctx, cancel := s.stateCtx(ctx)
	err = s.state.ClearLoginFailures(sctx, key)
	cancel()
	if err != nil {
		return TokenPair{}, stateErr(err)
	}
	s.event(ctx, slog.LevelInfo, "login_success", "user_id", u.ID, "session_id", sess.ID)
	return pair, nil
}

// grantAttempts bounds how often a sign-in starts over because the user changed under it.
const grantAttempts = 3

// grantSession checks password against u, found by the email whose normalized form is key,
// and starts a session, on a record of the user read after the user's session epoch: a change
// that ends sessions (committed, then EndAllSessions moves the epoch) and lands while the
// password is checked makes CreateSession refuse the grant, and it is decided again on the
// changed record. So a deleted user, a changed password or email, or a demotion can never be
// outlived by a session granted on what was true before.
func (s *Service) grantSession(ctx context.Context, u storage.User, key, password string) (TokenPair, storage.Session, error) {
	verified := ""
	for attempt := 1; ; attempt++ {
		sctx, cancel := s.stateCtx(ctx)
		epoch, err := s.state.SessionEpoch(sctx, u.ID)
		cancel()
		if err != nil {
			return TokenPair{}, storage.Session{}, stateErr(err)
		}
		decided := s.now()
		u, err = s.store.GetUser(ctx, u.ID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return TokenPair{}, storage.Session{}, ErrInvalidCredentials
		case err != nil:
			return TokenPair{}, storage.Session{}, fmt.Errorf("login: %w", err)
		case storage.NormalizeEmail(u.Email) != key:
			return TokenPair{}, storage.Session{}, ErrInvalidCredentials // the email moved on
		}
		if u.PasswordHash != verified {
			ok, err := s.hasher.Verify(ctx, u.PasswordHash, password)
			if err != nil {
				return TokenPair{}, storage.Session{}, fmt.Errorf("login: %w", err)
			}
			if !ok {
				return TokenPair{}, storage.Session{}, ErrInvalidCredentials
			}
			verified = u.PasswordHash
		}
		if s.beforeSessionWrite != nil {
			s.beforeSessionWrite(ctx, u.ID)
		}
		if s.now().Sub(decided) < storage.SessionEpochRetention/2 { // else the epoch may be lost: read it again
			pair, sess, err := s.startSession(ctx, u, epoch)
			if !errors.Is(err, storage.ErrStale) {
				return pair, sess, err
			}
		}
		if attempt == grantAttempts {
			return TokenPair{}, storage.Session{}, fmt.Errorf("%w: the user keeps changing", ErrUnavailable)
		}
	}
}

func (s *Service) loginFailed(ctx context.Context, userID int64, key string, n int) {
	attrs := []any{"user_id", userID, "email_hash", hashToken(key)[:16], "failures", n}
	s.event(ctx, slog.LevelWarn, "login_failure", attrs...)
	if n == s.cfg.MaxLoginFailures {
		s.event(ctx, slog.LevelWarn, "lockout", attrs...)
	}
}

// startSession stores a new session of u, granted on u's session epoch epoch; ErrStale if the
// epoch has moved on since.
func (s *Service) startSession(ctx context.Context, u storage.User, epoch int64) (TokenPair, storage.Session, error) {
	now := s.now().UTC()
	c := ClientFrom(ctx)
	sess := storage.Session{
		ID:             randomToken(16),
		UserID:         u.ID,
		Email:          u.Email,
		Role:           u.Role,
		LoginAt:        now,
		LastActivityAt: now,
		ExpiresAt:      now.Add(s.cfg.SessionMaxAge),
		ClientIP:       c.IP,
		UserAgent:      truncate(c.UserAgent, 256),
		Epoch:          epoch,
	}
	pair, err := s.issuePair(u.ID, sess, now, now.Add(s.cfg.RefreshTTL))
	if err != nil {
		return TokenPair{}, storage.Session{}, err
	}
	sctx, cancel := s.stateCtx(ctx)
	defer cancel()
	rt := storage.RefreshToken{Hash: hashToken(pair.RefreshToken), Family: randomToken(12), ExpiresAt: pair.RefreshExpiresAt}
	if err := s.state.CreateSession(sctx, sess, rt, s.cfg.SessionIdleTTL); err != nil {
		if errors.Is(err, storage.ErrStale) {
			return TokenPair{}, storage.Session{}, storage.ErrStale
		}
		return TokenPair{}, storage.Session{}, stateErr(err)
	}
	return pair, sess, nil
}

// issuePair signs an access and a refresh token for the session; the refresh token expires
// at refreshCap or with the session, whichever is first.
func (s *Service) issuePair(userID int64, sess storage.Session, now, refreshCap time.Time) (TokenPair, error) {
	refreshExp := minTime(refreshCap, sess.ExpiresAt)
	accessExp := minTime(now.Add(s.cfg.AccessTTL), refreshExp)
	access, _, err := s.tokens.Issue(userID, sess.ID, sess.Role, AccessToken, accessExp)
	if err != nil {
		return TokenPair{}, fmt.Errorf("issue access token: %w", err)
	}
	refresh, _, err := s.tokens.Issue(userID, sess.ID, sess.Role, RefreshToken, refreshExp)
	if err != nil {
		return TokenPair{}, fmt.Errorf("issue refresh token: %w", err)
	}
	return TokenPair{AccessToken: access, RefreshToken: refresh, AccessExpiresAt: accessExp, RefreshExpiresAt: refreshExp}, nil
}

// Refresh rotates a refresh token: the presented one dies, a new pair is returned whose
// refresh token expires when the presented one did.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (TokenPair, error) {
	claims, err := s.tokens.Verify(refreshToken, RefreshToken)
	if err != nil {
		return TokenPair{}, ErrInvalidToken
	}
	now := s.now().UTC()
	// Verify accepts a token up to the clock skew past its exp, but its successors cannot
	// outlive it and expiries are whole seconds: a token in (or past) its last second can
	// yield nothing, so it is refused here instead of failing to sign below (a 500).
	if claims.ExpiresAt.Sub(now) < time.Second {
		return TokenPair{}, ErrInvalidToken
	}
	// The session's real state (role, cap) comes back from the rotation; sign with what the
	// token carries and re-sign below if the role changed meanwhile (it ends sessions, so
	// that is rare).
	sess := storage.Session{ID: claims.SessionID, Role: claims.Role, ExpiresAt: claims.ExpiresAt}
	pair, err := s.issuePair(claims.UserID, sess, now, claims.ExpiresAt)
	if err != nil {
		return TokenPair{}, err
	}
	if s.beforeSessionWrite != nil {
		s.beforeSessionWrite(ctx, claims.UserID)
	}
	sctx, cancel := s.stateCtx(ctx)
	got, err := s.state.RotateRefresh(sctx, claims.UserID, claims.SessionID, hashToken(refreshToken), hashToken(pair.RefreshToken),
		now, s.cfg.SessionIdleTTL, s.cfg.RefreshGrace)
	cancel()
	switch {
	case errors.Is(err, storage.ErrRefreshReused):
		s.event(ctx, slog.LevelWarn, "refresh_reuse", "user_id", claims.UserID, "session_id", claims.SessionID)
		return TokenPair{}, ErrInvalidToken
	case errors.Is(err, storage.ErrRefreshRaced), errors.Is(err, storage.ErrNotFound):
		return TokenPair{}, ErrInvalidToken
	case err != nil:
		return TokenPair{}, stateErr(err)
	}
	if got.Role != claims.Role || got.ExpiresAt.Before(pair.AccessExpiresAt) {
		access, _, err := s.tokens.Issue(claims.UserID, got.ID, got.Role, AccessToken, minTime(pair.AccessExpiresAt, got.ExpiresAt))
		if err != nil {
			return TokenPair{}, fmt.Errorf("issue access token: %w", err)
		}
		pair.AccessToken = access
	}
	return pair, nil
}

// Logout ends the caller's session and denies their access token for the rest of its life;
// a service token, which has no session, is only denied.
func (s *Service) Logout(ctx context.Context, c Caller) error {
	if c.Role == RoleService {
		return s.revokeToken(ctx, c.TokenID, c.TokenExpiresAt)
	}
	ttl := c.TokenExpiresAt.Sub(s.now()) + s.cfg.Skew
	sctx, cancel := s.stateCtx(ctx)
	defer cancel()
	if err := s.state.EndSession(sctx, c.UserID, c.SessionID, c.TokenID, max(ttl, time.Second)); err != nil {
		return stateErr(err)
	}
	s.event(ctx, slog.LevelInfo, "logout", "user_id", c.UserID, "session_id", c.SessionID)
	return nil
}

// revokeToken denies the token jti, which expires at expiresAt, for the rest of its life (and
// the clock skew Verify tolerates): every instance sharing the state refuses it from then on.
func (s *Service) revokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	ttl := expiresAt.Sub(s.now()) + s.cfg.Skew
	sctx, cancel := s.stateCtx(ctx)
	defer cancel()
	if err := s.state.DenyToken(sctx, jti, ttl); err != nil {
		return stateErr(err)
	}
	s.event(ctx, slog.LevelInfo, "service_token_revoked", "token_id", jti)
	return nil
}

// EndAllSessions ends every session of a user: logout-all, and the consequence of a password
// or role change, a reset, or a deletion. reason goes to the security log.
func (s *Service) EndAllSessions(ctx context.Context, userID int64, reason string) error {
	sctx, cancel := s.stateCtx(ctx)
	defer cancel()
	n, err := s.state.EndAllSessions(sctx, userID)
	if err != nil {
		return stateErr(err)
	}
	attrs := []any{"user_id", userID, "reason", reason, "sessions", n}
	if c, ok := CallerFrom(ctx); ok {
		attrs = append(attrs, "by_user_id", c.UserID, "session_id", c.SessionID)
	}
	s.event(ctx, slog.LevelInfo, "sessions_terminated", attrs...)
	return nil
}

// Sessions lists a user's live sessions.
func (s *Service) Sessions(ctx context.Context, userID int64) ([]storage.Session, error) {
	sctx, cancel := s.stateCtx(ctx)
	defer cancel()
	ss, err := s.state.ListSessions(sctx, userID)
	return ss, stateErr(err)
}

// EndSession ends one of the user's sessions; ErrNotFound if the user has no such session.
func (s *Service) EndSession(ctx context.Context, userID int64, sid string) error {
	ss, err := s.Sessions(ctx, userID)
	if err != nil {
		return err
	}
	found := false
	for _, x := range ss {
		found = found || x.ID == sid
	}
	if !found {
		return storage.ErrNotFound
	}
	sctx, cancel := s.stateCtx(ctx)
	defer cancel()
	if err := s.state.EndSession(sctx, userID, sid, "", 0); err != nil {
		return stateErr(err)
	}
	s.event(ctx, slog.LevelInfo, "session_terminated", "user_id", userID, "session_id", sid)
	return nil
}

// EnsureAdmin creates an admin with the given email unless a user with that email exists,
// which is left exactly as it is. It reports whether it created one.
func EnsureAdmin(ctx context.Context, store storage.Store, hasher PasswordHasher, email, name, password string) (bool, error) {
	if _, err := store.GetUserByEmail(ctx, email); err == nil {
		return false, nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return false, err
	}
	hash, err := hasher.Hash(ctx, password)
	if err != nil {
		return false, err
	}
	_, err = store.CreateUser(ctx, storage.NewUser{Email: email, Name: name, Role: storage.RoleAdmin, PasswordHash: hash})
	if errors.Is(err, storage.ErrConflict) { // another instance created it first
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
