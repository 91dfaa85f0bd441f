// Package split is the storage.Store of the two-database layout: the users domain's calls go
// to the users database, the vehicles domain's to the vehicles database, whose projection of
// the users (storage.UserProjection) is fed by the users domain's events. A process that
// serves one domain opens only that domain's database; the other's calls fail with
// ErrNotServed (its routes are not served, so no request makes them).
package split

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// ErrNotServed is the error of a call of a domain whose database this process does not open.
var ErrNotServed = errors.New("split: this process does not open that domain's database")

// Backoff bounds between two looks at the projection while a vehicle waits for its owner.
const (
	firstBackoff = 10 * time.Millisecond
	maxBackoff   = 200 * time.Millisecond
)

// Config is what New splits.
type Config struct {
	Users    storage.Store          // the users database; nil when the users domain is not served
	Vehicles storage.Store          // the vehicles database; nil when the vehicles domain is not served
	Owners   storage.UserProjection // the vehicles database's projection of the users; set with Vehicles
	// OwnerWait is how long CreateVehicle and UpdateVehicle wait for an owner the projection
	// does not know yet (created a moment ago on the users database, whose USER_CREATED is on
	// its way) before answering ErrReference; 0 answers at once.
	OwnerWait time.Duration
	// After is the clock of the waits (time.After when nil); tests give one that does not sleep.
	After func(time.Duration) <-chan time.Time
}

// Store is a storage.Store on two databases. It is safe for concurrent use.
type Store struct{ cfg Config }

var (
	_ storage.Store          = (*Store)(nil)
	_ storage.UserProjection = (*Store)(nil)
)

// New returns the split store. With both domains in one process, the users domain's creations
// and deletions are applied to the projection as soon as they commit, so that this process
// reads its own writes as on one database; their events apply them again (idempotently),
// which covers a crash in between and every other process.
func New(cfg Config) *Store {
	if cfg.After == nil {
		cfg.After = time.After
	}
	return &Store{cfg: cfg}
}

func (s *Store) users() (storage.Store, error) {
	if s.cfg.Users == nil {
		return nil, fmt.Errorf("users domain: %w", ErrNotServed)
	}
	return s.cfg.Users, nil
}

func (s *Store) vehicles() (storage.Store, error) {
	if s.cfg.Vehicles == nil || s.cfg.Owners == nil {
		return nil, fmt.Errorf("vehicles domain: %w", ErrNotServed)
	}
	return s.cfg.Vehicles, nil
}

// CreateUser implements storage.Store.
func (s *Store) CreateUser(ctx context.Context, u storage.NewUser) (storage.User, error) {
	us, err := s.users()
	if err != nil {
		return storage.User{}, err
	}
	created, err := us.CreateUser(ctx, u)
	if err == nil && s.cfg.Owners != nil {
		// Best effort: the user's USER_CREATED applies it otherwise.
		_ = s.cfg.Owners.ApplyUserCreated(ctx, created.ID)
	}
	return created, err
}

// GetUser implements storage.Store.
func (s *Store) GetUser(ctx context.Context, id int64) (storage.User, error) {
	us, err := s.users()
	if err != nil {
		return storage.User{}, err
	}
	return us.GetUser(ctx, id)
}

// GetUserByEmail implements storage.Store.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	us, err := s.users()
	if err != nil {
		return storage.User{}, err
	}
	return us.GetUserByEmail(ctx, email)
}

// ListUsers implements storage.Store.
func (s *Store) ListUsers(ctx context.Context, p storage.Page) ([]storage.User, error) {
	us, err := s.users()
	if err != nil {
		return nil, err
	}
	return us.ListUsers(ctx, p)
}

// UpdateUser implements storage.Store.
func (s *Store) UpdateUser(ctx context.Context, id int64, u storage.UserUpdate) (storage.User, error) {
	us, err := s.users()
	if err != nil {
		return storage.User{}, err
	}
	return us.UpdateUser(ctx, id, u)
}

// SetPassword implements storage.Store.
func (s *Store) SetPassword(ctx context.Context, id int64, hash string, version int64) (storage.User, error) {
	us, err := s.users()
	if err != nil {
		return storage.User{}, err
	}
	return us.SetPassword(ctx, id, hash, version)
}

// DeleteUser implements storage.Store. The user's vehicles, in the other database, are deleted
// by the projection when the user's USER_DELETED reaches it (at once, best effort, when this
// process serves both domains).
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	us, err := s.users()
	if err != nil {
		return err
	}
	if err := us.DeleteUser(ctx, id); err != nil {
		return err
	}
	if s.cfg.Owners != nil {
		_ = s.cfg.Owners.ApplyUserDeleted(ctx, id)
	}
	return nil
}

// Ping implements storage.Store: every database this process opens must answer.
func (s *Store) Ping(ctx context.Context) error {
	for _, db := range []storage.Store{s.cfg.Users, s.cfg.Vehicles} {
		if db != nil {
			if err := db.Ping(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close implements storage.Store: it closes both databases.
func (s *Store) Close() error {
	var errs []error
	for _, db := range []storage.Store{s.cfg.Users, s.cfg.Vehicles} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// KnownUser implements storage.UserProjection.
func (s *Store) KnownUser(ctx context.Context, id int64) (bool, error) {
	if _, err := s.vehicles(); err != nil {
		return false, err
	}
	return s.cfg.Owners.KnownUser(ctx, id)
}

// UserDeleted implements storage.UserProjection.
func (s *Store) UserDeleted(ctx context.Context, id int64) (bool, error) {
	if _, err := s.vehicles(); err != nil {
		return false, err
	}
	return s.cfg.Owners.UserDeleted(ctx, id)
}

// ApplyUserCreated implements storage.UserProjection.
func (s *Store) ApplyUserCreated(ctx context.Context, id int64) error {
	if _, err := s.vehicles(); err != nil {
		return err
	}
	return s.cfg.Owners.ApplyUserCreated(ctx, id)
}

// ApplyUserDeleted implements storage.UserProjection.
func (s *Store) ApplyUserDeleted(ctx context.Context, id int64) error {
	if _, err := s.vehicles(); err != nil {
		return err
	}
	return s.cfg.Owners.ApplyUserDeleted(ctx, id)
}
