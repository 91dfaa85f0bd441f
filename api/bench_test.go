package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/impl"
	"github.com/motorpool/motorpool/storage"
)

// The baseline the cache will be measured against: the whole handler stack (logging, metrics,
// validation, strict server, store), in process, with no network between client and server.

func benchHandler(b *testing.B, store storage.Store) http.Handler {
	h, err := api.NewHandler(impl.New(store, testHasher), api.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

func serve(b *testing.B, h http.Handler, req *http.Request, want int) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", req.Method, req.URL, rec.Code, rec.Body)
	}
}

func BenchmarkGetUser(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			store := backends[name](b)
			u, err := store.CreateUser(context.Background(), storage.NewUser{Email: "bench@example.com", Name: "Bench", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$a2V5"})
			if err != nil {
				b.Fatal(err)
			}
			h := benchHandler(b, store)
			path := fmt.Sprintf("/users/%d", u.ID)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				serve(b, h, httptest.NewRequest("GET", path, nil), http.StatusOK)
			}
		})
	}
}

func BenchmarkCreateVehicle(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			store := backends[name](b)
			u, err := store.CreateUser(context.Background(), storage.NewUser{Email: "bench@example.com", Name: "Bench", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$a2V5"})
			if err != nil {
				b.Fatal(err)
			}
			h := benchHandler(b, store)
			var n atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				body := fmt.Sprintf(`{"userId":%d,"make":"Toyota","model":"Corolla","year":2020,"vin":%q,"licensePlate":"AB-123-CD","color":"blue"}`,
					u.ID, vin(int(n.Add(1))))
				req := httptest.NewRequest("POST", "/vehicles", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				serve(b, h, req, http.StatusCreated)
			}
		})
	}
}
