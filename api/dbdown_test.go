package api_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/motorpool/motorpool/client"
	"github.com/motorpool/motorpool/storage/deadline"
	"github.com/motorpool/motorpool/storage/postgres"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/sqlite"
	"github.com/motorpool/motorpool/storage/sqlite/sqlitetest"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
)

// dbOutage is a pairing whose database a test can take away.
type dbOutage struct {
	backend backend
	cut     func() (restore func()) // takes the database away; restore brings it back
	reads   bool                    // reads fail too (SQLite's readers do not wait for a writer)
}

// dbOutages opens each pairing with its database behind something the test controls, never
// the shared server itself, and every store call bounded by queryTimeout as main wires it.
// stall: PostgreSQL's packets are held (a partition) and SQLite's write lock is held with the
// default busy timeout, so only the call deadline ends the wait; otherwise PostgreSQL refuses
// connections (the server gone) and SQLite's lock outlasts a short busy timeout.
func dbOutages(stall bool, queryTimeout time.Duration) map[string]func(t *testing.T) dbOutage {
	outages := map[string]func(t *testing.T) dbOutage{
		"embedded": func(t *testing.T) dbOutage {
			path := filepath.Join(t.TempDir(), "motorpool.db")
			busy := 100 * time.Millisecond
			if stall {
				busy = 0 // the default, 10s
			}
			b := openEmbedded(t, sqlite.Config{Path: path, BusyTimeout: busy})
			b.store = deadline.Wrap(b.store, queryTimeout)
			return dbOutage{
				backend: b,
				cut:     func() func() { return sqlitetest.HoldWriteLock(t, path) },
			}
		},
		"production": func(t *testing.T) dbOutage {
			s, p := pgtest.OpenBehindProxy(t, postgres.Config{ConnectTimeout: time.Second})
			vc := valkeytest.Open(t)
			cut := p.Refuse
			if stall {
				cut = p.Hold
			}
			b := observed(t, backend{store: s, state: valkey.NewAuthState(vc), cache: openValkeyCache(t, vc.KeyPrefix(), nil), valkey: vc})
			b.store = deadline.Wrap(b.store, queryTimeout)
			return dbOutage{
				backend: b,
				cut: func() func() {
					cut()
					return func() {
						if err := p.Restore(); err != nil {
							t.Fatal(err)
						}
					}
				},
				reads: true,
			}
		},
	}
	if !stall {
		outages["production, server shut down"] = stoppedServer(queryTimeout)
	}
	return outages
}

// stoppedServer is the production pairing on a private PostgreSQL server that the outage shuts
// down (fast shutdown: its sessions end with 57P01, then connections are refused) and starts
// again.
func stoppedServer(queryTimeout time.Duration) func(t *testing.T) dbOutage {
	return func(t *testing.T) dbOutage {
		srv := pgtest.StartServer(t)
		s, err := postgres.Open(context.Background(), postgres.Config{URL: srv.CreateDatabase("motorpool"), ConnectTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if _, err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		vc := valkeytest.Open(t)
		b := observed(t, backend{store: s, state: valkey.NewAuthState(vc), cache: openValkeyCache(t, vc.KeyPrefix(), nil), valkey: vc})
		b.store = deadline.Wrap(b.store, queryTimeout)
		return dbOutage{
			backend: b,
			cut:     func() func() { srv.Stop(); return srv.Start },
			reads:   true,
		}
	}
}

// dbCall is one request a test makes while the database is away and again once it is back.
type dbCall struct {
	name   string
	read   bool // only reads: answered on a pairing whose reads survive the outage
	wantOK int  // the status once the database is back
	call   func(ctx context.Context) (*http.Response, error)
}

// dbCalls are requests that need the database: registration, vehicle and user writes,
// sign-in, and a read that misses the cache (user was never read, so user:{id} is not cached).
// doomed is deleted once the database is back.
func dbCalls(t *testing.T, s *testServer, user, doomed client.User) []dbCall {
	n := 0
	guest := s.clientWith(t, "")
	return []dbCall{
		{"update user", false, http.StatusOK, func(ctx context.Context) (*http.Response, error) {
			r, err := s.Client.UpdateUserWithResponse(ctx, user.Id, client.UpdateUserJSONRequestBody{Email: user.Email, Name: "Kept"})
			if err != nil {
				return nil, err
			}
			return r.HTTPResponse, nil
		}},
		{"delete user", false, http.StatusNoContent, func(ctx context.Context) (*http.Response, error) {
			r, err := s.Client.DeleteUserWithResponse(ctx, doomed.Id)
			if err != nil {
				return nil, err
			}
			return r.HTTPResponse, nil
		}},
		{"register", false, http.StatusCreated, func(ctx context.Context) (*http.Response, error) {
			n++
			r, err := guest.CreateUserWithResponse(ctx, client.CreateUserJSONRequestBody{Email: client.Email("new" + strconv.Itoa(n) + "@example.com"), Name: "New", Password: testPassword})
			if err != nil {
				return nil, err
			}
			return r.HTTPResponse, nil
		}},
		{"create vehicle", false, http.StatusCreated, func(ctx context.Context) (*http.Response, error) {
			n++
			r, err := s.Client.CreateVehicleWithResponse(ctx, client.CreateVehicleJSONRequestBody{UserId: &user.Id, Make: "Fiat", Model: "Panda", Year: 2019, Vin: vin(900 + n), LicensePlate: "FI-123"})
			if err != nil {
				return nil, err
			}
			return r.HTTPResponse, nil
		}},
		{"sign in", true, http.StatusOK, func(ctx context.Context) (*http.Response, error) {
			r, err := guest.LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: user.Email, Password: testPassword})
			if err != nil {
				return nil, err
			}
			return r.HTTPResponse, nil
		}},
		{"uncached read", true, http.StatusOK, func(ctx context.Context) (*http.Response, error) {
			r, err := s.Client.GetUserWithResponse(ctx, user.Id, nil)
			if err != nil {
				return nil, err
			}
			return r.HTTPResponse, nil
		}},
	}
}

