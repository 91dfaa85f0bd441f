package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/motorpool/motorpool/db"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/storagetest"
)

func TestMigrateKnownUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "motorpool.db")
	var p *goose.Provider
	storagetest.RunKnownUsersMigration(t, storagetest.KnownUsersMigration{
		Legacy: func(t *testing.T) func(string) {
			// As the store's connections do: foreign keys on, so that going down checks them.
			raw, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = raw.Close() })
			bind := func(n int) string { return fmt.Sprintf("?%d", n) }
			p, err = goose.NewProvider(goose.DialectSQLite3, raw, db.SQLiteMigrations(), goose.WithDisableGlobalRegistry(true),
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
		Open: func(t *testing.T) storagetest.ProjectionStore { return open(t, path) },
		Down: func(t *testing.T) error {
			_, err := p.DownTo(t.Context(), 4)
			return err
		},
	})
}
