package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/cors"
)

// corsMaxAge is how long a browser may reuse a preflight's answer (Access-Control-Max-Age):
// ten minutes, within every browser's own cap (Chromium's is two hours), so that a changed
// CORS_ALLOWED_ORIGINS reaches browsers soon.
const corsMaxAge = 600

// corsAllowedHeaders are the request headers a cross-origin script may send: those the
// contract reads (the bearer token, the JSON body's type, conditional GETs) and the request id
// the access log carries.
var corsAllowedHeaders = []string{"Authorization", "Content-Type", "If-None-Match", "X-Request-Id"}

// corsExposedHeaders are the response headers a cross-origin script may read besides the
// CORS-safelisted ones: the rate-limit headers (so that clients can pace themselves),
// Retry-After, the request id to quote in a report, the validator and the cache's verdict,
// where a created resource lives, and why a 401 refused.
var corsExposedHeaders = []string{
	"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy",
	"Retry-After", "X-Request-Id", "ETag", "Location", "X-Cache", "WWW-Authenticate",
}

// ParseCORSOrigins reads CORS_ALLOWED_ORIGINS: comma-separated origins, each
// scheme://host[:port] exactly as a browser sends it in Origin (no path, not even "/", no
// default port), or the lone entry "*" for any origin. Blank text (or only commas) is no
// origin: CORS stays off. Entries are returned lowercased, duplicates dropped.
func ParseCORSOrigins(s string) ([]string, error) {
	var entries []string
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			entries = append(entries, e)
		}
	}
	return checkCORSOrigins(entries)
}

// checkCORSOrigins validates and normalizes allowed origins (see ParseCORSOrigins); nil for none.
func checkCORSOrigins(entries []string) ([]string, error) {
	var out []string
	for _, e := range entries {
		o, err := checkOrigin(e)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	if len(out) > 1 && slices.Contains(out, "*") {
		return nil, errors.New(`"*" allows every origin and without credentials: list it alone, or list the origins`)
	}
	return out, nil
}

// checkOrigin validates one entry, returning it as browsers serialize an origin (lowercase).
// An entry that no browser would ever send is refused rather than silently never matched.
func checkOrigin(e string) (string, error) {
	if e == "*" {
		return e, nil
	}
	bad := func(why string) error { return fmt.Errorf("origin %q %s", e, why) }
	if strings.Contains(e, "*") {
		return "", bad(`has a wildcard: only the entry "*" alone allows more than one origin`)
	}
	u, err := url.Parse(e)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return "", bad("is not scheme://host[:port]")
	}
	switch {
	case u.User != nil:
		return "", bad("has user information: an origin is scheme://host[:port]")
	case u.Path != "" || u.RawPath != "":
		return "", bad("has a path (a trailing slash counts): an origin is scheme://host[:port]")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(e, "#"):
		return "", bad("has a query or fragment: an origin is scheme://host[:port]")
	case u.Hostname() == "" || strings.HasSuffix(u.Host, ":"):
		return "", bad("is not scheme://host[:port]")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", bad("has a port outside 1-65535")
		}
		if u.Scheme == "https" && n == 443 || u.Scheme == "http" && n == 80 {
			return "", bad(fmt.Sprintf("names the default port, which browsers leave out: write %s://%s", u.Scheme, u.Hostname()))
		}
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// withCORS lets browser scripts on the allowed origins call the API. origins is what
// checkCORSOrigins returned; none: mux itself, with no CORS header on anything.
//
// It sits between observe and the route table, so that a preflight is logged and measured
// like any request but never reaches admission: a preflight carries no token (browsers send
// none) and is not the caller's request but the browser's question about it, so it is neither
// authenticated nor counted by the limiter. A preflight is answered (204, by rs/cors) only
// when its origin is allowed and the route table has a route for the path and the method it
// asks about (HEAD takes GET's route); any other OPTIONS request goes to the route table and
// gets what it got without CORS (405 with Allow, or 404), with no CORS header.
//
// Every other request from an allowed origin with a method the contract uses, whatever answers
// it (a 401 from admission, the limiter's 429, a 404), carries Access-Control-Allow-Origin and
// the exposed headers, so that the script can read the error; every response carries
// Vary: Origin, as it differs by it.
func withCORS(origins []string, ops map[string]*operation, mux *routeMux) http.Handler {
	if len(origins) == 0 {
		return mux
	}
	anyOrigin := slices.Contains(origins, "*")
	c := cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: corsMethods(ops),
		AllowedHeaders: corsAllowedHeaders,
		ExposedHeaders: corsExposedHeaders,
		MaxAge:         corsMaxAge,
		// Browsers refuse credentials with "Access-Control-Allow-Origin: *"; named origins get them.
		AllowCredentials: !anyOrigin,
	})
	actual := c.Handler(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
			actual.ServeHTTP(w, r)
			return
		}
		route, ok := preflightRoute(mux, r)
		if !ok || r.Header.Get("Origin") == "" || !c.OriginAllowed(r) {
			mux.ServeHTTP(w, r)
			return
		}
		stateOf(r).route = route
		c.HandlerFunc(w, r)
	})
}

// corsMethods are the methods of the operations served, HEAD with GET, in a fixed order.
func corsMethods(ops map[string]*operation) []string {
	var ms []string
	for _, op := range ops {
		ms = append(ms, op.route.Method)
		if op.route.Method == http.MethodGet {
			ms = append(ms, http.MethodHead)
		}
	}
	slices.Sort(ms)
	return slices.Compact(ms)
}

// preflightRoute finds the route a preflight asks about: the mux's match for its path under
// the method in Access-Control-Request-Method. It returns the route for the access log and the
// metrics, "OPTIONS /vehicles/{id}" (one series per path, whichever method is asked about).
// A path the mux would redirect (to its clean form, or to add a trailing slash) has no route.
func preflightRoute(mux *routeMux, r *http.Request) (string, bool) {
	if p := r.URL.EscapedPath(); p != cleanPath(p) {
		return "", false
	}
	probe := r.Clone(r.Context())
	probe.Method = r.Header.Get("Access-Control-Request-Method")
	_, pattern := mux.Handler(probe)
	if pattern == "/" || !mux.seen[pattern] { // the catch-all, or a redirect to add a slash
		return "", false
	}
	_, path, ok := strings.Cut(pattern, " ")
	if !ok {
		return "", false
	}
	return http.MethodOptions + " " + path, true
}

// cleanPath is the path as http.ServeMux cleans it before matching: path.Clean, keeping a
// trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
