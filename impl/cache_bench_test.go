package impl_test

import (
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/motorpool/motorpool/gen"
	"github.com/motorpool/motorpool/impl"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
)

// The cache layer alone: GET /users/{id} and GET /vehicles as the decorator answers them
// (handler call plus writing the response), on PostgreSQL and Valkey, uncached, cached in
// Valkey only, and cached in the local tier. The full HTTP stack (with authentication's own
// round trip) is measured in api's benchmarks.
// discard is a ResponseWriter that keeps the status and drops the body, so the benchmark
// measures the handler and the cache, not a recorder's buffering.
type discard struct {
	h    http.Header
	Code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(code int)        { d.Code = code }

func benchCached(b *testing.B, mode string, call func(ctx context.Context, s gen.StrictServerInterface) (visit func(*discard) error)) {
	ctx := context.Background()
	store := pgtest.Open(b)
	u, err := store.CreateUser(ctx, storage.NewUser{Email: "bench@example.com", Name: "Bench", PasswordHash: "x"})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		if _, err := store.CreateVehicle(ctx, storage.NewVehicle{UserID: u.ID, Make: "Toyota", Model: "Corolla", Year: 2020,
			VIN: "1HGCM8263300" + string(rune('A'+i)) + "0000"[:4], LicensePlate: "AB-1"}); err != nil {
			b.Fatal(err)
		}
	}
	var server gen.StrictServerInterface = impl.New(impl.Deps{Store: store})
	if mode != "uncached" {
		addr := os.Getenv("TEST_VALKEY_ADDR")
		if addr == "" {
			addr = valkey.DefaultAddr
		}
		probe := valkeytest.Open(b)
		c, err := valkey.OpenCache(ctx, valkey.Config{Addrs: []string{addr}, KeyPrefix: probe.KeyPrefix()}, valkey.CacheOptions{RemoteOnly: mode == "valkey"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		server = impl.NewCached(server, store, c, nil, impl.DefaultCacheTTLs(), nil)
	}
	w := &discard{h: http.Header{}}
	run := func() {
		clear(w.h)
		if err := call(ctx, server)(w); err != nil {
			b.Fatal(err)
		}
	}
	run() // fill
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		run()
	}
}

func BenchmarkCachedGetUser(b *testing.B) {
	for _, mode := range []string{"uncached", "valkey", "local"} {
		b.Run(mode, func(b *testing.B) {
			benchCached(b, mode, func(ctx context.Context, s gen.StrictServerInterface) func(*discard) error {
				r, err := s.GetUser(ctx, gen.GetUserRequestObject{Id: 1})
				if err != nil {
					b.Fatal(err)
				}
				return func(w *discard) error {
					if err := r.VisitGetUserResponse(w); err != nil || w.Code != 200 {
						b.Fatalf("GetUser: %d %v", w.Code, err)
					}
					return nil
				}
			})
		})
	}
}

func BenchmarkCachedListVehicles(b *testing.B) {
	for _, mode := range []string{"uncached", "valkey", "local"} {
		b.Run(mode, func(b *testing.B) {
			benchCached(b, mode, func(ctx context.Context, s gen.StrictServerInterface) func(*discard) error {
				r, err := s.ListVehicles(ctx, gen.ListVehiclesRequestObject{})
				if err != nil {
					b.Fatal(err)
				}
				return func(w *discard) error {
					if err := r.VisitListVehiclesResponse(w); err != nil || w.Code != 200 {
						b.Fatalf("ListVehicles: %d %v", w.Code, err)
					}
					return nil
				}
			})
		})
	}
}
