package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/sqlite"
	"github.com/motorpool/motorpool/storage/sqlite/sqlitetest"
	"github.com/motorpool/motorpool/storage/storagetest"
)

// open opens and migrates a store at path and closes it when t ends.
func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestStore(t *testing.T) {
	storagetest.RunStore(t, func(t *testing.T) storage.Store {
		return open(t, filepath.Join(t.TempDir(), "motorpool.db"))
	})
}

func TestOutbox(t *testing.T) {
	storagetest.RunOutbox(t, func(t *testing.T) storagetest.OutboxStore {
		return open(t, filepath.Join(t.TempDir(), "motorpool.db"))
	}, storagetest.OutboxOptions{})
}

func TestUserProjection(t *testing.T) {
	storagetest.RunUserProjection(t, func(t *testing.T) storagetest.ProjectionStore {
		return open(t, filepath.Join(t.TempDir(), "motorpool.db"))
	})
}

func TestMigrateIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "motorpool.db")
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
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

func TestOpenCreatesParentDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing", "parent")
	path := filepath.Join(dir, "motorpool.db")
	open(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("parent dir: %v", err)
	}
	if perm := fi.Mode().Perm(); perm&0o027 != 0 {
		t.Errorf("parent dir mode = %v, want at most 0750", perm)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notADB := filepath.Join(dir, "not-a-db")
	if err := os.WriteFile(notADB, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", notADB, filepath.Join(blocker, "sub", "x.db"), filepath.Join(dir, "a?b.db")} {
		if s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "motorpool.db")
	ctx := t.Context()
	s, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	u, err := s.CreateUser(ctx, storage.NewUser{Email: "ada@example.com", Name: "Ada", PasswordHash: "h"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	color := "red"
	v, err := s.CreateVehicle(ctx, storage.NewVehicle{
		UserID: u.ID, Make: "Ford", Model: "T", Year: 1915, VIN: "VIN1", LicensePlate: "P1", Color: &color,
	})
	if err != nil {
		t.Fatalf("CreateVehicle: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	if n, err := s2.Migrate(ctx); err != nil || n != 0 {
		t.Fatalf("Migrate after reopen = %d, %v; want 0, nil", n, err)
	}
	gotU, err := s2.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if diff := cmp.Diff(u, gotU); diff != "" {
		t.Errorf("user after reopen (-want +got):\n%s", diff)
	}
	gotV, err := s2.GetVehicle(ctx, v.ID)
	if err != nil {
		t.Fatalf("GetVehicle: %v", err)
	}
	if diff := cmp.Diff(v, gotV); diff != "" {
		t.Errorf("vehicle after reopen (-want +got):\n%s", diff)
	}
}

// TestPragmas checks WAL mode and foreign keys both by their effects and on every connection of
// the pool: foreign_keys is per connection, and a connection without it would skip the cascade.
func TestPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "motorpool.db")
	s := open(t, path)
	ctx := t.Context()

	// foreign_keys: an unknown owner is refused.
	_, err := s.CreateVehicle(ctx, storage.NewVehicle{UserID: 12345, Make: "m", Model: "m", Year: 2000, VIN: "V", LicensePlate: "P"})
	var fe *storage.FieldError
	if !errors.As(err, &fe) || fe.Field != "userId" {
		t.Errorf("CreateVehicle with unknown owner: err = %v, want a userId reference error", err)
	}

	// journal_mode: WAL leaves its -wal file beside the database while it is open.
	if _, err := s.CreateUser(ctx, storage.NewUser{Email: "a@example.com", Name: "A", PasswordHash: "h"}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no WAL file: %v", err)
	}
	mode, fk := sqlite.Pragmas(t, s)
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	if fk != 1 {
		t.Errorf("foreign_keys = %d, want 1", fk)
	}
}

func TestStats(t *testing.T) {
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "x.db"), MaxOpenConns: 3})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	st := s.Stats()
	if st.MaxConns != 3 || st.OpenConns < 1 || st.InUse != 0 {
		t.Errorf("Stats = %+v, want MaxConns 3, OpenConns >= 1, InUse 0", st)
	}
}

// TestOutage holds the write lock from another connection: past a short busy timeout for Down,
// and with the default (10s) busy timeout for Stall, where the call's deadline must cut in.
func TestOutage(t *testing.T) {
	outage := func(busy time.Duration) func(t *testing.T) storagetest.Outage {
		return func(t *testing.T) storagetest.Outage {
			path := filepath.Join(t.TempDir(), "motorpool.db")
			s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, BusyTimeout: busy})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if _, err := s.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			return storagetest.Outage{Store: s, Bound: time.Second,
				Cut: func(t *testing.T) func() { return sqlitetest.HoldWriteLock(t, path) }}
		}
	}
	storagetest.RunOutage(t, outage(100*time.Millisecond), outage(0))
}
