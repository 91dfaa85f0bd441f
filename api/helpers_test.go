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
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/gen"
	"github.com/motorpool/motorpool/impl"
	"github.com/motorpool/motorpool/password"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/sqlite"
)

// backends opens a fresh, migrated store of each kind; every API test runs on all of them.
var backends = map[string]func(t testing.TB) storage.Store{
	"sqlite": func(t testing.TB) storage.Store {
		s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "motorpool.db")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if _, err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	},
	"postgres": func(t testing.TB) storage.Store { return pgtest.Open(t) },
}

func eachBackend(t *testing.T, f func(t *testing.T, newStore func(testing.TB) storage.Store)) {
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
// takes (404, 405) must still be problem+json.
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
	if p := req.URL.Path; p == "/metrics" || p == "/openapi.json" || p == "/openapi.yaml" || strings.HasPrefix(p, "/docs") {
		return resp, nil
	}
	router, err := contract()
	if err != nil {
		c.t.Fatalf("load openapi.yaml: %v", err)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		if resp.Header.Get("Content-Type") != "application/problem+json" {
			c.t.Errorf("%s %s: unrouted response %d has Content-Type %q, want application/problem+json", req.Method, req.URL, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return resp, nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		c.t.Errorf("%s %s: response %d breaks openapi.yaml: %v\nbody: %s", req.Method, req.URL, resp.StatusCode, err, body)
	}
	return resp, nil
}

type testServer struct {
	URL    string
	HTTP   *http.Client // validates every response against the contract
	Client *gen.ClientWithResponses
	Store  storage.Store
	Logs   *syncBuffer
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

func newTestServer(t testing.TB, store storage.Store, opts ...impl.Option) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	h, err := api.NewHandler(impl.New(store, testHasher, opts...), api.Config{
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		PoolStats: func() storage.PoolStats {
			if s, ok := store.(interface{ Stats() storage.PoolStats }); ok {
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
	client, err := gen.NewClientWithResponses(srv.URL, gen.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{URL: srv.URL, HTTP: hc, Client: client, Store: store, Logs: logs}
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

func decodeProblem(t testing.TB, resp *http.Response, body []byte) gen.Problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, body)
	}
	var p gen.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body %s: %v", body, err)
	}
	if p.Status != resp.StatusCode {
		t.Errorf("problem status %d != HTTP status %d", p.Status, resp.StatusCode)
	}
	return p
}

func problemFields(p gen.Problem) []string {
	var out []string
	if p.Errors != nil {
		for _, e := range *p.Errors {
			out = append(out, e.Field)
		}
	}
	return out
}

func mustUser(t testing.TB, s *testServer, email string) gen.User {
	t.Helper()
	resp, err := s.Client.CreateUserWithResponse(context.Background(), gen.CreateUserJSONRequestBody{
		Email: gen.Email(email), Name: "Test User", Password: "correct horse battery",
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

func mustVehicle(t testing.TB, s *testServer, owner int64, n int) gen.Vehicle {
	t.Helper()
	resp, err := s.Client.CreateVehicleWithResponse(context.Background(), gen.CreateVehicleJSONRequestBody{
		UserId: owner, Make: "Toyota", Model: "Corolla", Year: 2020, Vin: vin(n), LicensePlate: "AB-123-CD",
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
