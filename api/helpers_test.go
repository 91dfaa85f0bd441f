package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/client"
	"github.com/motorpool/motorpool/gen"
	"github.com/motorpool/motorpool/impl"
	"github.com/motorpool/motorpool/invalidation"
	"github.com/motorpool/motorpool/password"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/memory"
	"github.com/motorpool/motorpool/storage/postgres"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/split"
	"github.com/motorpool/motorpool/storage/sqlite"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
	"github.com/motorpool/motorpool/token"
)

// backend is one pairing of a durable store with an auth state store: the embedded default
// (SQLite, in process) and production (PostgreSQL, Valkey). Every API test runs on both.
type backend struct {
	store  storage.Store
	state  storage.AuthState
	cache  storage.Cache             // nil: no cache decorator
	valkey *valkey.Client            // nil for the embedded pairing
	inv    *invalidation.Invalidator // set by observed, with the cache
	plain  storage.Store             // the store as opened, before observed
	owners storage.UserProjection    // set by observed; else the store itself is asked
}

// observed gives b's store the invalidator a deployment wires (main's wire_cache.go): each
// commit invalidates what its events name, and failures are retried. Call it before wrapping
// b.store; newTestServer calls it for a backend with a cache but no invalidator yet.
func observed(t testing.TB, b backend) backend {
	t.Helper()
	if b.cache == nil || b.inv != nil {
		return b
	}
	ob, ok := b.store.(storage.Observable)
	if !ok {
		t.Fatalf("store %T cannot be observed: call observed before wrapping it", b.store)
	}
	b.plain = b.store
	b.inv = invalidation.New(b.cache, invalidation.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.inv.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	o := ob.Observe(b.inv.Committed)
	b.store, b.owners = o, o
	return b
}

// databases is the two-database layout as the API sees it (main's wire_db.go): the split
// store, the users domain's calls on one database and the vehicles domain's on the other,
// observable as one store. Its users' writes reach the projection as they commit (as in a
// process serving both domains); no events are relayed.
type databases struct {
	*split.Store
	users, vehicles *postgres.Store
}

func newDatabases(t testing.TB) databases {
	u, v := pgtest.Open(t), pgtest.Open(t)
	return databases{Store: split.New(split.Config{Users: u, Vehicles: v, Owners: v, OwnerWait: 2 * time.Second}), users: u, vehicles: v}
}

// Observe implements storage.Observable, observing both databases.
func (d databases) Observe(fn storage.Committed) storage.Observed {
	u, v := d.users.Observe(fn), d.vehicles.Observe(fn)
	return split.New(split.Config{Users: u, Vehicles: v, Owners: v, OwnerWait: 2 * time.Second})
}

// openEmbedded is the embedded pairing on a migrated SQLite file opened with cfg.
func openEmbedded(t testing.TB, cfg sqlite.Config) backend {
	s, err := sqlite.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	state := memory.NewAuthState(nil)
	t.Cleanup(func() { _ = state.Close() })
	cache := memory.NewCache(memory.CacheConfig{})
	t.Cleanup(func() { _ = cache.Close() })
	return observed(t, backend{store: s, state: state, cache: cache})
}

var backends = map[string]func(t testing.TB) backend{
	"embedded": func(t testing.TB) backend {
		return openEmbedded(t, sqlite.Config{Path: filepath.Join(t.TempDir(), "motorpool.db")})
	},
	"production": func(t testing.TB) backend {
		vc := valkeytest.Open(t)
		return observed(t, backend{store: pgtest.Open(t), state: valkey.NewAuthState(vc), cache: openValkeyCache(t, vc.KeyPrefix(), nil), valkey: vc})
	},
	"two-databases": func(t testing.TB) backend {
		vc := valkeytest.Open(t)
		return observed(t, backend{store: newDatabases(t), state: valkey.NewAuthState(vc), cache: openValkeyCache(t, vc.KeyPrefix(), nil), valkey: vc})
	},
}

// openValkeyCache opens a Valkey cache (its own client, with client-side caching) under prefix.
func openValkeyCache(t testing.TB, prefix string, wrap func(valkeygo.Client) valkeygo.Client) *valkey.Cache {
	t.Helper()
	return openValkeyCacheOn(t, []string{valkeyAddr()}, prefix, wrap)
}

// openValkeyCacheOn is openValkeyCache on the server (or cluster) at addrs.
func openValkeyCacheOn(t testing.TB, addrs []string, prefix string, wrap func(valkeygo.Client) valkeygo.Client) *valkey.Cache {
	t.Helper()
	c, err := valkey.OpenCache(context.Background(), valkey.Config{Addrs: addrs, KeyPrefix: prefix, Wrap: wrap}, valkey.CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func eachBackend(t *testing.T, f func(t *testing.T, newBackend func(testing.TB) backend)) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, open)
		})
	}
}

