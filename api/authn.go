package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/motorpool/motorpool/auth"
)

// Authenticator turns a bearer token into the caller it stands for.
type Authenticator interface {
	// Authenticate returns auth.ErrInvalidToken for a token that must be refused, and an
	// error wrapping auth.ErrUnavailable when that cannot be decided now.
	Authenticate(ctx context.Context, token string) (auth.Caller, error)
}

// clientIP is the peer's address, or, when the peer is a trusted proxy, the address left of
// the last trusted hop in X-Forwarded-For (walked from the right, so a client cannot forge
// its way past a proxy that appends).
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if !isTrusted(peer) {
		return peer.String()
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	ip := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: trust nothing left of it
		}
		ip = a.Unmap()
		if !isTrusted(ip) {
			break
		}
	}
	return ip.String()
}

// Authorization rules an operation declares with x-authz in openapi.yaml.
const (
	authzUser        = "user"
	authzAdmin       = "admin"
	authzSelfOrAdmin = "self-or-admin"
)

// errNeedsAuth and friends are what authorize returns to the validator; the validation error
// handler turns them into 401, 403 and 503.
type authzError struct {
	status int
	detail string
	cause  error
	// badInput: refused only because the path names no valid id; the validator's 400 says
	// more to a signed-in caller, so it goes first (see validate).
	badInput bool
}

func (e *authzError) Error() string { return e.detail }

// authorize is the validator's AuthenticationFunc: it runs for operations that require
// bearerAuth and checks the caller the admission step established (see admission.go) against
// the operation's x-authz rule.
func authorize(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	rule, _ := in.RequestValidationInput.Route.Operation.Extensions["x-authz"].(string)
	return authorizeRule(in.RequestValidationInput.Request, rule)
}

// authorizeRule checks the caller the admission step established against an x-authz rule;
// self-or-admin reads the path's id, which the mux has set.
func authorizeRule(r *http.Request, rule string) error {
	c, ok := auth.CallerFrom(r.Context())
	if !ok {
		if err := admissionOf(r).authErr; errors.Is(err, auth.ErrUnavailable) {
			return &authzError{status: http.StatusServiceUnavailable, detail: "The session store does not answer; try again shortly.", cause: err}
		} else if why, ok := errors.AsType[tokenRefusal](err); ok {
			return &authzError{status: http.StatusUnauthorized, detail: string(why), cause: err}
		} else if err != nil {
			return &authzError{status: http.StatusUnauthorized, detail: "The access token is invalid, expired or revoked.", cause: err}
		}
		return &authzError{status: http.StatusUnauthorized, detail: "This operation needs an access token: send Authorization: Bearer <accessToken>."}
	}
	switch rule {
	case authzUser:
		return nil
	case authzAdmin:
		if c.IsAdmin() {
			return nil
		}
		return &authzError{status: http.StatusForbidden, detail: "Only an admin may do this."}
	case authzSelfOrAdmin:
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if c.IsAdmin() || err == nil && id == c.UserID {
			return nil
		}
		return &authzError{status: http.StatusForbidden, detail: "Only the user themself or an admin may do this.", badInput: err != nil || id < 1}
	}
	return &authzError{status: http.StatusInternalServerError, detail: "the operation has no x-authz rule", cause: fmt.Errorf("x-authz %q", rule)}
}

// checkAuthzRules refuses a spec in which a secured operation lacks a known x-authz rule, so
// that a new endpoint cannot ship unguarded.
func checkAuthzRules(spec *openapi3.T) error {
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			secured := len(spec.Security) > 0
			if op.Security != nil {
				secured = len(*op.Security) > 0
			}
			rule, _ := op.Extensions["x-authz"].(string)
			switch {
			case secured && rule != authzUser && rule != authzAdmin && rule != authzSelfOrAdmin:
				return fmt.Errorf("%s %s requires a token but has no valid x-authz rule (%q)", method, path, rule)
			case !secured && rule != "":
				return fmt.Errorf("%s %s is public but has x-authz %q", method, path, rule)
			}
		}
	}
	return nil
}

// writeAuthzError answers a failed authorization.
func writeAuthzError(w http.ResponseWriter, r *http.Request, e *authzError) {
	switch e.status {
	case http.StatusUnauthorized:
		v := `Bearer realm="motorpool"`
		if e.cause != nil {
			v += `, error="invalid_token", error_description="the access token is invalid, expired or revoked"`
		}
		w.Header().Set("WWW-Authenticate", v)
	case http.StatusServiceUnavailable:
		stateOf(r).err = e.cause
		writeUnavailable(w, e.detail)
		return
	case http.StatusInternalServerError:
		stateOf(r).err = e.cause
	}
	writeProblem(w, newProblem(e.status, e.detail))
}
