package postgres_test

import (
	"database/sql"
	"fmt"
	"io/fs"
	"slices"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the legacy schema
	"github.com/pressly/goose/v3"

	"github.com/motorpool/motorpool/db"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/postgres"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/storagetest"
)

// A database written before emails were case-folded is re-keyed by the migration, so no user
// stored then becomes unfindable.
func TestMigrateRekeysEmails(t *testing.T) {
	url := pgtest.NewDatabase(t)
	storagetest.RunEmailRekey(t, func(t *testing.T, rows []storagetest.LegacyUser) {
		raw, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		p, err := goose.NewProvider(goose.DialectPostgres, raw, db.PostgresMigrations(), goose.WithDisableGlobalRegistry(true))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.UpTo(t.Context(), db.RekeyEmailsVersion-1); err != nil {
			t.Fatal(err)
		}
		now := storage.Now()
		for _, r := range rows {
			if _, err := raw.ExecContext(t.Context(), `INSERT INTO users (email, email_normalized, name, role, password_hash, created_at, updated_at)
VALUES ($1, $2, 'Legacy', 'user', 'h', $3, $3)`, r.Email, r.Key, now); err != nil {
				t.Fatal(err)
			}
		}
	}, func(t *testing.T) storage.Store {
		s, err := postgres.Open(t.Context(), postgres.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		later, err := fs.Glob(db.PostgresMigrations(), "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		later = slices.DeleteFunc(later, func(name string) bool { return name < fmt.Sprintf("%05d", db.RekeyEmailsVersion) })
		if n, err := s.Migrate(t.Context()); err != nil || n != 1+len(later) {
			t.Fatalf("Migrate after the legacy schema = %d, %v; want the re-key and the %d after it", n, err, len(later))
		}
		return s
	})
}
