package auth

import (
	"context"
	"errors"

	"github.com/motorpool/motorpool/storage"
)

// Authenticate verifies an access token (in process; a token verified before is answered
// from the verifier's cache) and checks that it is not denied and its session is live (on the
// Valkey auth state, from its client-side cache when warm: no round trip). A session due for
// it is touched in the background (see touch.go). The caller's role is the session's.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (Caller, error) {
	claims, err := s.tokens.Verify(accessToken, AccessToken)
	if err != nil {
		return Caller{}, ErrInvalidToken
	}
	c := Caller{UserID: claims.UserID, Role: claims.Role, SessionID: claims.SessionID, TokenID: claims.ID, TokenExpiresAt: claims.ExpiresAt}
	sctx, cancel := s.stateCtx(ctx)
	defer cancel()
	if claims.Role == RoleService {
		// Service tokens (motorpool token issue) have no session: the denylist is all there
		// is to check, and no limit applies to them.
		c.UserID = 0
		denied, err := s.state.TokenDenied(sctx, claims.ID)
		if err != nil {
			return Caller{}, stateErr(err)
		}
		if denied {
			return Caller{}, ErrInvalidToken
		}
		return c, nil
	}
	now := s.now().UTC()
	sess, err := s.state.Authenticate(sctx, claims.UserID, claims.SessionID, claims.ID, now)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrTokenDenied) {
		return Caller{}, ErrInvalidToken
	}
	if err != nil {
		return Caller{}, stateErr(err)
	}
	// The session's role is the one that counts; a token claiming another (never issued so:
	// a role change ends the user's sessions) gets the session's.
	c.Role = sess.Role
	s.maybeTouch(ctx, sess, now)
	return c, nil
}
