package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The whole handler stack (logging, metrics, bearer authentication against the auth state
// store, validation, strict server, store), in process, with no network between client and
// server; the stores are real (SQLite and memory, or PostgreSQL and Valkey).

func serve(b *testing.B, h http.Handler, req *http.Request, want int) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", req.Method, req.URL, rec.Code, rec.Body)
	}
}

func authed(req *http.Request, tok string) *http.Request {
	req.Header.Set("Authorization", "Bearer "+tok)
	return req
}

func BenchmarkGetUser(b *testing.B) {
	for _, name := range []string{"embedded", "production"} {
		b.Run(name, func(b *testing.B) {
			s := newTestServer(b, backends[name](b))
			u, tok, _ := s.member(b, "bench@example.com")
			path := fmt.Sprintf("/users/%d", u.Id)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				serve(b, s.Handler, authed(httptest.NewRequest("GET", path, nil), tok), http.StatusOK)
			}
		})
	}
}

func BenchmarkGetVehicle(b *testing.B) {
	for _, name := range []string{"embedded", "production"} {
		b.Run(name, func(b *testing.B) {
			s := newTestServer(b, backends[name](b))
			u, tok, _ := s.member(b, "bench@example.com")
			v := mustVehicle(b, s, u.Id, 1)
			path := fmt.Sprintf("/vehicles/%d", v.Id)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				serve(b, s.Handler, authed(httptest.NewRequest("GET", path, nil), tok), http.StatusOK)
			}
		})
	}
}

func BenchmarkCreateVehicle(b *testing.B) {
	for _, name := range []string{"embedded", "production"} {
		b.Run(name, func(b *testing.B) {
			s := newTestServer(b, backends[name](b))
			_, tok, _ := s.member(b, "bench@example.com")
			var n atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				body := fmt.Sprintf(`{"make":"Toyota","model":"Corolla","year":2020,"vin":%q,"licensePlate":"AB-123-CD","color":"blue"}`, vin(int(n.Add(1))))
				req := authed(httptest.NewRequest("POST", "/vehicles", strings.NewReader(body)), tok)
				req.Header.Set("Content-Type", "application/json")
				serve(b, s.Handler, req, http.StatusCreated)
			}
		})
	}
}

// BenchmarkLogin is dominated by argon2id (19 MiB, t=2), as it should be.
func BenchmarkLogin(b *testing.B) {
	for _, name := range []string{"embedded", "production"} {
		b.Run(name, func(b *testing.B) {
			s := newTestServer(b, backends[name](b))
			mustUser(b, s, "bench@example.com")
			body := `{"email":"bench@example.com","password":"` + testPassword + `"}`
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/auth/login", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				serve(b, s.Handler, req, http.StatusOK)
			}
		})
	}
}
