package api_test

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/storage"
)

// CORS is decided at the edge, before any storage is asked, so these tests run on the
// embedded pairing only.

const (
	appOrigin   = "https://app.example.com"
	devOrigin   = "http://localhost:5173"
	otherOrigin = "https://evil.example.net"
)

// wantExposed are the response headers a cross-origin script may read.
var wantExposed = []string{
	"etag", "location", "ratelimit", "ratelimit-policy", "retry-after", "www-authenticate",
	"x-cache", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-request-id",
}

// preflight sends the OPTIONS request a browser sends before a cross-origin method on path
// from origin, from the client address xff; hdr adds headers.
func preflight(t testing.TB, s *testServer, path, origin, method, xff string, hdr ...string) *http.Response {
	t.Helper()
	resp, _ := rlReq(t, s, "OPTIONS", path, "", xff, nil,
		append([]string{"Origin", origin, "Access-Control-Request-Method", method}, hdr...)...)
	return resp
}

// noCORS fails if resp carries any Access-Control-* header.
func noCORS(t testing.TB, what string, resp *http.Response) {
	t.Helper()
	for name, v := range resp.Header {
		if strings.HasPrefix(name, "Access-Control-") {
			t.Errorf("%s (%d) carries %s: %v", what, resp.StatusCode, name, v)
		}
	}
}

// varies reports whether resp's Vary names header.
func varies(resp *http.Response, header string) bool {
	for _, v := range resp.Header.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), header) {
				return true
			}
		}
	}
	return false
}

// corsActual checks an actual cross-origin response from origin: readable by the script
// (Access-Control-Allow-Origin, with credentials when credentials), the exposed headers listed.
func corsActual(t testing.TB, what string, resp *http.Response, origin string, credentials bool) {
	t.Helper()
	h := resp.Header
	if got := h.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("%s (%d): Access-Control-Allow-Origin %q, want %q", what, resp.StatusCode, got, origin)
	}
	want := ""
	if credentials {
		want = "true"
	}
	if got := h.Get("Access-Control-Allow-Credentials"); got != want {
		t.Errorf("%s (%d): Access-Control-Allow-Credentials %q, want %q", what, resp.StatusCode, got, want)
	}
	var exposed []string
	for f := range strings.SplitSeq(h.Get("Access-Control-Expose-Headers"), ",") {
		exposed = append(exposed, strings.ToLower(strings.TrimSpace(f)))
	}
	slices.Sort(exposed)
	if diff := cmp.Diff(wantExposed, exposed); diff != "" {
		t.Errorf("%s (%d): Access-Control-Expose-Headers (-want +got):\n%s", what, resp.StatusCode, diff)
	}
	if !varies(resp, "Origin") {
		t.Errorf("%s (%d): Vary %q does not name Origin", what, resp.StatusCode, h.Values("Vary"))
	}
}