// testHasher is shared: argon2id at the production parameters, so tests see real costs.
var testHasher = password.NewHasher(password.OWASP, 0)

// contract is openapi.yaml read from disk, not the embedded copy, so a stale generation shows.
var contract = sync.OnceValues(func() (routers.Router, error) {
	api.RegisterFormats()
	doc, err := openapi3.NewLoader().LoadFromFile("../openapi.yaml")
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
})

// contractTransport checks every response against openapi.yaml: its status must be declared
// for the operation and its headers and body must match. Responses to requests no operation
// takes (404, 405) must still be problem+json, except a CORS preflight's 204, which answers
// the browser rather than an operation and must have no body.
type contractTransport struct {
	t    testing.TB
	next http.RoundTripper
}

func (c contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" && resp.StatusCode == http.StatusNoContent {
		if len(body) > 0 {
			c.t.Errorf("OPTIONS %s: preflight 204 has a %d-byte body", req.URL, len(body))
		}
		return resp, nil
	}
	if p := req.URL.Path; p == "/metrics" || p == "/openapi.json" || p == "/openapi.yaml" || strings.HasPrefix(p, "/docs") {
		return resp, nil
	}
	router, err := contract()
	if err != nil {
		c.t.Fatalf("load openapi.yaml: %v", err)
	}
	// HEAD is answered as GET without the body (RFC 9110 §9.3.2); the contract declares GET.
	head := req.Method == http.MethodHead
	probe := req
	if head {
		if len(body) > 0 {
			c.t.Errorf("HEAD %s: response has a %d-byte body", req.URL, len(body))
		}
		probe = req.Clone(req.Context())
		probe.Method = http.MethodGet
	}
	route, params, err := router.FindRoute(probe)
	if err != nil {
		if resp.Header.Get("Content-Type") != "application/problem+json" {
			c.t.Errorf("%s %s: unrouted response %d has Content-Type %q, want application/problem+json", req.Method, req.URL, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return resp, nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: head},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		c.t.Errorf("%s %s: response %d breaks openapi.yaml: %v\nbody: %s", req.Method, req.URL, resp.StatusCode, err, body)
	}
	if undeclared := undeclaredHeaders(route, resp); len(undeclared) > 0 {
		c.t.Errorf("%s %s: response %d sends headers openapi.yaml does not declare for it: %v", req.Method, req.URL, resp.StatusCode, undeclared)
	}
	return resp, nil
}

// describedHeaders are the fields of the service's own that openapi.yaml must declare on each
// response that carries them, so that generated clients know them.
var describedHeaders = []string{
	"X-Request-Id", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "Ratelimit",
	"Ratelimit-Policy", "Retry-After", "X-Cache", "Etag", "Location", "Www-Authenticate",
}

// undeclaredHeaders lists the described headers resp carries that its operation's response
// for that status does not declare.
func undeclaredHeaders(route *routers.Route, resp *http.Response) []string {
	r := route.Operation.Responses.Status(resp.StatusCode)
	if r == nil {
		r = route.Operation.Responses.Default()
	}
	if r == nil || r.Value == nil {
		return nil // an undeclared status: ValidateResponse reports it
	}
	var out []string
	for _, h := range describedHeaders {
		if _, sent := resp.Header[h]; !sent {
			continue
		}
		declared := false
		for name := range r.Value.Headers {
			declared = declared || http.CanonicalHeaderKey(name) == h
		}
		if !declared {
			out = append(out, h)
		}
	}
	return out
}

