package postgres_test

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/motorpool/motorpool/db"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/postgres"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/storagetest"
)

func TestMigrateKnownUsers(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var p *goose.Provider
	storagetest.RunKnownUsersMigration(t, storagetest.KnownUsersMigration{
		Legacy: func(t *testing.T) func(string) {
			raw, err := sql.Open("pgx", url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = raw.Close() })
			bind := func(n int) string { return fmt.Sprintf("$%d", n) }
			p, err = goose.NewProvider(goose.DialectPostgres, raw, db.PostgresMigrations(), goose.WithDisableGlobalRegistry(true),
				goose.WithGoMigrations(goose.NewGoMigration(db.RekeyEmailsVersion, &goose.GoFunc{RunTx: db.RekeyEmails(storage.NormalizeEmail, bind)}, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(t.Context(), 4); err != nil {
				t.Fatal(err)
			}
			return func(q string) {
				if _, err := raw.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		},
		Open: func(t *testing.T) storagetest.ProjectionStore {
			s, err := postgres.Open(t.Context(), postgres.Config{URL: url})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if _, err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			return s
		},
		Down: func(t *testing.T) error {
			_, err := p.DownTo(t.Context(), 4)
			return err
		},
	})
}
