package api

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/storage"
)

// The admission step every request passes before validation, declared in one place:
//
//	identify   the bearer token: verified (in process, the verified-token cache when warm),
//	           its denylist entry and session checked (locally, from the state store's
//	           client-side cache, when warm), which makes the caller: the session's user
//	           and role, or a guest (no token, or one refused or undecidable, with why);
//	authorize  decided by that: the caller the limiter counts and the x-authz rules check
//	           (in the validator, which alone knows the path parameters they need);
//	limit      the caller's buckets, in the limiter's one round trip (storage.Limiter.Allow).
//
// Identity comes first and on its own, so a token whose session has ended is charged as the
// guest it is from the start, and nothing has to be given back. Each step returns what it
// decided (admission); the middleware acts on it and hands it inward in the context.

// admission is what the admission step decided about one request.
type admission struct {
	client   auth.Client
	caller   auth.Caller
	signedIn bool
	// authErr is why a presented bearer token gave no caller (refused, or undecidable); nil
	// when there was no token or it was accepted.
	authErr error
	// limit is the limiter's decision; nil when rate limiting is off.
	limit *limitDecision
}

// limitDecision is the limit step's outcome: the buckets the request counts against and the
// store's (or fallback's) answer, or why none could be had.
type limitDecision struct {
	exempt  bool // the route or the caller is never limited
	checks  []check
	results []storage.LimitResult
	err     error
}

type admissionKey struct{}

// admissionOf returns what the admission step decided about r (the zero admission for a
// request that did not pass through it: a guest).
func admissionOf(r *http.Request) admission {
	a, _ := r.Context().Value(admissionKey{}).(admission)
	return a
}

// tokenRefusal is why an Authorization header was refused before its token was read, in the
// words of the 401 that answers it.
type tokenRefusal string

func (r tokenRefusal) Error() string { return string(r) }

const (
	refusedNotBearer tokenRefusal = "The Authorization header must be Bearer followed by the access token."
	// Pasting "Bearer <token>" into a client that adds the scheme itself (Swagger UI's
	// Authorize does) sends the scheme twice.
	refusedDoubledBearer tokenRefusal = "The Authorization header says Bearer twice: give the access token alone where the client adds the Bearer prefix (as Swagger UI's Authorize does)."
)

// identifyRequest is the identify step; ctx already carries the client.
func identifyRequest(ctx context.Context, authn Authenticator, client auth.Client, r *http.Request) admission {
	a := admission{client: client}
	h := r.Header.Get("Authorization")
	if h == "" {
		return a
	}
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		a.authErr = fmt.Errorf("%w: %w", auth.ErrInvalidToken, refusedNotBearer)
		return a
	}
	if p, _, _ := strings.Cut(token, " "); strings.EqualFold(p, "Bearer") {
		a.authErr = fmt.Errorf("%w: %w", auth.ErrInvalidToken, refusedDoubledBearer)
		return a
	}
	c, err := authn.Authenticate(ctx, token)
	if err != nil {
		a.authErr = err
		return a
	}
	a.caller, a.signedIn = c, true
	return a
}

// admit is the admission middleware: identify, then (with rl) limit, answering 429 or 503
// itself when the limiter refuses or cannot decide; otherwise the request goes on with the
// client, the caller and the admission in its context.
func admit(authn Authenticator, trusted []netip.Prefix, rl *rateLimiter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			client := auth.Client{IP: clientIP(r, trusted), UserAgent: r.UserAgent()}
			ctx := auth.WithClient(r.Context(), client)
			a := identifyRequest(ctx, authn, client, r)
			if a.signedIn {
				ctx = auth.WithCaller(ctx, a.caller)
			}
			if rl != nil {
				d := rl.decide(ctx, a, stateOf(r).pattern)
				a.limit = &d
			}
			r = r.WithContext(context.WithValue(ctx, admissionKey{}, a))
			if a.limit != nil && !rl.apply(w, r, *a.limit) {
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
