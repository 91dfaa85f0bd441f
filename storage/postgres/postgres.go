// Package postgres is the PostgreSQL backend of storage.Store: a pgx connection pool running the
// queries sqlc generated into sqlc/postgres, with the schema migrated by goose.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/motorpool/motorpool/db"
	"github.com/motorpool/motorpool/events"
	pgdb "github.com/motorpool/motorpool/sqlc/postgres"
	"github.com/motorpool/motorpool/storage"
)

// defaultConnectTimeout bounds Open's first ping when Config.ConnectTimeout is zero, so that a
// server that does not answer fails start-up instead of hanging it.
const defaultConnectTimeout = 5 * time.Second

// Config configures Open. Zero values keep pgx's defaults (or those the URL sets).
type Config struct {
	URL               string // postgres://user:password@host:port/dbname?sslmode=...
	MaxConns          int32
	MinConns          int32
	ConnectTimeout    time.Duration // also bounds Open's ping; 5s when zero
	MaxConnLifetime   time.Duration
	MaxConnIdleTime   time.Duration
	HealthCheckPeriod time.Duration
	// DeadPeerTimeout is how soon a connection whose server stopped answering is dropped
	// (TCP keepalive and user timeout); 15s when zero.
	DeadPeerTimeout time.Duration
	// Tracer, when set, hears of every statement (tracing.Postgres: a span each).
	Tracer pgx.QueryTracer
}

// Store is a storage.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool      *pgxpool.Pool
	q         *pgdb.Queries
	committed storage.Committed // nil: nobody observes
}

var _ storage.Store = (*Store)(nil)

// Open creates a connection pool and checks that the server answers. Its errors never contain
// the password from the URL.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// pgx redacts the password from the connection string it quotes.
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	if cfg.MinConns > 0 {
		pc.MinConns = cfg.MinConns
	}
	if cfg.ConnectTimeout > 0 {
		pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	}
	if cfg.MaxConnLifetime > 0 {
		pc.MaxConnLifetime = cfg.MaxConnLifetime
	}
	if cfg.MaxConnIdleTime > 0 {
		pc.MaxConnIdleTime = cfg.MaxConnIdleTime
	}
	if cfg.HealthCheckPeriod > 0 {
		pc.HealthCheckPeriod = cfg.HealthCheckPeriod
	}
	deadPeer := cfg.DeadPeerTimeout
	if deadPeer <= 0 {
		deadPeer = defaultDeadPeerTimeout
	}
	pc.ConnConfig.DialFunc = dialer(deadPeer).DialContext
	pc.ConnConfig.Tracer = cfg.Tracer
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: create pool: %w", err)
	}
	timeout := cfg.ConnectTimeout
	if timeout <= 0 {
		timeout = defaultConnectTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	return &Store{pool: pool, q: pgdb.New(pool)}, nil
}

// Migrate applies the pending migrations and returns how many it applied. A PostgreSQL advisory
// lock serialises concurrent callers, so several instances may start at once.
func (s *Store) Migrate(ctx context.Context) (applied int, err error) {
	locker, err := lock.NewPostgresSessionLocker(
		// Poll every second (the default is 5s) for up to 5 minutes.
		lock.WithLockTimeout(1, 300),
	)
	if err != nil {
		return 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(s.pool)
	defer sqlDB.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, db.PostgresMigrations(),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(rekeyEmails()),
	)
	if err != nil {
		return 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "42501" { // insufficient_privilege
			return len(res), fmt.Errorf("postgres: migrate as %s: %w: %w", s.pool.Config().ConnConfig.User, ErrNotOwner, err)
		}
		return len(res), fmt.Errorf("postgres: migrate: %w", err)
	}
	return len(res), nil
}

// ErrNotOwner is Migrate's error when its role may not change the schema: with the roles of
// db/roles/postgres.sql an application's role may read goose's version table, so it starts on
// a schema that is up to date, but only the owner may migrate one that is not.
var ErrNotOwner = errors.New("this role may not change the schema; migrate as its owner")

// rekeyEmails is the Go migration that keys every user under the current NormalizeEmail (see
// db.RekeyEmails); going down leaves the keys as they are.
func rekeyEmails() *goose.Migration {
	bind := func(n int) string { return fmt.Sprintf("$%d", n) }
	return goose.NewGoMigration(db.RekeyEmailsVersion, &goose.GoFunc{RunTx: db.RekeyEmails(storage.NormalizeEmail, bind)}, nil)
}

// Stats reports the connection pool's state.
func (s *Store) Stats() storage.PoolStats {
	st := s.pool.Stat()
	return storage.PoolStats{
		MaxConns:     int(st.MaxConns()),
		OpenConns:    int(st.TotalConns()),
		InUse:        int(st.AcquiredConns()),
		Idle:         int(st.IdleConns()),
		WaitCount:    st.EmptyAcquireCount(),
		WaitDuration: st.EmptyAcquireWaitTime(),
	}
}

// Ping implements storage.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return translate("ping", err)
	}
	return nil
}