type testServer struct {
	URL     string
	Handler http.Handler // the handler under test, for in-process benchmarks
	HTTP    *http.Client // validates every response against the contract
	Client  *client.ClientWithResponses
	Store   storage.Store
	Backend backend
	Auth    *auth.Service
	Issuer  *token.Issuer
	Mail    *captureMailer
	Logs    *syncBuffer
	Admin   client.User
	Cached  *impl.Cached              // nil when the backend has no cache
	Inval   *invalidation.Invalidator // with Cached
	token   string                    // the admin's access token, sent by s.do and s.Client
}

// captureMailer keeps reset links for tests to follow.
type captureMailer struct {
	mu    sync.Mutex
	links map[string][]string
}

func (m *captureMailer) SendPasswordReset(_ context.Context, to, link string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.links == nil {
		m.links = map[string][]string{}
	}
	m.links[to] = append(m.links[to], link)
	return nil
}

func (m *captureMailer) last(to string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.links[to]
	if len(l) == 0 {
		return ""
	}
	return l[len(l)-1]
}

const adminEmail, testPassword = "admin@example.com", "correct horse battery"

// serverSetup is what serverOptions adjust before a test server is built.
type serverSetup struct {
	auth      auth.Config
	authOpts  []auth.Option
	rateLimit *api.RateLimitConfig // nil: no rate limiting (the default for tests)
	trusted   []netip.Prefix
	domains   []api.Domain // nil: every domain
	cors      []string     // CORSAllowedOrigins; nil: CORS off
	tracing   bool         // Config.Tracing
}

type serverOption func(*serverSetup)

func withAuthConfig(f func(*auth.Config)) serverOption {
	return func(s *serverSetup) { f(&s.auth) }
}

// withAuthOptions passes opts to auth.NewService (after the logger and cache hooks).
func withAuthOptions(opts ...auth.Option) serverOption {
	return func(s *serverSetup) { s.authOpts = append(s.authOpts, opts...) }
}

// withRateLimit turns rate limiting on with the plan's defaults as f leaves them; the store
// is the backend's (Valkey on production, in-process on embedded) unless f sets one.
func withRateLimit(f func(*api.RateLimitConfig)) serverOption {
	return func(s *serverSetup) {
		rl := api.DefaultRateLimitConfig()
		// RATE_LIMIT_TIMEOUT's 50 ms is for production; on a shared 2-core machine running the
		// suite under -race a healthy store can take longer, and a fail-closed rule would then
		// answer 503. Tests about the store going away bound it through the client or set it.
		rl.Timeout = time.Second
		if f != nil {
			f(&rl)
		}
		s.rateLimit = &rl
	}
}

// withDomains serves only the given domains, as SERVE_DOMAINS does.
func withDomains(d ...api.Domain) serverOption {
	return func(s *serverSetup) { s.domains = d }
}

// withCORSOrigins lets browser scripts on origins call the API (CORS_ALLOWED_ORIGINS).
func withCORSOrigins(origins ...string) serverOption {
	return func(s *serverSetup) { s.cors = origins }
}

// withTracing says requests arrive in server spans (Config.Tracing).
func withTracing() serverOption {
	return func(s *serverSetup) { s.tracing = true }
}

// withTrustedProxies sets the proxies whose X-Forwarded-For is believed.
func withTrustedProxies(p ...netip.Prefix) serverOption {
	return func(s *serverSetup) { s.trusted = p }
}

