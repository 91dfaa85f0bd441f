// Package sqlite is the SQLite backend of storage.Store: modernc.org/sqlite (pure Go) through
// database/sql, running the queries sqlc generated into sqlc/sqlite, with the schema migrated by
// goose. It is the zero-configuration default.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/motorpool/motorpool/db"
	"github.com/motorpool/motorpool/events"
	sqlitedb "github.com/motorpool/motorpool/sqlc/sqlite"
	"github.com/motorpool/motorpool/storage"
)

// DefaultBusyTimeout is how long a write waits for another connection's write lock when
// Config.BusyTimeout is zero; past it the call fails with storage.ErrUnavailable.
const DefaultBusyTimeout = 10 * time.Second

// Config configures Open.
type Config struct {
	Path         string        // the database file; its parent directory is created if missing
	MaxOpenConns int           // max(4, GOMAXPROCS) when zero
	BusyTimeout  time.Duration // DefaultBusyTimeout when zero; a call's deadline cuts it short
}

// Store is a storage.Store on SQLite. It is safe for concurrent use.
type Store struct {
	db        *sql.DB
	q         *sqlitedb.Queries
	committed storage.Committed // nil: nobody observes
}

var _ storage.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at cfg.Path, in WAL mode with foreign keys
// enforced, and checks that it can be read.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	if strings.ContainsAny(cfg.Path, "?#") {
		// The driver would take the rest of the path for DSN parameters.
		return nil, fmt.Errorf("sqlite: open %s: path must not contain '?' or '#'", cfg.Path)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := privateFile(cfg.Path); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	q := url.Values{}
	busy := cfg.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", max(1, busy.Milliseconds())))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// BEGIN IMMEDIATE takes the write lock up front, where busy_timeout applies; a deferred
	// transaction that upgrades later fails at once with SQLITE_BUSY.
	q.Set("_txlock", "immediate")
	// Write times in SQLite's own text form with the offset, which the driver parses back.
	q.Set("_time_format", "sqlite")
	sqlDB, err := sql.Open("sqlite", cfg.Path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	n := cfg.MaxOpenConns
	if n <= 0 {
		n = max(4, runtime.GOMAXPROCS(0))
	}
	sqlDB.SetMaxOpenConns(n)
	// Keep every connection: opening one re-runs the pragmas.
	sqlDB.SetMaxIdleConns(n)
	// The pragmas run only when the first connection opens, so read something to surface a
	// bad path or a file that is not a database here rather than on the first request.
	var mode string
	if err := sqlDB.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	return &Store{db: sqlDB, q: sqlitedb.New(sqlDB)}, nil
}

// privateFile creates the database file 0600 before SQLite would create it 0644 less the
// umask: it holds password hashes. SQLite gives the -wal and -shm files the database file's
// mode, so they follow. A file that exists loses only what others may do with it.
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, os.ErrExist) {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 && fi.Mode().IsRegular() {
		return os.Chmod(path, perm&^0o007)
	}
	return nil
}

// Migrate applies the pending migrations and returns how many it applied.
func (s *Store) Migrate(ctx context.Context) (applied int, err error) {
	p, err := goose.NewProvider(goose.DialectSQLite3, s.db, db.SQLiteMigrations(),
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(rekeyEmails()),
	)
	if err != nil {
		return 0, fmt.Errorf("sqlite: migrate: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("sqlite: migrate: %w", err)
	}
	return len(res), nil
}

// rekeyEmails is the Go migration that keys every user under the current NormalizeEmail (see
// db.RekeyEmails); going down leaves the keys as they are.
func rekeyEmails() *goose.Migration {
	bind := func(n int) string { return fmt.Sprintf("?%d", n) }
	return goose.NewGoMigration(db.RekeyEmailsVersion, &goose.GoFunc{RunTx: db.RekeyEmails(storage.NormalizeEmail, bind)}, nil)
}

// Stats reports the connection pool's state.
func (s *Store) Stats() storage.PoolStats {
	st := s.db.Stats()
	return storage.PoolStats{
		MaxConns:     st.MaxOpenConnections,
		OpenConns:    st.OpenConnections,
		InUse:        st.InUse,
		Idle:         st.Idle,
		WaitCount:    st.WaitCount,
		WaitDuration: st.WaitDuration,
	}
}

// Ping implements storage.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return translate("ping", err)
	}
	return nil
}

