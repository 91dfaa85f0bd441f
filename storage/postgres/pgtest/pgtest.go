// Package pgtest gives tests fresh PostgreSQL databases on the server at $TEST_DATABASE_URL.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/motorpool/motorpool/storage/postgres"
)

// DefaultURL is the server tests use when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// NewDatabase creates an empty database named motorpool_test_<random hex> on the server at
// $TEST_DATABASE_URL (DefaultURL when unset), returns a URL for it, and drops it when tb ends.
// When the server cannot be reached it skips tb, or fails it when $CI is set, so that CI never
// passes without having run the PostgreSQL tests.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, nil)
}

// newDatabase is NewDatabase; afterDrop, if not nil, runs on the server's connection once the
// database is dropped.
func newDatabase(tb testing.TB, afterDrop func(ctx context.Context, conn *pgx.Conn) error) string {
	tb.Helper()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = DefaultURL
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("pgtest: TEST_DATABASE_URL must be a postgres:// URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("pgtest: PostgreSQL at TEST_DATABASE_URL is unreachable: %v", err)
		}
		tb.Skipf("pgtest: skipping, PostgreSQL is unreachable (set TEST_DATABASE_URL to a server's URL): %v", err)
	}
	defer conn.Close(context.Background())

	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails
	name := "motorpool_test_" + hex.EncodeToString(b[:])
	// The name is ours and needs no quoting; CREATE DATABASE takes no parameters.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		// FORCE ends connections a failed test left open.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
			return
		}
		if afterDrop != nil {
			if err := afterDrop(ctx, conn); err != nil {
				tb.Errorf("pgtest: after dropping database %s: %v", name, err)
			}
		}
	})

	u.Path = "/" + name
	return u.String()
}

// Open returns a store on a new database from NewDatabase, migrated, and closes it when tb ends.
func Open(tb testing.TB) *postgres.Store {
	tb.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, postgres.Config{URL: NewDatabase(tb)})
	if err != nil {
		tb.Fatalf("pgtest: open: %v", err)
	}
	// Registered after NewDatabase's cleanup, so it runs before the database is dropped.
	tb.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		tb.Fatalf("pgtest: migrate: %v", err)
	}
	return s
}
