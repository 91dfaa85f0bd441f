package impl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/gen"
	"github.com/motorpool/motorpool/storage"
)

// Authenticator is the auth domain as the handlers need it. Errors that wrap
// auth.ErrUnavailable are returned as they are; the API layer answers them with 503.
type Authenticator interface {
	Login(ctx context.Context, email, password string) (auth.TokenPair, error)
	Refresh(ctx context.Context, refreshToken string) (auth.TokenPair, error)
	Logout(ctx context.Context, c auth.Caller) error
	EndAllSessions(ctx context.Context, userID int64, reason string) error
	Sessions(ctx context.Context, userID int64) ([]storage.Session, error)
	EndSession(ctx context.Context, userID int64, sid string) error
	RequestPasswordReset(ctx context.Context, email string)
	ConfirmPasswordReset(ctx context.Context, token, newPassword string) error
}

// errNoCaller means a handler that needs a caller ran without one: the route table and the
// spec's security disagree, a server bug.
var errNoCaller = errors.New("no authenticated caller in the request context")

func callerOf(ctx context.Context) (auth.Caller, error) {
	c, ok := auth.CallerFrom(ctx)
	if !ok {
		return auth.Caller{}, errNoCaller
	}
	return c, nil
}

func unauthorized(detail string) gen.UnauthorizedApplicationProblemPlusJSONResponse {
	return gen.UnauthorizedApplicationProblemPlusJSONResponse{
		Body:    problem(http.StatusUnauthorized, detail),
		Headers: gen.UnauthorizedResponseHeaders{WWWAuthenticate: `Bearer realm="motorpool"`},
	}
}

func forbidden(detail string) gen.Problem { return problem(http.StatusForbidden, detail) }

func tokenPair(p auth.TokenPair, now time.Time) gen.TokenPair {
	return gen.TokenPair{
		AccessToken:      p.AccessToken,
		RefreshToken:     p.RefreshToken,
		TokenType:        gen.Bearer,
		ExpiresIn:        int(p.AccessExpiresAt.Sub(now).Round(time.Second).Seconds()),
		RefreshExpiresIn: int(p.RefreshExpiresAt.Sub(now).Round(time.Second).Seconds()),
	}
}

func toSession(s storage.Session, current string) gen.Session {
	out := gen.Session{Id: s.ID, LoginAt: s.LoginAt, LastActivityAt: s.LastActivityAt, ExpiresAt: s.ExpiresAt, Current: s.ID == current}
	if s.ClientIP != "" {
		out.ClientIp = &s.ClientIP
	}
	if s.UserAgent != "" {
		out.UserAgent = &s.UserAgent
	}
	return out
}

// noStore keeps answers that hold tokens out of every cache (RFC 9111 §5.2.2.5).
const noStore = "no-store"

// Login signs a user in.
func (s *Server) Login(ctx context.Context, req gen.LoginRequestObject) (gen.LoginResponseObject, error) {
	pair, err := s.auth.Login(ctx, string(req.Body.Email), req.Body.Password)
	var locked *auth.LockedError
	switch {
	case errors.As(err, &locked):
		retry := int((locked.RetryAfter + time.Second - 1) / time.Second)
		return gen.Login429ApplicationProblemPlusJSONResponse{TooManyRequestsApplicationProblemPlusJSONResponse: gen.TooManyRequestsApplicationProblemPlusJSONResponse{
			Body:    problem(http.StatusTooManyRequests, "Too many failed sign-ins for this email; try again later or reset the password."),
			Headers: gen.TooManyRequestsResponseHeaders{RetryAfter: retry},
		}}, nil
	case errors.Is(err, auth.ErrInvalidCredentials):
		return gen.Login401ApplicationProblemPlusJSONResponse{UnauthorizedApplicationProblemPlusJSONResponse: unauthorized("The email or the password is wrong.")}, nil
	case err != nil:
		return nil, fmt.Errorf("login: %w", err)
	}
	return gen.Login200JSONResponse{Body: tokenPair(pair, s.now()), Headers: gen.Login200ResponseHeaders{CacheControl: noStore}}, nil
}