// Close implements storage.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// CreateUser implements storage.Store. Like every write, it records its event in its
// transaction.
func (s *Store) CreateUser(ctx context.Context, u storage.NewUser) (storage.User, error) {
	role := u.Role
	if role == "" {
		role = storage.RoleUser
	}
	var row pgdb.User
	err := s.inTx(ctx, "create user", func(q *txn) error {
		var err error
		row, err = q.CreateUser(ctx, pgdb.CreateUserParams{
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
	n, err := limit(p)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	rows, err := s.q.ListUsers(ctx, pgdb.ListUsersParams{AfterID: p.AfterID, MaxRows: n})
	if err != nil {
		return nil, translate("list users", err)
	}
	users := make([]storage.User, 0, len(rows))
	for _, r := range rows {
		users = append(users, toUser(r))
	}
	return users, nil
}

// UpdateUser implements storage.Store. A change of role away from admin first locks the user
// and every admin (see checkLastAdmin).
func (s *Store) UpdateUser(ctx context.Context, id int64, u storage.UserUpdate) (storage.User, error) {
	params := pgdb.UpdateUserParams{
		ID:              id,
		Email:           u.Email,
		EmailNormalized: storage.NormalizeEmail(u.Email),
		Name:            u.Name,
		PasswordHash:    u.PasswordHash,
		Role:            (*string)(u.Role),
		UpdatedAt:       storage.Now(),
	}
	demotes := u.Role != nil && *u.Role != storage.RoleAdmin
	var row pgdb.UpdateUserRow
	err := s.inTx(ctx, "update user", func(q *txn) error {
		if demotes {
			if err := checkLastAdmin(ctx, q, id); err != nil {
				return err
			}
		}
		var err error
		if row, err = q.UpdateUser(ctx, params); err != nil {
			return translate("update user", err)
		}
		return recordUser(ctx, q, events.UserUpdated, row.User, row.PreviousEmail, row.User.Revision, row.User.UpdatedAt)
	})
	if err != nil {
		return storage.User{}, err
	}
	return toUser(row.User), nil
}

// SetPassword implements storage.Store. The version is compared in the UPDATE itself, so of
// two concurrent calls with one version only the first succeeds: the second waits for its row
// lock and then re-reads the row, whose version has moved on.
func (s *Store) SetPassword(ctx context.Context, id int64, hash string, version int64) (storage.User, error) {
	var row pgdb.User
	err := s.inTx(ctx, "set password", func(q *txn) error {
		var err error
		row, err = q.SetPassword(ctx, pgdb.SetPasswordParams{
			ID:              id,
			PasswordHash:    hash,
			PasswordVersion: version,
			UpdatedAt:       storage.Now(),
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return err // told apart below
		} else if err != nil {
			return translate("set password", err)
		}
		return recordUser(ctx, q, events.UserUpdated, row, row.Email, row.Revision, row.UpdatedAt)
	})
	if err == nil {
		return toUser(row), nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return storage.User{}, err
	}
	// No row: either there is no such user or the version moved on.
	if _, err := s.q.GetUser(ctx, id); err != nil {
		return storage.User{}, translate("set password", err)
	}
	return storage.User{}, storage.ErrStale
}

// DeleteUser implements storage.Store. It runs in a transaction that first locks the user and
// every admin (see checkLastAdmin), then the user's known_users row against new vehicles
// (LockUserForDelete), and deletes the user's vehicles itself, before the user and that row,
// to record an event for each.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	return s.inTx(ctx, "delete user", func(q *txn) error {
		if err := checkLastAdmin(ctx, q, id); err != nil {
			return err
		}
		if err := q.LockUserForDelete(ctx, id); err != nil {
			return translate("delete user", err)
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

// checkLastAdmin locks user id and every admin row until the transaction q runs in ends, and
// returns ErrNotFound if there is no such user and ErrLastAdmin if they are the only admin.
// Every demotion and deletion takes these locks first, in id order, so they run one after
// another: the second waits for the first to commit and then counts the admins it left.
// (Under READ COMMITTED a locked row that changed meanwhile is re-read, and one that stopped
// being an admin drops out; a user promoted meanwhile may be missed, which only undercounts.)
func checkLastAdmin(ctx context.Context, q *txn, id int64) error {
	rows, err := q.LockUserAndAdmins(ctx, id)
	if err != nil {
		return translate("lock admins", err)
	}
	roles := make(map[int64]storage.Role, len(rows))
	for _, r := range rows {
		roles[r.ID] = storage.Role(r.Role)
	}
	return storage.CheckLastAdmin(id, roles)
}

// inTx runs fn in a transaction and commits it if fn returns nil, or rolls it back and returns
// fn's error unchanged (fn translates its own errors). Once committed, the events fn recorded go to
// the commit observer (see Observe).
func (s *Store) inTx(ctx context.Context, op string, fn func(q *txn) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return translate(op, err)
	}
	// Rollback after Commit is a no-op.
	defer func() { _ = tx.Rollback(ctx) }()
	q := &txn{Queries: s.q.WithTx(tx)}
	if err := fn(q); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return translate(op, err)
	}
	if s.committed != nil && len(q.recorded) > 0 {
		s.committed(ctx, q.recorded)
	}
	return nil
}

// limit converts a page size to the int32 that LIMIT takes.
func limit(p storage.Page) (int32, error) {
	if p.Limit <= 0 {
		return 0, fmt.Errorf("page limit %d is not positive", p.Limit)
	}
	return int32(min(p.Limit, math.MaxInt32)), nil
}

func toUser(r pgdb.User) storage.User {
	return storage.User{
		ID:              r.ID,
		Email:           r.Email,
		Name:            r.Name,
		Role:            storage.Role(r.Role),
		PasswordHash:    r.PasswordHash,
		PasswordVersion: r.PasswordVersion,
		// pgx returns timestamptz in the local zone.
		CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(),
	}
}
