// Package auth is motorpool's authentication domain: sign-in with lockout, sessions with
// sliding expiry, rotating refresh tokens with reuse detection, logout and its denylist,
// password resets, and the identity of the caller that the HTTP layer puts in the context.
// It knows no HTTP and no SQL: it works on storage.Store, storage.AuthState and a token
// issuer.
package auth

import (
	"context"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// Caller is the signed-in user a request acts for, established from a verified access token
// whose session is live.
type Caller struct {
	UserID         int64
	Role           storage.Role
	SessionID      string
	TokenID        string    // the access token's jti
	TokenExpiresAt time.Time // the access token's exp
}

// IsAdmin reports whether the caller has the admin role.
func (c Caller) IsAdmin() bool { return c.Role == storage.RoleAdmin }

// Client describes where a request comes from.
type Client struct {
	IP        string
	UserAgent string
}

type callerKey struct{}
type clientKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller ctx carries, if any.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// WithClient returns ctx carrying the request's client.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFrom returns the client ctx carries (zero when none).
func ClientFrom(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}
