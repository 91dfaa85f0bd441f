package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/motorpool/motorpool/db"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/storagetest"
)

// A database written before emails were case-folded is re-keyed by the migration, so no user
// stored then becomes unfindable.
func TestMigrateRekeysEmails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "motorpool.db")
	storagetest.RunEmailRekey(t, func(t *testing.T, rows []storagetest.LegacyUser) {
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		p, err := goose.NewProvider(goose.DialectSQLite3, raw, db.SQLiteMigrations(), goose.WithDisableGlobalRegistry(true))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.UpTo(t.Context(), db.RekeyEmailsVersion-1); err != nil {
			t.Fatal(err)
		}
		now := storage.Now()
		for _, r := range rows {
			if _, err := raw.ExecContext(t.Context(), `INSERT INTO users (email, email_normalized, name, role, password_hash, created_at, updated_at)
VALUES (?, ?, 'Legacy', 'user', 'h', ?, ?)`, r.Email, r.Key, now, now); err != nil {
				t.Fatal(err)
			}
		}
	}, func(t *testing.T) storage.Store { return open(t, path) })
}