// A preflight from an allowed origin for a route the table has is answered 204, before
// authentication (it carries no token) and before the limiter, which neither refuses nor
// counts it. Any other preflight gets what an OPTIONS request gets without CORS.
func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	// The per-IP rule is the least (20, below getUser's 60), so X-RateLimit-Remaining reports
	// the bucket every request from the address counts against, unmatched ones included.
	s := newTestServer(t, backends["embedded"](t), withCORSOrigins(appOrigin, devOrigin),
		withRateLimit(func(c *api.RateLimitConfig) { c.IPMax = 20 }), withTrustedProxies(loopback))
	id, tok := rlUser(t, s, "cors@example.com", storage.RoleUser)
	self := "/users/" + itoa(id)

	for _, c := range []struct{ name, path, origin, method, headers string }{
		{"secured PUT", "/vehicles/1", appOrigin, "PUT", "authorization,content-type"},
		{"second origin", self, devOrigin, "DELETE", "authorization"},
		{"HEAD takes GET's route", self, appOrigin, "HEAD", "if-none-match"},
		{"public POST", "/auth/login", appOrigin, "POST", "content-type,x-request-id"},
		{"no headers asked", "/vehicles", appOrigin, "GET", ""},
		{"the contract", "/openapi.json", appOrigin, "GET", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.headers != "" {
				hdr = []string{"Access-Control-Request-Headers", c.headers}
			}
			resp := preflight(t, s, c.path, c.origin, c.method, "198.51.100.1", hdr...)
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("%d, want 204", resp.StatusCode)
			}
			h := resp.Header
			for name, want := range map[string]string{
				"Access-Control-Allow-Origin":      c.origin,
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods":     c.method,
				"Access-Control-Allow-Headers":     c.headers,
				"Access-Control-Max-Age":           "600",
				"Allow":                            "",
				"WWW-Authenticate":                 "",
			} {
				if got := h.Get(name); got != want {
					t.Errorf("%s %q, want %q", name, got, want)
				}
			}
			for _, v := range []string{"Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"} {
				if !varies(resp, v) {
					t.Errorf("Vary %q does not name %s", h.Values("Vary"), v)
				}
			}
			if h.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id: the preflight did not pass observe")
			}
			rlNoHeaders(t, resp)
		})
	}
	if !strings.Contains(s.Logs.String(), `"route":"OPTIONS /vehicles/{id}","status":204`) {
		t.Error(`the access log names no preflight as route "OPTIONS /vehicles/{id}", status 204`)
	}

	// Refused: what the route table answers OPTIONS (405 with Allow, 404), with no CORS header.
	for _, c := range []struct {
		name, path, origin, method, allow string
		status                            int
	}{
		{"origin not allowed", "/vehicles/1", otherOrigin, "PUT", "GET, HEAD, PUT, DELETE", http.StatusMethodNotAllowed},
		{"origin differs in port", "/vehicles/1", "https://app.example.com:8443", "PUT", "GET, HEAD, PUT, DELETE", http.StatusMethodNotAllowed},
		{"origin null", "/vehicles", "null", "GET", "GET, HEAD, POST", http.StatusMethodNotAllowed},
		{"unknown path", "/nowhere", appOrigin, "GET", "", http.StatusNotFound},
		{"method not on the path", "/users", appOrigin, "DELETE", "GET, HEAD, POST", http.StatusMethodNotAllowed},
		{"OPTIONS itself", "/users", appOrigin, "OPTIONS", "GET, HEAD, POST", http.StatusMethodNotAllowed},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := preflight(t, s, c.path, c.origin, c.method, "198.51.100.2")
			if resp.StatusCode != c.status || resp.Header.Get("Allow") != c.allow {
				t.Errorf("%d Allow %q, want %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"), c.status, c.allow)
			}
			noCORS(t, "refused preflight", resp)
		})
	}
	// A request header outside the list: rs/cors answers, but opens nothing.
	resp := preflight(t, s, "/vehicles", appOrigin, "GET", "198.51.100.3", "Access-Control-Request-Headers", "x-evil")
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("preflight asking for x-evil: %d, want 204", resp.StatusCode)
	}
	noCORS(t, "preflight asking for x-evil", resp)

	// The limiter never sees a preflight: the caller's buckets are where one request left them.
	const xff = "198.51.100.4"
	first, body := rlReq(t, s, "GET", self, tok, xff, nil)
	if first.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", self, first.StatusCode, body)
	}
	if _, named := rlHeaders(t, first); named.name != "global-per-IP" {
		t.Fatalf("RateLimit names %q, want global-per-IP", named.name)
	}
	before, _ := strconv.Atoi(first.Header.Get("X-RateLimit-Remaining"))
	for range 10 {
		if resp := preflight(t, s, self, appOrigin, "GET", xff); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("preflight: %d", resp.StatusCode)
		}
	}
	next, _ := rlReq(t, s, "GET", self, tok, xff, nil)
	if got := next.Header.Get("X-RateLimit-Remaining"); got != strconv.Itoa(before-1) {
		t.Errorf("after 10 preflights X-RateLimit-Remaining %s, want %d: preflights were counted", got, before-1)
	}
}

