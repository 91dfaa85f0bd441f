// Package sqlitetest helps tests take an SQLite database away from the store using it.
package sqlitetest

import (
	"context"
	"database/sql"
	"testing"

	_ "modernc.org/sqlite" // the driver the store uses
)

// HoldWriteLock takes the write lock of the database at path on a connection of its own, as
// another process would, and returns what releases it (called at the end of tb if not
// before). Writers of other connections wait for it up to their busy timeout; readers do not
// (WAL mode).
func HoldWriteLock(tb testing.TB, path string) (release func()) {
	tb.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		tb.Fatal(err)
	}
	released := false
	release = func() {
		if released {
			return
		}
		released = true
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			tb.Errorf("release the write lock: %v", err)
		}
		_ = conn.Close()
		_ = db.Close()
	}
	tb.Cleanup(release)
	return release
}
