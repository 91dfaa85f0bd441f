package storage

import (
	"context"
	"errors"
	"time"
)

// Errors of AuthState, besides ErrNotFound.
var (
	// ErrTokenDenied: the access token's jti is on the denylist (its session logged out).
	ErrTokenDenied = errors.New("token denied")
	// ErrRefreshReused: a refresh token that was already rotated out was presented again; the
	// session has been ended.
	ErrRefreshReused = errors.New("refresh token reused")
	// ErrRefreshRaced: the previous refresh token was presented within the grace period after
	// its rotation (a client racing itself); refused, but the session is left alone.
	ErrRefreshRaced = errors.New("refresh token already rotated")
)

// Session is one signed-in device of a user.
type Session struct {
	ID             string // the sid claim: random, URL-safe, no braces or colons
	UserID         int64
	Email          string
	Role           Role
	LoginAt        time.Time
	LastActivityAt time.Time
	ExpiresAt      time.Time // absolute cap (login + SESSION_MAX_AGE); sliding never goes past it
	ClientIP       string
	UserAgent      string
	// Epoch is the user's session epoch (SessionEpoch) read before the user record the session
	// was granted on; CreateSession refuses it once EndAllSessions has moved the epoch on.
	Epoch int64
}

// RefreshToken is the server's record of a session's current refresh token.
type RefreshToken struct {
	Hash      string    // hex SHA-256 of the current refresh token
	Family    string    // the rotation chain's id, fixed at login
	ExpiresAt time.Time // absolute; rotation never extends it
}

// TouchDue reports whether a session last touched at s.LastActivityAt is due for TouchSession
// at now, with touches at most every interval apart (0: every time).
//
// What this means for the idle limit: the session's expiry moves only with a touch, to
// touch+idle, and a request that finds the session live at now touches it when
// now-LastActivityAt >= every. So the session ends between idle-every and idle after the last
// request that reached it (never later than idle after it; up to every earlier), and never
// after ExpiresAt. LastActivityAt, as ListSessions reports it, lags the last request by less
// than every.
func TouchDue(s Session, now time.Time, every time.Duration) bool {
	return now.Sub(s.LastActivityAt) >= every
}

// SessionEpochRetention is how long a user's session epoch is kept after it last moved: a
// caller must not hold an epoch read longer ago than this before passing it to CreateSession
// (a lost epoch reads as 0 again, which a holder of 0 could not tell from no change).
const SessionEpochRetention = 24 * time.Hour

// ResetToken is what a password-reset token grants: a new password for UserID, provided
// neither the password nor the email (the address the link went to) has changed since the
// token was issued, which PasswordVersion tracks.
type ResetToken struct {
	UserID          int64
	PasswordVersion int64
}