// Every actual response to an allowed origin is readable by its script, errors included: the
// 401 admission answers and the limiter's 429 as much as a 200.
func TestCORSActualRequests(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, backends["embedded"](t), withCORSOrigins(appOrigin),
		withRateLimit(nil), withTrustedProxies(loopback))
	id, tok := rlUser(t, s, "cors@example.com", storage.RoleUser)
	self := "/users/" + itoa(id)
	origin := []string{"Origin", appOrigin}

	resp, body := rlReq(t, s, "GET", self, tok, "198.51.100.10", nil, origin...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", self, resp.StatusCode, body)
	}
	corsActual(t, "200", resp, appOrigin, true)
	rlHeaders(t, resp)

	resp, body = rlReq(t, s, "HEAD", self, tok, "198.51.100.10", nil, origin...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s: %d %s", self, resp.StatusCode, body)
	}
	corsActual(t, "HEAD", resp, appOrigin, true)

	resp, body = rlReq(t, s, "GET", "/nowhere", tok, "198.51.100.10", nil, origin...)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /nowhere: %d %s", resp.StatusCode, body)
	}
	corsActual(t, "404", resp, appOrigin, true)

	// A guest until refused: 401s (the guest's listVehicles bucket), then the 429.
	const guest = "198.51.100.11"
	n, limited, body := rlCount(t, 40, func() (*http.Response, []byte) {
		resp, body := rlReq(t, s, "GET", "/vehicles", "", guest, nil, origin...)
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("guest GET /vehicles: %d %s, want 401 or 429", resp.StatusCode, body)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			corsActual(t, "401", resp, appOrigin, true)
			decodeProblem(t, resp, body)
		}
		return resp, body
	})
	if limited == nil || n == 0 {
		t.Fatalf("%d guest requests and no 429", n)
	}
	rl429(t, limited, body, "")
	corsActual(t, "429", limited, appOrigin, true)

	// Without Origin (same-origin, or no browser) and from another origin: nothing opened,
	// but the answer still varies by Origin for caches.
	for what, hdr := range map[string][]string{"no Origin": nil, "other origin": {"Origin", otherOrigin}} {
		resp, body := rlReq(t, s, "GET", self, tok, "198.51.100.12", nil, hdr...)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: GET %s: %d %s", what, self, resp.StatusCode, body)
		}
		noCORS(t, what, resp)
		if !varies(resp, "Origin") {
			t.Errorf("%s: Vary %q does not name Origin", what, resp.Header.Values("Vary"))
		}
	}
}

// "*" opens the API to scripts on every origin, but without credentials, which browsers
// refuse beside a wildcard.
func TestCORSAnyOrigin(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, backends["embedded"](t), withCORSOrigins("*"))
	resp := preflight(t, s, "/vehicles", otherOrigin, "POST", "", "Access-Control-Request-Headers", "authorization,content-type")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight: %d Access-Control-Allow-Origin %q, want 204 *", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "" {
		t.Errorf("preflight: Access-Control-Allow-Credentials %q beside *", got)
	}
	resp, body := rlReq(t, s, "GET", "/vehicles", "", "", nil, "Origin", otherOrigin)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /vehicles: %d %s", resp.StatusCode, body)
	}
	corsActual(t, "401", resp, "*", false)
}

// A process serving only some domains opens CORS only for what it serves: the others' paths
// are unknown here.
func TestCORSServedDomainsOnly(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, backends["embedded"](t), withCORSOrigins(appOrigin), withDomains(api.DomainVehicles))
	if resp := preflight(t, s, "/vehicles", appOrigin, "POST", ""); resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Errorf("preflight POST /vehicles: %d Access-Control-Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	resp := preflight(t, s, "/users", appOrigin, "POST", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("preflight POST /users (not served): %d, want 404", resp.StatusCode)
	}
	noCORS(t, "preflight POST /users (not served)", resp)
}

