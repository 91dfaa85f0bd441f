package postgres_test

import (
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/motorpool/motorpool/db"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/postgres"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/storagetest"
)

func TestStore(t *testing.T) {
	storagetest.RunStore(t, func(t *testing.T) storage.Store { return pgtest.Open(t) })
}

func TestMigrateIdempotent(t *testing.T) {
	s, err := postgres.Open(t.Context(), postgres.Config{URL: pgtest.NewDatabase(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if n, err := s.Migrate(t.Context()); err != nil || n == 0 {
		t.Fatalf("first Migrate = %d, %v; want > 0 migrations applied", n, err)
	}
	if n, err := s.Migrate(t.Context()); err != nil || n != 0 {
		t.Fatalf("second Migrate = %d, %v; want 0, nil", n, err)
	}
}

// TestMigrateConcurrent starts several instances on one fresh database at once, as replicas of
// the service would: the advisory lock lets exactly one apply the migrations.
func TestMigrateConcurrent(t *testing.T) {
	url := pgtest.NewDatabase(t)
	const instances = 3
	var (
		wg      sync.WaitGroup
		applied [instances]int
		errs    [instances]error
	)
	for i := range instances {
		s, err := postgres.Open(t.Context(), postgres.Config{URL: url})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		wg.Go(func() { applied[i], errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	total := 0
	for i := range instances {
		if errs[i] != nil {
			t.Errorf("Migrate %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	files, err := fs.Glob(db.PostgresMigrations(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(files) + 1; total != want { // and the Go migration that re-keys emails
		t.Errorf("concurrent Migrate applied %d migrations in all (%v), want %d", total, applied, want)
	}
}

func TestOpenErrorHidesPassword(t *testing.T) {
	const secret = "s3cr3t-Pa55word"
	urls := []string{
		// Nothing listens on port 1.
		"postgres://motorpool:" + secret + "@127.0.0.1:1/motorpool?sslmode=disable",
		// Unparsable URLs (a bad port, an unknown parameter value).
		"postgres://motorpool:" + secret + "@127.0.0.1:notaport/motorpool",
		"postgres://motorpool:" + secret + "@127.0.0.1/motorpool?sslmode=sometimes",
		"host=127.0.0.1 port=1 user=motorpool password=" + secret + " sslmode=disable",
	}
	for _, u := range urls {
		s, err := postgres.Open(t.Context(), postgres.Config{URL: u, ConnectTimeout: 2 * time.Second})
		if err == nil {
			s.Close()
			t.Errorf("Open succeeded for a bad URL")
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
}

func TestOpenConfig(t *testing.T) {
	s, err := postgres.Open(t.Context(), postgres.Config{
		URL: pgtest.NewDatabase(t), MaxConns: 3, MinConns: 1, ConnectTimeout: 3 * time.Second,
		MaxConnLifetime: time.Minute, MaxConnIdleTime: time.Minute, HealthCheckPeriod: time.Minute,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	st := s.Stats()
	if st.MaxConns != 3 || st.OpenConns < 1 || st.InUse != 0 {
		t.Errorf("Stats = %+v, want MaxConns 3, OpenConns >= 1, InUse 0", st)
	}
}

// TestOutage takes the server away behind a proxy of the test's own (never the shared server):
// refused connections for Down, held packets for Stall.
func TestOutage(t *testing.T) {
	outage := func(cut func(p *pgtest.Proxy)) func(t *testing.T) storagetest.Outage {
		return func(t *testing.T) storagetest.Outage {
			s, p := pgtest.OpenBehindProxy(t, postgres.Config{ConnectTimeout: time.Second})
			return storagetest.Outage{Store: s, Bound: 2 * time.Second, Cut: func(t *testing.T) func() {
				cut(p)
				return func() {
					if err := p.Restore(); err != nil {
						t.Fatal(err)
					}
				}
			}}
		}
	}
	storagetest.RunOutage(t, outage((*pgtest.Proxy).Refuse), outage((*pgtest.Proxy).Hold))
}

func TestOutbox(t *testing.T) {
	storagetest.RunOutbox(t, func(t *testing.T) storagetest.OutboxStore { return pgtest.Open(t) },
		storagetest.OutboxOptions{SkipLocked: true})
}

func TestUserProjection(t *testing.T) {
	storagetest.RunUserProjection(t, func(t *testing.T) storagetest.ProjectionStore { return pgtest.Open(t) })
}
