package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/motorpool/motorpool/storage/memory"
	"github.com/motorpool/motorpool/storage/postgres"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/sqlite"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
)

// /readyz is public: with the database down its 503 says which backend is down and nothing
// of how to reach it (the driver's error names host, port, database and user); that detail
// goes to the log, at WARN.
func TestReadyzTellsOnlyWhichBackendIsDown(t *testing.T) {
	type downed struct {
		backend backend
		down    func()   // takes the database away
		secrets []string // what the driver's error says about reaching it
	}
	setups := map[string]func(t *testing.T) downed{
		"embedded": func(t *testing.T) downed {
			dir := t.TempDir()
			s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dir, "motorpool.db")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			state := memory.NewAuthState(nil)
			t.Cleanup(func() { _ = state.Close() })
			return downed{backend: backend{store: s, state: state}, down: func() { _ = s.Close() }, secrets: []string{dir, "database is closed"}}
		},
		"production": func(t *testing.T) downed {
			s, p := pgtest.OpenBehindProxy(t, postgres.Config{ConnectTimeout: time.Second})
			vc := valkeytest.Open(t)
			return downed{backend: backend{store: s, state: valkey.NewAuthState(vc), valkey: vc}, down: p.Refuse,
				secrets: []string{p.Addr(), "motorpool_test_", "user=", "connection refused"}}
		},
	}
	for name, setup := range setups {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := setup(t)
			s := newTestServer(t, d.backend)
			d.down()
			// Twice: the first ping may meet a pooled connection the outage broke, the second
			// dials and gets the connect error, which names the most.
			for range 2 {
				r, err := s.clientWith(t, "").GetReadyzWithResponse(context.Background())
				if err != nil || r.StatusCode() != http.StatusServiceUnavailable {
					t.Fatalf("readyz with the database down: %v %d %s", err, r.StatusCode(), r.Body)
				}
				var body struct {
					Status string
					Checks map[string]map[string]any
				}
				if err := json.Unmarshal(r.Body, &body); err != nil {
					t.Fatal(err)
				}
				if db := body.Checks["database"]; db["status"] != "unavailable" || len(db) != 1 {
					t.Errorf("readyz database check %v, want only its status, unavailable", db)
				}
				for _, secret := range d.secrets {
					if strings.Contains(string(r.Body), secret) {
						t.Errorf("readyz body tells strangers %q: %s", secret, r.Body)
					}
				}
			}
			var logged bool
			for _, line := range strings.Split(s.Logs.String(), "\n") {
				if strings.Contains(line, `"level":"WARN","msg":"readiness check failed"`) && strings.Contains(line, `"backend":"database"`) &&
					strings.Contains(line, d.secrets[len(d.secrets)-1]) {
					logged = true
				}
			}
			if !logged {
				t.Errorf("no WARN line with the cause for the operators:\n%s", s.Logs.String())
			}
		})
	}
}