func newTestServer(t testing.TB, b backend, opts ...serverOption) *testServer {
	t.Helper()
	ctx := context.Background()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	key, err := token.LoadOrCreateKey(filepath.Join(t.TempDir(), "signing.pem"))
	if err != nil {
		t.Fatal(err)
	}
	setup := serverSetup{auth: auth.DefaultConfig()}
	for _, o := range opts {
		o(&setup)
	}
	cfg := setup.auth
	if rl := setup.rateLimit; rl != nil {
		if rl.Fallback == nil {
			rl.Fallback = memory.NewLimiter(nil)
		}
		if rl.Store == nil {
			rl.Store = rl.Fallback
			if b.valkey != nil {
				rl.Store = valkey.NewLimiter(b.valkey, rl.Timeout)
			}
		}
	}
	issuer, err := token.NewIssuer(token.Config{Issuer: "motorpool-test", Audience: "motorpool-api", AccessTTL: cfg.AccessTTL, RefreshTTL: cfg.RefreshTTL, Skew: cfg.Skew}, key)
	if err != nil {
		t.Fatal(err)
	}
	mailer := &captureMailer{}
	s0 := &testServer{}
	b = observed(t, b)
	authOpts := append([]auth.Option{auth.WithLogger(log)}, setup.authOpts...)
	svc, err := auth.NewService(ctx, b.store, b.state, tokenAdapter{issuer}, testHasher, mailer, cfg, authOpts...)
	if err != nil {
		t.Fatal(err)
	}
	owners := b.owners
	if owners == nil {
		p, ok := b.store.(storage.UserProjection)
		if !ok {
			t.Fatalf("store %T has no projection of the users: observe it before wrapping it", b.store)
		}
		owners = p
	}
	var server gen.StrictServerInterface = impl.New(impl.Deps{Store: b.store, Owners: owners, Hasher: testHasher, Auth: svc, JWKS: issuer.JWKS}, impl.WithLogger(log))
	if b.cache != nil {
		cached := impl.NewCached(server, b.store, b.cache, b.inv, impl.DefaultCacheTTLs(), log)
		server = cached
		s0.Cached = cached
	}
	h, err := api.NewHandler(server, api.Config{
		Logger:             log,
		Auth:               svc,
		RateLimit:          setup.rateLimit,
		TrustedProxies:     setup.trusted,
		Domains:            setup.domains,
		CORSAllowedOrigins: setup.cors,
		Tracing:            setup.tracing,
		PoolStats: func() storage.PoolStats {
			if s, ok := b.store.(interface{ Stats() storage.PoolStats }); ok {
				return s.Stats()
			}
			return storage.PoolStats{}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	hc := &http.Client{Transport: contractTransport{t: t, next: http.DefaultTransport}}
	s := s0
	*s = testServer{URL: srv.URL, Handler: h, HTTP: hc, Store: b.store, Backend: b, Auth: svc, Issuer: issuer, Mail: mailer, Logs: logs, Cached: s0.Cached, Inval: b.inv}
	if _, err := auth.EnsureAdmin(ctx, b.store, testHasher, adminEmail, "Admin", testPassword); err != nil {
		t.Fatal(err)
	}
	if setup.domains != nil && !slices.Contains(setup.domains, api.DomainUsers) {
		// No sign-in route here: the admin signs in as the users process would sign them in.
		pair, err := svc.Login(ctx, adminEmail, testPassword)
		if err != nil {
			t.Fatal(err)
		}
		s.token = pair.AccessToken
		s.Client = s.clientWith(t, s.token)
		return s
	}
	s.token = s.login(t, adminEmail, testPassword).AccessToken
	s.Client = s.clientWith(t, s.token)
	me, err := s.Client.GetMeWithResponse(ctx)
	if err != nil || me.JSON200 == nil {
		t.Fatalf("admin /auth/me: %v %s", err, me.Body)
	}
	s.Admin = me.JSON200.User
	return s
}

// clientWith returns a generated client that sends tok as its bearer token ("" for none).
func (s *testServer) clientWith(t testing.TB, tok string) *client.ClientWithResponses {
	t.Helper()
	opts := []client.ClientOption{client.WithHTTPClient(s.HTTP)}
	if tok != "" {
		opts = append(opts, client.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+tok)
			return nil
		}))
	}
	c, err := client.NewClientWithResponses(s.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// login signs in and fails the test unless it works.
func (s *testServer) login(t testing.TB, email, password string) client.TokenPair {
	t.Helper()
	c := s.clientWith(t, "")
	r, err := c.LoginWithResponse(context.Background(), client.LoginJSONRequestBody{Email: client.Email(email), Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if r.JSON200 == nil {
		t.Fatalf("login %s: %d %s", email, r.StatusCode(), r.Body)
	}
	return *r.JSON200
}

// member registers a user and signs them in, returning the user, their token and a client.
func (s *testServer) member(t testing.TB, email string) (client.User, string, *client.ClientWithResponses) {
	t.Helper()
	u := mustUser(t, s, email)
	tok := s.login(t, email, testPassword).AccessToken
	return u, tok, s.clientWith(t, tok)
}

// tokenAdapter lets the test wire token.Issuer into auth as main does.
type tokenAdapter struct{ i *token.Issuer }

func (a tokenAdapter) Issue(userID int64, sid string, role storage.Role, typ auth.TokenType, exp time.Time) (string, auth.Claims, error) {
	tok, c, err := a.i.Issue(userID, sid, string(role), token.Type(typ), exp)
	return tok, auth.Claims{UserID: c.Subject, SessionID: c.SessionID, ID: c.ID, Role: storage.Role(c.Role), ExpiresAt: c.ExpiresAt}, err
}

func (a tokenAdapter) Verify(tok string, typ auth.TokenType) (auth.Claims, error) {
	c, err := a.i.Verify(tok, token.Type(typ))
	return auth.Claims{UserID: c.Subject, SessionID: c.SessionID, ID: c.ID, Role: storage.Role(c.Role), ExpiresAt: c.ExpiresAt}, err
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// do sends a raw request and returns the status, headers and body.
func (s *testServer) do(t testing.TB, method, path, contentType string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// unavailable fails unless resp is the 503 of a backend away: problem+json with a Retry-After
// of whole seconds, so that clients back off.
func unavailable(t testing.TB, what string, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("%s: %d %s, want 503", what, resp.StatusCode, body)
		return
	}
	decodeProblem(t, resp, body)
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("%s: 503 with Retry-After %q, want whole seconds", what, resp.Header.Get("Retry-After"))
	}
}

func decodeProblem(t testing.TB, resp *http.Response, body []byte) client.Problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, body)
	}
	var p client.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body %s: %v", body, err)
	}
	if p.Status != resp.StatusCode {
		t.Errorf("problem status %d != HTTP status %d", p.Status, resp.StatusCode)
	}
	if p.Errors != nil && (p.ErrorCount == nil || *p.ErrorCount < len(*p.Errors)) {
		t.Errorf("problem lists %d errors but errorCount is %v", len(*p.Errors), p.ErrorCount)
	}
	return p
}