// Close implements storage.Store.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// CreateUser implements storage.Store. Like every write, it runs in a transaction that records
// its event.
func (s *Store) CreateUser(ctx context.Context, u storage.NewUser) (storage.User, error) {
	role := u.Role
	if role == "" {
		role = storage.RoleUser
	}
	var row sqlitedb.User
	err := s.inTx(ctx, "create user", func(q *txn) error {
		var err error
		row, err = q.CreateUser(ctx, sqlitedb.CreateUserParams{
			Email:           u.Email,
			EmailNormalized: storage.NormalizeEmail(u.Email),
			Name:            u.Name,
			Role:            string(role),
			PasswordHash:    u.PasswordHash,
			CreatedAt:       storage.Now(),
		})
		if err != nil {
			return translate("create user", err)
		}
		// On one database the users domain keeps the vehicles domain's projection itself.
		if err := q.InsertKnownUser(ctx, row.ID); err != nil {
			return translate("create user", err)
		}
		return recordUser(ctx, q, events.UserCreated, row, "", row.Revision, row.CreatedAt)
	})
	if err != nil {
		return storage.User{}, err
	}
	return toUser(row), nil
}

// GetUser implements storage.Store.
func (s *Store) GetUser(ctx context.Context, id int64) (storage.User, error) {
	row, err := s.q.GetUser(ctx, id)
	if err != nil {
		return storage.User{}, translate("get user", err)
	}
	return toUser(row), nil
}

// GetUserByEmail implements storage.Store.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	row, err := s.q.GetUserByEmailNormalized(ctx, storage.NormalizeEmail(email))
	if err != nil {
		return storage.User{}, translate("get user by email", err)
	}
	return toUser(row), nil
}

// ListUsers implements storage.Store.
func (s *Store) ListUsers(ctx context.Context, p storage.Page) ([]storage.User, error) {
	if p.Limit <= 0 {
		return nil, fmt.Errorf("list users: page limit %d is not positive", p.Limit)
	}
	rows, err := s.q.ListUsers(ctx, sqlitedb.ListUsersParams{AfterID: p.AfterID, MaxRows: int64(p.Limit)})
	if err != nil {
		return nil, translate("list users", err)
	}
	users := make([]storage.User, 0, len(rows))
	for _, r := range rows {
		users = append(users, toUser(r))
	}
	return users, nil
}

// UpdateUser implements storage.Store. A change of role away from admin checks for the last
// admin first (see checkLastAdmin).
func (s *Store) UpdateUser(ctx context.Context, id int64, u storage.UserUpdate) (storage.User, error) {
	params := sqlitedb.UpdateUserParams{
		ID:              id,
		Email:           u.Email,
		EmailNormalized: storage.NormalizeEmail(u.Email),
		Name:            u.Name,
		PasswordHash:    u.PasswordHash,
		Role:            (*string)(u.Role),
		UpdatedAt:       storage.Now(),
	}
	demotes := u.Role != nil && *u.Role != storage.RoleAdmin
	var row sqlitedb.User
	err := s.inTx(ctx, "update user", func(q *txn) error {
		if demotes {
			if err := checkLastAdmin(ctx, q, id); err != nil {
				return err
			}
		}
		previous, err := q.GetUserEmail(ctx, id)
		if err != nil {
			return translate("update user", err)
		}
		if row, err = q.UpdateUser(ctx, params); err != nil {
			return translate("update user", err)
		}
		return recordUser(ctx, q, events.UserUpdated, row, previous, row.Revision, row.UpdatedAt)
	})
	if err != nil {
		return storage.User{}, err
	}
	return toUser(row), nil
}

