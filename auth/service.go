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
	"net/url"
	"strings"
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
	AccessTTL        time.Duration // access token lifetime (15m)
	RefreshTTL       time.Duration // refresh token lifetime, an absolute cap (7d)
	SessionIdleTTL   time.Duration // sliding session expiry (30m)
	SessionMaxAge    time.Duration // absolute session cap (12h)
	RefreshGrace     time.Duration // a just-rotated refresh token presented again within this is refused without ending the session (10s)
	MaxLoginFailures int           // failures before lockout (5)
	LockoutWindow    time.Duration // how long failures count and the lockout lasts (15m)
	ResetTTL         time.Duration // reset token lifetime (1h)
	Skew             time.Duration // clock skew allowed on token times, added to denylist TTLs
	PublicBaseURL    string        // where reset links point; never taken from a request
	StateTimeout     time.Duration // bound on every call to the auth state store (1s)
}

// DefaultConfig returns the plan's values.
func DefaultConfig() Config {
	return Config{
		AccessTTL:        15 * time.Minute,
		RefreshTTL:       7 * 24 * time.Hour,
		SessionIdleTTL:   30 * time.Minute,
		SessionMaxAge:    12 * time.Hour,
		RefreshGrace:     10 * time.Second,
		MaxLoginFailures: 5,
		LockoutWindow:    15 * time.Minute,
		ResetTTL:         time.Hour,
		Skew:             30 * time.Second,
		PublicBaseURL:    "http://localhost:8080",
		StateTimeout:     time.Second,
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

	userChanged func(context.Context, storage.User) // told of changes made here (a reset), for caches

	mailWG    sync.WaitGroup
	mailSlots chan struct{} // bounds reset mails in flight, so a flood cannot pile up goroutines
}

// Option configures a Service.
type Option func(*Service)

// WithUserChanged registers f to hear of user records this service changes (a password reset
// bumps the record's updatedAt), so that a cache can drop them.
func WithUserChanged(f func(context.Context, storage.User)) Option {
	return func(s *Service) { s.userChanged = f }
}

// WithLogger sets the security event log.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// NewService returns a Service. It hashes a throwaway password once, for login timing.
func NewService(ctx context.Context, store storage.Store, state storage.AuthState, tokens Tokens, hasher PasswordHasher, mailer Mailer, cfg Config, opts ...Option) (*Service, error) {
	s := &Service{store: store, state: state, tokens: tokens, hasher: hasher, mailer: mailer, cfg: cfg,
		log: slog.New(slog.DiscardHandler), now: time.Now, mailSlots: make(chan struct{}, 64)}
	for _, o := range opts {
		o(s)
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
// success clears the count.
func (s *Service) Login(ctx context.Context, email, password string) (TokenPair, error) {
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
		s.event(ctx, slog.LevelWarn, "login_locked", "email_hash", hashToken(key)[:16], "retry_after", retry.String())
		return TokenPair{}, &LockedError{RetryAfter: retry}
	}

	u, err := s.store.GetUserByEmail(ctx, email)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		_, _ = s.hasher.Verify(ctx, s.dummyHash, password)
		s.loginFailed(ctx, 0, key, n)
		return TokenPair{}, ErrInvalidCredentials
	case err != nil:
		return TokenPair{}, fmt.Errorf("login: %w", err)
	}
	ok, err := s.hasher.Verify(ctx, u.PasswordHash, password)
	if err != nil {
		return TokenPair{}, fmt.Errorf("login: %w", err)
	}
	if !ok {
		s.loginFailed(ctx, u.ID, key, n)
		return TokenPair{}, ErrInvalidCredentials
	}
	sctx, cancel = s.stateCtx(ctx)
	err = s.state.ClearLoginFailures(sctx, key)
	cancel()
	if err != nil {
		return TokenPair{}, stateErr(err)
	}
	pair, sess, err := s.startSession(ctx, u)
	if err != nil {
		return TokenPair{}, err
	}
	s.event(ctx, slog.LevelInfo, "login_success", "user_id", u.ID, "session_id", sess.ID)
	return pair, nil
}

func (s *Service) loginFailed(ctx context.Context, userID int64, key string, n int) {
	attrs := []any{"user_id", userID, "email_hash", hashToken(key)[:16], "failures", n}
	s.event(ctx, slog.LevelWarn, "login_failure", attrs...)
	if n == s.cfg.MaxLoginFailures {
		s.event(ctx, slog.LevelWarn, "lockout", attrs...)
	}
}

func (s *Service) startSession(ctx context.Context, u storage.User) (TokenPair, storage.Session, error) {
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
	}
	pair, err := s.issuePair(u.ID, sess, now, now.Add(s.cfg.RefreshTTL))
	if err != nil {
		return TokenPair{}, storage.Session{}, err
	}
	sctx, cancel := s.stateCtx(ctx)
	defer cancel()
	rt := storage.RefreshToken{Hash: hashToken(pair.RefreshToken), Family: randomToken(12), ExpiresAt: pair.RefreshExpiresAt}
	if err := s.state.CreateSession(sctx, sess, rt, s.cfg.SessionIdleTTL); err != nil {
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

// Authenticate verifies an access token and checks, in one round trip to the state store,
// that it is not denied and its session is live (touching the session's idle expiry).
func (s *Service) Authenticate(ctx context.Context, accessToken string) (Caller, error) {
	c, _, err := s.AuthenticateCharging(ctx, accessToken, nil)
	return c, err
}

// chargingState is an AuthState that can charge rate-limit buckets in the round trip that
// checks a session (the Valkey backend, whose limiter lives on the same server).
type chargingState interface {
	AuthenticateAllow(ctx context.Context, userID int64, sid, jti string, role storage.Role, now time.Time, idle time.Duration, reqs []storage.LimitRequest) (storage.Session, storage.LimitCharge, error)
}

// AuthenticateCharging is Authenticate that also charges the rate-limit buckets that
// buckets names for the caller the token claims to be (its user and role, before the session
// is checked), in the same round trip to the auth state store, so that rate limiting costs
// none of its own. It returns nil for the charge when nothing was charged, so the caller has
// to: buckets is nil or named none, the token is refused before the store is asked or is a
// service token, the store cannot charge, or the session turned out not to be the one claimed
// (what was taken is then given back). Otherwise the charge holds Allow's results, or the
// error that stopped it.
func (s *Service) AuthenticateCharging(ctx context.Context, accessToken string, buckets func(claimed Caller) []storage.LimitRequest) (Caller, *storage.LimitCharge, error) {
	claims, err := s.tokens.Verify(accessToken, AccessToken)
	if err != nil {
		return Caller{}, nil, ErrInvalidToken
	}
	c := Caller{UserID: claims.UserID, Role: claims.Role, SessionID: claims.SessionID, TokenID: claims.ID, TokenExpiresAt: claims.ExpiresAt}
	if claims.Role == RoleService {
		// Service tokens (motorpool token issue) have no session; they are revoked by
		// rotating the signing key.
		c.UserID = 0
		return c, nil, nil
	}
	var reqs []storage.LimitRequest
	cs, ok := s.state.(chargingState)
	if ok && buckets != nil {
		reqs = buckets(c)
	}
	sctx, cancel := s.stateCtx(ctx)
	defer cancel()
	var sess storage.Session
	var charge *storage.LimitCharge
	if len(reqs) > 0 {
		var lc storage.LimitCharge
		sess, lc, err = cs.AuthenticateAllow(sctx, claims.UserID, claims.SessionID, claims.ID, claims.Role, s.now().UTC(), s.cfg.SessionIdleTTL, reqs)
		if lc.Results != nil || lc.Err != nil {
			charge = &lc
		}
	} else {
		sess, err = s.state.Authenticate(sctx, claims.UserID, claims.SessionID, claims.ID, s.now().UTC(), s.cfg.SessionIdleTTL)
	}
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrTokenDenied) {
		return Caller{}, charge, ErrInvalidToken
	}
	if err != nil {
		return Caller{}, charge, stateErr(err)
	}
	// The session's role is the one that counts; a token claiming another (never issued so:
	// a role change ends the user's sessions) gets the session's, and no charge stands.
	c.Role = sess.Role
	return c, charge, nil
}

// Logout ends the caller's session and denies their access token for the rest of its life.
func (s *Service) Logout(ctx context.Context, c Caller) error {
	ttl := c.TokenExpiresAt.Sub(s.now()) + s.cfg.Skew
	sctx, cancel := s.stateCtx(ctx)
	defer cancel()
	if err := s.state.EndSession(sctx, c.UserID, c.SessionID, c.TokenID, max(ttl, time.Second)); err != nil {
		return stateErr(err)
	}
	s.event(ctx, slog.LevelInfo, "logout", "user_id", c.UserID, "session_id", c.SessionID)
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

// RequestPasswordReset answers at once; the lookup, the token and the mail happen in the
// background, so the answer and its timing say nothing about whether the email exists.
func (s *Service) RequestPasswordReset(ctx context.Context, email string) {
	select {
	case s.mailSlots <- struct{}{}:
	default:
		// Too many in flight (a flood the rate limiter let through): drop this one; the answer
		// is the same either way.
		s.log.Warn("password reset dropped: too many in flight")
		return
	}
	client := ClientFrom(ctx)
	s.mailWG.Add(1)
	go func() {
		defer func() { <-s.mailSlots; s.mailWG.Done() }()
		ctx, cancel := context.WithTimeout(WithClient(context.Background(), client), time.Minute)
		defer cancel()
		if err := s.sendReset(ctx, email); err != nil {
			// A backend away is no bug: WARN, as the access log has it for a 503.
			level := slog.LevelError
			if errors.Is(err, storage.ErrUnavailable) {
				level = slog.LevelWarn
			}
			s.log.Log(ctx, level, "password reset mail failed", "error", err.Error())
		}
	}()
}

func (s *Service) sendReset(ctx context.Context, email string) error {
	u, err := s.store.GetUserByEmail(ctx, email)
	if errors.Is(err, storage.ErrNotFound) {
		s.event(ctx, slog.LevelInfo, "password_reset_requested", "user_id", 0)
		return nil
	}
	if err != nil {
		return err
	}
	tok := randomToken(32) // 256 bits
	sctx, cancel := s.stateCtx(ctx)
	err = s.state.SaveResetToken(sctx, hashToken(tok), storage.ResetToken{UserID: u.ID, PasswordVersion: u.PasswordVersion}, s.cfg.ResetTTL)
	cancel()
	if err != nil {
		return err
	}
	link := strings.TrimRight(s.cfg.PublicBaseURL, "/") + "/reset-password?token=" + url.QueryEscape(tok)
	s.event(ctx, slog.LevelInfo, "password_reset_requested", "user_id", u.ID)
	return s.mailer.SendPasswordReset(ctx, u.Email, link)
}

// WaitMail waits for reset mails in flight (for shutdown and tests), up to ctx.
func (s *Service) WaitMail(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.mailWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ConfirmPasswordReset spends a reset token: the password is set, the login lockout of the
// email is lifted, and every session of the user ends.
func (s *Service) ConfirmPasswordReset(ctx context.Context, token, newPassword string) error {
	sctx, cancel := s.stateCtx(ctx)
	grant, err := s.state.ConsumeResetToken(sctx, hashToken(token))
	cancel()
	if errors.Is(err, storage.ErrNotFound) {
		return ErrInvalidResetToken
	}
	if err != nil {
		return stateErr(err)
	}
	hash, err := s.hasher.Hash(ctx, newPassword)
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	u, err := s.store.SetPassword(ctx, grant.UserID, hash, grant.PasswordVersion)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrStale) {
		return ErrInvalidResetToken
	}
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	sctx, cancel = s.stateCtx(ctx)
	err = s.state.ClearLoginFailures(sctx, storage.NormalizeEmail(u.Email))
	cancel()
	if err != nil {
		return stateErr(err)
	}
	s.event(ctx, slog.LevelInfo, "password_reset", "user_id", u.ID)
	if s.userChanged != nil {
		s.userChanged(ctx, u)
	}
	return s.EndAllSessions(ctx, u.ID, "password_reset")
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
