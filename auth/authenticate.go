package auth

import (
	"context"
	"errors"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// Authenticate verifies an access token and checks, in one round trip to the state store,
// that it is not denied and its session is live (touching the session's idle expiry).
func (s *Service) Authenticate(ctx context.Context, accessToken string) (Caller, error) {
	c, _, err := s.AuthenticateCharging(ctx, accessToken, nil)
	return c, err
}

// chargingState is an AuthState that can charge rate-limit buckets in the round trip that
// checks a session (the Valkey backend, whose limiter lives on the same server).
type chargingState interface {
	AuthenticateAllow(ctx context.Context, userID int64, sid, jti string, role storage.Role, now time.Time, reqs []storage.LimitRequest) (storage.Session, storage.LimitCharge, error)
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
		// Service tokens (motorpool token issue) have no session: the denylist is all there
		// is to check (one EXISTS), and no bucket is charged, as no limit applies to them.
		c.UserID = 0
		sctx, cancel := s.stateCtx(ctx)
		denied, err := s.state.TokenDenied(sctx, claims.ID)
		cancel()
		if err != nil {
			return Caller{}, nil, stateErr(err)
		}
		if denied {
			return Caller{}, nil, ErrInvalidToken
		}
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
	now := s.now().UTC()
	if len(reqs) > 0 {
		var lc storage.LimitCharge
		sess, lc, err = cs.AuthenticateAllow(sctx, claims.UserID, claims.SessionID, claims.ID, claims.Role, now, reqs)
		if lc.Results != nil || lc.Err != nil {
			charge = &lc
		}
	} else {
		sess, err = s.state.Authenticate(sctx, claims.UserID, claims.SessionID, claims.ID, now)
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
	s.maybeTouch(ctx, sess, now)
	return c, charge, nil
}
