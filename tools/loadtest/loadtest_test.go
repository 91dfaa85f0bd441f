package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The ratio to the floor is taken in each round and then its median, so that a round in
// which the whole machine was slow does not skew it; here the median of the ratios is 0.5
// while the ratio of the medians would be 0.4.
func TestReportRatioIsMedianOfPerRoundRatios(t *testing.T) {
	rp := report{names: []string{cached, floor}, floor: 1, rounds: [][]result{
		{{Requests: 1, RPS: 400}, {Requests: 1, RPS: 1000}},
		{{Requests: 1, RPS: 500}, {Requests: 1, RPS: 1000}},
		{{Requests: 1, RPS: 900}, {Requests: 1, RPS: 1500}},
	}}
	var b strings.Builder
	rp.write(&b)
	if want := "| full stack, cached | 500 | 0.00 | 0.00 | 0 | 0.500 |"; !strings.Contains(b.String(), want) {
		t.Fatalf("median row %q missing from\n%s", want, b.String())
	}
	if want := "| 3 | full stack, cached | 900 | 0.00 | 0.00 | 0 | 0.600 |"; !strings.Contains(b.String(), want) {
		t.Fatalf("round row %q missing from\n%s", want, b.String())
	}
}

func TestRunWithAnErrorIsInvalid(t *testing.T) {
	ok := result{Requests: 10, RPS: 10}
	rp := report{names: []string{cached, uncached, floor}, floor: 2, rounds: [][]result{
		{ok, ok, ok},
		{ok, {Requests: 10, RPS: 10, Errors: 1, Example: "429 too many"}, ok},
	}}
	var b strings.Builder
	if finish(&b, rp) {
		t.Fatalf("a run with a 429 passed as valid:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "INVALID RUN") || !strings.Contains(b.String(), "round 2, full stack, uncached: 1 errors of 10 requests (429 too many)") {
		t.Fatalf("the verdict does not name the scenario and round:\n%s", b.String())
	}
	b.Reset()
	rp.rounds[1][1] = ok
	if !finish(&b, rp) {
		t.Fatalf("a run without errors is invalid:\n%s", b.String())
	}
}

// The in-process generator sends every request with one of the users' tokens to one of the
// paths, counts a non-2xx answer as an error and a cache hit as a hit, and stops by itself
// after the duration.
func TestVegetaLoadCountsErrorsAndStops(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		mu.Lock()
		seen[auth+" "+r.URL.Path] = true
		mu.Unlock()
		if r.URL.Path == "/vehicles/7" {
			w.Header().Set("X-Cache", "hit")
		}
		if auth == "Bearer refused" {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	l := newLoad(srv.URL, population{tokens: []string{"a", "refused"}, vehicles: []int64{7, 8}})
	g := newVegeta(4)
	if err := g.warm(context.Background(), l, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	res, err := g.measure(context.Background(), l, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("a 300ms load ran %s", took)
	}
	if res.Requests == 0 || res.Errors == 0 || res.Errors == res.Requests || res.RPS <= 0 {
		t.Fatalf("want some of the requests refused, got %+v", res)
	}
	if res.Hits == 0 || res.Hits == res.Requests {
		t.Fatalf("want the answers with X-Cache: hit counted (about half), got %+v", res)
	}
	var keys []string
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"Bearer a /vehicles/7", "Bearer a /vehicles/8", "Bearer refused /vehicles/7", "Bearer refused /vehicles/8"}
	if !slices.Equal(keys, want) {
		t.Fatalf("requests seen %q, want %q", keys, want)
	}
}

func TestOnlyLoopbackPostgres(t *testing.T) {
	for url, ok := range map[string]bool{
		"postgres://postgres@127.0.0.1:5432/postgres": true,
		"postgres://postgres@localhost/postgres":      true,
		"postgres://postgres@db.example.com/postgres": false,
		"postgres://postgres@10.0.0.5:5432/postgres":  false,
	} {
		if _, err := loopbackURL(url); (err == nil) != ok {
			t.Errorf("loopbackURL(%q) = %v, want allowed %v", url, err, ok)
		}
	}
}

func TestSlug(t *testing.T) {
	if got := slug("embedded (SQLite + memory)"); got != "embedded-sqlite-memory" {
		t.Fatalf("slug = %q", got)
	}
	if got := slug("net/http floor"); got != "net-http-floor" {
		t.Fatalf("slug = %q", got)
	}
}

// A sample counts for the most specific layer on its stack: JSON decoded while verifying a
// token is JWT verification's, a response write is net/http's, GC with no request is the
// runtime's, and the middleware closures that wrap everything claim nothing.
func TestLayerShares(t *testing.T) {
	const script = `
	  1 encoding/json.(*decodeState).object
	  2 github.com/lestrrat-go/jwx/v3/jwt.parse
	  3 github.com/motorpool/motorpool/token.(*Issuer).Verify
	  4 github.com/motorpool/motorpool/auth.(*Service).AuthenticateCharging
	  5 github.com/motorpool/motorpool/api.NewHandler.NewHandler.identify.func8.func12
	  6 net/http.(*conn).serve

	  1 tcp_sendmsg
	  2 syscall.write
	  3 net/http.(*response).finishRequest
	  4 net/http.(*conn).serve

	  1 runtime.scanObject
	  2 runtime.gcBgMarkWorker

	  1 runtime.mallocgc
	  2 github.com/getkin/kin-openapi/openapi3filter.ValidateRequest
	  3 github.com/motorpool/motorpool/api.(*rateLimiter).middleware-fm.(*rateLimiter).middleware.func1
	  4 net/http.(*ServeMux).ServeHTTP
	  5 net/http.(*conn).serve
`
	counts, total, err := layerShares(strings.NewReader(script))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"JWT verify (jwx, Ed25519)": 1, "validation (kin-openapi)": 1, runtimeLayer: 1,
		"net/http and the kernel's network (parsing, reads, writes)": 1}
	if total != 4 || len(counts) != len(want) {
		t.Fatalf("got %d samples %v, want %v", total, counts, want)
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%s: %d samples, want %d (all: %v)", k, counts[k], v, counts)
		}
	}
	var b strings.Builder
	writeLayers(&b, counts, total)
	if !strings.Contains(b.String(), "| JWT verify (jwx, Ed25519) | 25.0% |") {
		t.Fatalf("table:\n%s", b.String())
	}
}