// testDBAway takes the database away and checks every call that needs it answers 503
// problem+json with Retry-After within bound (never a 500, never a hang), that the outage is
// logged at WARN and never as a 5xx bug, and that once the database is back the same server
// answers as before, with no unavailable answer left in the cache.
func testDBAway(t *testing.T, o dbOutage, bound time.Duration) {
	s := newTestServer(t, o.backend)
	user := mustUser(t, s, "kept@example.com")
	doomed := mustUser(t, s, "doomed@example.com")
	mustVehicle(t, s, doomed.Id, 1)
	calls := dbCalls(t, s, user, doomed)
	restore := o.cut()
	for _, c := range calls {
		if c.read && !o.reads {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), bound+5*time.Second)
		start := time.Now()
		resp, err := c.call(ctx)
		took := time.Since(start)
		cancel()
		if err != nil {
			t.Errorf("%s with the database away: %v after %v", c.name, err, took)
			continue
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s with the database away: %d %s, want 503 problem+json", c.name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra <= 0 {
			t.Errorf("%s: Retry-After %q, want whole seconds", c.name, resp.Header.Get("Retry-After"))
		}
		if took > bound {
			t.Errorf("%s took %v with the database away, want at most %v", c.name, took, bound)
		}
		t.Logf("%s with the database away: %d in %v", c.name, resp.StatusCode, took)
	}
	// A reset request answers 202 whatever happens; its mail, sent in the background, fails
	// without being logged as a bug.
	if r, err := s.clientWith(t, "").RequestPasswordResetWithResponse(context.Background(), client.RequestPasswordResetJSONRequestBody{Email: user.Email}); err != nil || r.StatusCode() != http.StatusAccepted {
		t.Errorf("password reset with the database away: %v %d", err, r.StatusCode())
	}
	if err := s.Auth.WaitMail(context.Background()); err != nil {
		t.Fatal(err)
	}
	restore()
	for _, c := range calls {
		resp, err := c.call(context.Background())
		if err != nil || resp.StatusCode != c.wantOK {
			t.Errorf("%s once the database is back: %v %v, want %d", c.name, statusOf(resp), err, c.wantOK)
		}
	}
	logs := s.Logs.String()
	if !strings.Contains(logs, `"level":"WARN","msg":"request"`) {
		t.Errorf("no WARN request line for the 503s:\n%s", logs)
	}
	if strings.Contains(logs, `"status":500`) || strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("the outage was logged as a server bug:\n%s", logs)
	}
}

func statusOf(r *http.Response) any {
	if r == nil {
		return "no response"
	}
	return r.StatusCode
}

// TestDatabaseDownAnswers503: with the database gone (PostgreSQL refusing connections, SQLite
// locked past its busy timeout), requests that need it answer 503, promptly.
func TestDatabaseDownAnswers503(t *testing.T) {
	for name, open := range dbOutages(false, 5*time.Second) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testDBAway(t, open(t), 2*time.Second)
		})
	}
}

// TestDatabasePartitionAnswers503WithinDeadline: with the database's packets held (or its lock
// held longer than any busy timeout), nothing refuses the calls; the per-call deadline alone
// turns each wait into a 503 soon after it passes, and the pool serves again once the network
// is back, without a restart.
func TestDatabasePartitionAnswers503WithinDeadline(t *testing.T) {
	const queryTimeout = time.Second
	for name, open := range dbOutages(true, queryTimeout) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// Less than two deadlines: no request may wait on the database twice in a row.
			testDBAway(t, open(t), queryTimeout+800*time.Millisecond)
		})
	}
}

// TestSignInDuringOutageDoesNotLockOut: a sign-in the database could not decide is no guess.
// A user retrying through an outage more often than the lockout allows gets 503 each time
// (never the lockout's 429), and signs in at once when the database is back. (On the embedded
// pairing a sign-in only reads, and SQLite's readers do not wait for the held write lock: it
// is decided, so there is no outage to sign in through.)
func TestSignInDuringOutageDoesNotLockOut(t *testing.T) {
	outages := dbOutages(false, 5*time.Second)
	for _, name := range []string{"production", "production, server shut down"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := outages[name](t)
			s := newTestServer(t, o.backend)
			user := mustUser(t, s, "retrying@example.com")
			guest := s.clientWith(t, "")
			login := func() *client.LoginResponse {
				t.Helper()
				r, err := guest.LoginWithResponse(context.Background(), client.LoginJSONRequestBody{Email: user.Email, Password: testPassword})
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			restore := o.cut()
			for i := range 8 { // the lockout comes after 5 failures
				r := login()
				unavailable(t, "sign-in "+strconv.Itoa(i+1)+" with the database away", r.HTTPResponse, r.Body)
			}
			restore()
			if r := login(); r.StatusCode() != http.StatusOK {
				t.Errorf("sign-in once the database is back: %d %s, want 200", r.StatusCode(), r.Body)
			}
		})
	}
}