// SetPassword implements storage.Store. The version is compared in the UPDATE itself, and
// SQLite runs one write at a time, so of two calls with one version only the first succeeds.
func (s *Store) SetPassword(ctx context.Context, id int64, hash string, version int64) (storage.User, error) {
	var row sqlitedb.User
	err := s.inTx(ctx, "set password", func(q *txn) error {
		var err error
		row, err = q.SetPassword(ctx, sqlitedb.SetPasswordParams{
			ID:              id,
			PasswordHash:    hash,
			PasswordVersion: version,
			UpdatedAt:       storage.Now(),
		})
		if errors.Is(err, sql.ErrNoRows) {
			return err // told apart below
		} else if err != nil {
			return translate("set password", err)
		}
		return recordUser(ctx, q, events.UserUpdated, row, row.Email, row.Revision, row.UpdatedAt)
	})
	if err == nil {
		return toUser(row), nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return storage.User{}, err
	}
	// No row: either there is no such user or the version moved on.
	if _, err := s.q.GetUser(ctx, id); err != nil {
		return storage.User{}, translate("set password", err)
	}
	return storage.User{}, storage.ErrStale
}

// DeleteUser implements storage.Store. It runs in a transaction that checks for the last admin
// first (see checkLastAdmin) and deletes the user's vehicles itself, before the user and their
// known_users row, to record an event for each.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	return s.inTx(ctx, "delete user", func(q *txn) error {
		if err := checkLastAdmin(ctx, q, id); err != nil {
			return err
		}
		vehicles, err := q.DeleteVehiclesOfUser(ctx, id)
		if err != nil {
			return translate("delete user's vehicles", err)
		}
		user, err := q.DeleteUser(ctx, id)
		if err != nil {
			return translate("delete user", err)
		}
		if err := q.DeleteKnownUser(ctx, id); err != nil {
			return translate("delete user", err)
		}
		return recordUserDeleted(ctx, q, user, vehicles, storage.Now())
	})
}

// checkLastAdmin returns ErrNotFound if there is no user id and ErrLastAdmin if they are the
// only admin. It must run in a transaction from inTx: BEGIN IMMEDIATE holds SQLite's single
// write lock from before this read until the change is committed, so no other demotion or
// deletion can slip in between.
func checkLastAdmin(ctx context.Context, q *txn, id int64) error {
	rows, err := q.GetUserAndAdmins(ctx, id)
	if err != nil {
		return translate("read admins", err)
	}
	roles := make(map[int64]storage.Role, len(rows))
	for _, r := range rows {
		roles[r.ID] = storage.Role(r.Role)
	}
	return storage.CheckLastAdmin(id, roles)
}

// inTx runs fn in a transaction and commits it if fn returns nil, or rolls it back and returns
// fn's error unchanged (fn translates its own errors). Once committed, the events fn recorded go to
// the commit observer (see Observe). The DSN's _txlock=immediate makes BeginTx
// issue BEGIN IMMEDIATE, which takes the write lock at once (waiting up to busy_timeout).
func (s *Store) inTx(ctx context.Context, op string, fn func(q *txn) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return translate(op, err)
	}
	// Rollback after Commit is a no-op.
	defer func() { _ = tx.Rollback() }()
	q := &txn{Queries: s.q.WithTx(tx)}
	if err := fn(q); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return translate(op, err)
	}
	if s.committed != nil && len(q.recorded) > 0 {
		s.committed(ctx, q.recorded)
	}
	return nil
}

func toUser(r sqlitedb.User) storage.User {
	return storage.User{
		ID:              r.ID,
		Email:           r.Email,
		Name:            r.Name,
		Role:            storage.Role(r.Role),
		PasswordHash:    r.PasswordHash,
		PasswordVersion: r.PasswordVersion,
		// The driver parses "+00:00" into time.Local when Local is UTC, a fixed zone otherwise.
		CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(),
	}
}