// AuthState keeps sessions, refresh tokens, the access-token denylist, failed-login counters
// and password-reset tokens. Every method that changes more than one key does so atomically
// (one script or one command). Times are compared with the `now` the caller passes, so tests
// can inject a clock; TTLs are set in the backend. Implementations are safe for concurrent use.
//
// Key names (part of the contract, each under the backend's optional key prefix):
// refresh_token:{userId}:{sid}, blacklisted_token:{jti}, session:{userId}:{sid},
// sessions:{userId}, session_epoch:{userId}, login_attempts:{email}, reset_token:{tokenHash}.
type AuthState interface {
	// SessionEpoch returns the user's session epoch: 0 until EndAllSessions first moves it.
	// Whoever grants a session reads it before reading the user record the grant is decided
	// on, and passes it as Session.Epoch, so that a change which ends the user's sessions
	// (committed, then EndAllSessions) cannot miss a session that is being granted meanwhile.
	SessionEpoch(ctx context.Context, userID int64) (int64, error)

	// CreateSession stores s with its refresh-token record and adds s.ID to the user's session
	// set. The session expires after idle of inactivity, and never after s.ExpiresAt; the
	// refresh record expires at rt.ExpiresAt; the set lives as long as its longest member.
	// If the user's session epoch is no longer s.Epoch it stores nothing and returns ErrStale;
	// the check and the write are one atomic step.
	CreateSession(ctx context.Context, s Session, rt RefreshToken, idle time.Duration) error

	// Authenticate checks that jti is not denied (ErrTokenDenied) and that the session exists
	// (ErrNotFound), and returns it. It writes nothing on a live session: the idle expiry is
	// extended by TouchSession, which callers run at most once per touch interval (see
	// TouchDue), so a warm request costs no write. A session whose ExpiresAt is at or before
	// now (the caller's clock) is ended here and is ErrNotFound. A backend may answer from a
	// local copy that its server keeps current (the Valkey backend's client-side cache): such
	// a copy never outlives the server's key, and a change made through this AuthState is
	// visible to the next call on it.
	Authenticate(ctx context.Context, userID int64, sid, jti string, now time.Time) (Session, error)

	// TouchSession records now as the session's last activity and moves its idle expiry to
	// now+idle, never past ExpiresAt, unless its last activity is already at or after now (a
	// touch from another instance got there first). It never revives a session: none, or one
	// whose ExpiresAt is at or before now (which it ends), is ErrNotFound.
	TouchSession(ctx context.Context, userID int64, sid string, now time.Time, idle time.Duration) error

	// RotateRefresh replaces the session's current refresh-token hash with next, if presented is
	// the current one, and touches the session as TouchSession does; it returns the session.
	// If presented is the hash rotated out less than grace ago: ErrRefreshRaced, nothing changes.
	// Any other presented hash for a live session is reuse: the session ends (as EndSession)
	// and the error is ErrRefreshReused. No session or no refresh record: ErrNotFound.
	RotateRefresh(ctx context.Context, userID int64, sid, presented, next string, now time.Time, idle, grace time.Duration) (Session, error)

	// EndSession deletes the session and its refresh record and removes it from the user's set;
	// when denyJTI is not empty it also denies that access token for denyTTL. Ending a session
	// that does not exist is not an error.
	EndSession(ctx context.Context, userID int64, sid, denyJTI string, denyTTL time.Duration) error

	// EndAllSessions ends every session of the user and returns how many there were; in the
	// same atomic step it moves the user's session epoch on, which it then keeps for at least
	// SessionEpochRetention.
	EndAllSessions(ctx context.Context, userID int64) (int, error)

	// DenyToken puts an access token's jti on the denylist for ttl, without a session: how a
	// service token is revoked. A ttl that is not positive denies nothing.
	DenyToken(ctx context.Context, jti string, ttl time.Duration) error

	// TokenDenied reports whether jti is on the denylist (the check of a service token, which
	// has no session for Authenticate to check).
	TokenDenied(ctx context.Context, jti string) (bool, error)

	// ListSessions returns the user's live sessions, oldest login first, dropping ids of
	// sessions that have expired from the user's set.
	ListSessions(ctx context.Context, userID int64) ([]Session, error)

	// RecordLoginFailure counts one failed login for the (already normalized) email and returns
	// the count; the counter expires window after the first failure of the series.
	RecordLoginFailure(ctx context.Context, email string, window time.Duration) (int, error)

	// LoginFailures returns the current count for email and how long until it expires
	// (0, 0 when there is none).
	LoginFailures(ctx context.Context, email string) (int, time.Duration, error)

	// ClearLoginFailures forgets the count for email.
	ClearLoginFailures(ctx context.Context, email string) error

	// ForgiveLoginFailure takes back one failure counted for email, by an attempt that could
	// not be decided (a backend was away): the count goes down by one, never below zero, and
	// the window keeps its end.
	ForgiveLoginFailure(ctx context.Context, email string) error

	// SaveResetToken stores a reset grant under the token's hash for ttl.
	SaveResetToken(ctx context.Context, tokenHash string, r ResetToken, ttl time.Duration) error

	// ConsumeResetToken returns and deletes the grant in one step (GETDEL), so a token works
	// once even under concurrent use; ErrNotFound if it is unknown, used or expired.
	ConsumeResetToken(ctx context.Context, tokenHash string) (ResetToken, error)

	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	// Close releases the backend.
	Close() error
}