// RefreshTokens rotates a refresh token.
func (s *Server) RefreshTokens(ctx context.Context, req gen.RefreshTokensRequestObject) (gen.RefreshTokensResponseObject, error) {
	pair, err := s.auth.Refresh(ctx, req.Body.RefreshToken)
	if errors.Is(err, auth.ErrInvalidToken) {
		return gen.RefreshTokens401ApplicationProblemPlusJSONResponse{UnauthorizedApplicationProblemPlusJSONResponse: unauthorized("The refresh token is invalid, expired or already used.")}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	return gen.RefreshTokens200JSONResponse{Body: tokenPair(pair, s.now()), Headers: gen.RefreshTokens200ResponseHeaders{CacheControl: noStore}}, nil
}

// Logout ends the caller's session.
func (s *Server) Logout(ctx context.Context, _ gen.LogoutRequestObject) (gen.LogoutResponseObject, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.auth.Logout(ctx, c); err != nil {
		return nil, fmt.Errorf("logout: %w", err)
	}
	return gen.Logout204Response{}, nil
}

// LogoutAll ends every session of the caller.
func (s *Server) LogoutAll(ctx context.Context, _ gen.LogoutAllRequestObject) (gen.LogoutAllResponseObject, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.auth.EndAllSessions(ctx, c.UserID, "logout_all"); err != nil {
		return nil, fmt.Errorf("logout all: %w", err)
	}
	return gen.LogoutAll204Response{}, nil
}

// GetMe returns the caller and their current session.
func (s *Server) GetMe(ctx context.Context, _ gen.GetMeRequestObject) (gen.GetMeResponseObject, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.store.GetUser(ctx, c.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return gen.GetMe401ApplicationProblemPlusJSONResponse{UnauthorizedApplicationProblemPlusJSONResponse: unauthorized("The user of this session no longer exists.")}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("me: %w", err)
	}
	sessions, err := s.auth.Sessions(ctx, c.UserID)
	if err != nil {
		return nil, fmt.Errorf("me: %w", err)
	}
	for _, x := range sessions {
		if x.ID == c.SessionID {
			return gen.GetMe200JSONResponse{User: toUser(u), Session: toSession(x, c.SessionID)}, nil
		}
	}
	return gen.GetMe401ApplicationProblemPlusJSONResponse{UnauthorizedApplicationProblemPlusJSONResponse: unauthorized("This session has ended.")}, nil
}

// ListSessions lists the caller's sessions.
func (s *Server) ListSessions(ctx context.Context, _ gen.ListSessionsRequestObject) (gen.ListSessionsResponseObject, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	sessions, err := s.auth.Sessions(ctx, c.UserID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	items := make([]gen.Session, len(sessions))
	for i, x := range sessions {
		items[i] = toSession(x, c.SessionID)
	}
	return gen.ListSessions200JSONResponse{Items: items}, nil
}

// DeleteSession ends one of the caller's sessions.
func (s *Server) DeleteSession(ctx context.Context, req gen.DeleteSessionRequestObject) (gen.DeleteSessionResponseObject, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	err = s.auth.EndSession(ctx, c.UserID, req.Sid)
	if errors.Is(err, storage.ErrNotFound) {
		return gen.DeleteSession404ApplicationProblemPlusJSONResponse{NotFoundApplicationProblemPlusJSONResponse: gen.NotFoundApplicationProblemPlusJSONResponse(problem(http.StatusNotFound, "You have no session with that id."))}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("delete session: %w", err)
	}
	return gen.DeleteSession204Response{}, nil
}

// DeleteUserSessions ends every session of a user (admins only, enforced before this runs).
func (s *Server) DeleteUserSessions(ctx context.Context, req gen.DeleteUserSessionsRequestObject) (gen.DeleteUserSessionsResponseObject, error) {
	if _, err := s.store.GetUser(ctx, req.Id); errors.Is(err, storage.ErrNotFound) {
		return gen.DeleteUserSessions404ApplicationProblemPlusJSONResponse{NotFoundApplicationProblemPlusJSONResponse: gen.NotFoundApplicationProblemPlusJSONResponse(notFound("user", req.Id))}, nil
	} else if err != nil {
		return nil, fmt.Errorf("delete user sessions: %w", err)
	}
	if err := s.auth.EndAllSessions(ctx, req.Id, "admin"); err != nil {
		return nil, fmt.Errorf("delete user sessions: %w", err)
	}
	return gen.DeleteUserSessions204Response{}, nil
}

const resetAccepted = "If an account uses that email, a link to reset its password is on its way; it works once, within one hour."

// RequestPasswordReset answers the same whatever the email.
func (s *Server) RequestPasswordReset(ctx context.Context, req gen.RequestPasswordResetRequestObject) (gen.RequestPasswordResetResponseObject, error) {
	s.auth.RequestPasswordReset(ctx, string(req.Body.Email))
	return gen.RequestPasswordReset202JSONResponse(gen.Accepted{Message: resetAccepted}), nil
}

// ConfirmPasswordReset spends a reset token.
func (s *Server) ConfirmPasswordReset(ctx context.Context, req gen.ConfirmPasswordResetRequestObject) (gen.ConfirmPasswordResetResponseObject, error) {
	err := s.auth.ConfirmPasswordReset(ctx, req.Body.Token, req.Body.NewPassword)
	if errors.Is(err, auth.ErrInvalidResetToken) {
		return gen.ConfirmPasswordReset400ApplicationProblemPlusJSONResponse{BadRequestApplicationProblemPlusJSONResponse: gen.BadRequestApplicationProblemPlusJSONResponse(
			badRequest("token", "is invalid, already used or expired"))}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("confirm password reset: %w", err)
	}
	return gen.ConfirmPasswordReset204Response{}, nil
}

// jwksResponse writes the JWK Set as the issuer rendered it, keeping every key member.
type jwksResponse []byte

func (r jwksResponse) VisitGetJWKSResponse(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(r)
	return err
}

// GetJWKS returns the public keys that verify this service's tokens.
func (s *Server) GetJWKS(context.Context, gen.GetJWKSRequestObject) (gen.GetJWKSResponseObject, error) {
	if s.jwks == nil {
		return nil, errors.New("jwks: no key set configured")
	}
	b, err := s.jwks()
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return jwksResponse(b), nil
}