// With no origins configured nothing changes: OPTIONS is a 405 with Allow, preflight or not,
// and no answer carries a CORS header or varies by Origin.
func TestCORSOff(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, backends["embedded"](t))
	resp := preflight(t, s, "/vehicles", appOrigin, "POST", "")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("preflight: %d Allow %q, want 405 Allow GET, HEAD, POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	noCORS(t, "preflight", resp)
	for _, tok := range []string{s.token, ""} {
		resp, _ := rlReq(t, s, "GET", "/vehicles", tok, "", nil, "Origin", appOrigin)
		noCORS(t, "GET /vehicles", resp)
		if varies(resp, "Origin") {
			t.Errorf("GET /vehicles (%d): Vary %q names Origin", resp.StatusCode, resp.Header.Values("Vary"))
		}
	}
}

// NewHandler refuses origins ParseCORSOrigins would, so that a bad one is an error at start
// whoever builds the Config.
func TestNewHandlerCORSOrigins(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, backends["embedded"](t))
	for _, origins := range [][]string{{"https://app.example.com/"}, {"*", appOrigin}, {"app.example.com"}} {
		if _, err := api.NewHandler(s.Cached, api.Config{Auth: s.Auth, CORSAllowedOrigins: origins}); err == nil {
			t.Errorf("NewHandler accepts CORSAllowedOrigins %q", origins)
		}
	}
	if _, err := api.NewHandler(s.Cached, api.Config{Auth: s.Auth, CORSAllowedOrigins: []string{"HTTPS://App.Example.com"}}); err != nil {
		t.Errorf("NewHandler: %v", err)
	}
}

func TestParseCORSOrigins(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ", nil},
		{"*", []string{"*"}},
		{" * ", []string{"*"}},
		{"https://app.example.com", []string{"https://app.example.com"}},
		{"https://app.example.com, http://localhost:5173", []string{"https://app.example.com", "http://localhost:5173"}},
		{"HTTPS://App.Example.COM,https://app.example.com", []string{"https://app.example.com"}},
		{"https://app.example.com,", []string{"https://app.example.com"}},
		{"http://[::1]:8080", []string{"http://[::1]:8080"}},
		{"http://127.0.0.1:3000", []string{"http://127.0.0.1:3000"}},
		{"https://app.example.com:8443", []string{"https://app.example.com:8443"}},
		{"http://app.example.com:443", []string{"http://app.example.com:443"}},
		{"capacitor://localhost", []string{"capacitor://localhost"}},
	} {
		got, err := api.ParseCORSOrigins(c.in)
		if err != nil {
			t.Errorf("ParseCORSOrigins(%q): %v", c.in, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("ParseCORSOrigins(%q) (-want +got):\n%s", c.in, diff)
		}
	}
	for _, c := range []struct{ in, says string }{
		{"app.example.com", "scheme://host[:port]"},
		{"//app.example.com", "scheme://host[:port]"},
		{"https://", "scheme://host[:port]"},
		{"https://app.example.com/", "path"},
		{"https://app.example.com/app", "path"},
		{"https://app.example.com?x=1", "query"},
		{"https://app.example.com#top", "fragment"},
		{"https://user@app.example.com", "user information"},
		{"https://app.example.com:", "scheme://host[:port]"},
		{"https://app.example.com:0", "port"},
		{"https://app.example.com:70000", "port"},
		{"https://app.example.com:443", "default port"},
		{"http://app.example.com:80", "default port"},
		{"https://*.example.com", "wildcard"},
		{"*, https://app.example.com", `"*"`},
		{"null", "scheme://host[:port]"},
		{"https://app.example.com https://b.example.com", "scheme://host[:port]"},
	} {
		got, err := api.ParseCORSOrigins(c.in)
		if err == nil {
			t.Errorf("ParseCORSOrigins(%q) = %q, want an error", c.in, got)
			continue
		}
		if !strings.Contains(err.Error(), c.says) {
			t.Errorf("ParseCORSOrigins(%q): %q does not say %q", c.in, err, c.says)
		}
	}
}