func problemFields(p client.Problem) []string {
	var out []string
	if p.Errors != nil {
		for _, e := range *p.Errors {
			out = append(out, e.Field)
		}
	}
	return out
}

func mustUser(t testing.TB, s *testServer, email string) client.User {
	t.Helper()
	resp, err := s.Client.CreateUserWithResponse(context.Background(), client.CreateUserJSONRequestBody{
		Email: client.Email(email), Name: "Test User", Password: testPassword,
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.JSON201 == nil {
		t.Fatalf("create user %s: %d %s", email, resp.StatusCode(), resp.Body)
	}
	return *resp.JSON201
}

// vin makes a distinct valid VIN from n.
func vin(n int) string {
	const alphabet = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
	b := []byte("1HGCM000000000000")
	for i := len(b) - 1; n > 0 && i >= 5; i-- {
		b[i] = alphabet[n%len(alphabet)]
		n /= len(alphabet)
	}
	return string(b)
}

func mustVehicle(t testing.TB, s *testServer, owner int64, n int) client.Vehicle {
	t.Helper()
	resp, err := s.Client.CreateVehicleWithResponse(context.Background(), client.CreateVehicleJSONRequestBody{
		UserId: &owner, Make: "Toyota", Model: "Corolla", Year: 2020, Vin: vin(n), LicensePlate: "AB-123-CD",
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.JSON201 == nil {
		t.Fatalf("create vehicle %d: %d %s", n, resp.StatusCode(), resp.Body)
	}
	return *resp.JSON201
}

var errBoom = errors.New("boom: the database caught fire")
