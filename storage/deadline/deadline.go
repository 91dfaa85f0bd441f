// Package deadline bounds every call to a storage.Store: each gets a context that ends after a
// fixed timeout (DB_QUERY_TIMEOUT) or with the caller's, whichever comes first, so that a
// database that stops answering (a network partition holding packets) costs a request the
// timeout, not the partition's length. The backend answers a call whose deadline passed with
// storage.ErrUnavailable. Migrations do not go through here: they run on the backend itself,
// bounded only by the caller.
package deadline

import (
	"context"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// Store is a storage.Store whose calls are each bounded by a timeout.
type Store struct {
	next    storage.Store
	timeout time.Duration
}

var _ storage.Store = (*Store)(nil)

// Wrap bounds each call to next by timeout; a timeout of zero or less returns next unchanged.
func Wrap(next storage.Store, timeout time.Duration) storage.Store {
	if timeout <= 0 {
		return next
	}
	return &Store{next: next, timeout: timeout}
}

func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// CreateUser implements storage.Store.
func (s *Store) CreateUser(ctx context.Context, u storage.NewUser) (storage.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.next.CreateUser(ctx, u)
}

// GetUser implements storage.Store.
func (s *Store) GetUser(ctx context.Context, id int64) (storage.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.next.GetUser(ctx, id)
}

// GetUserByEmail implements storage.Store.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.next.GetUserByEmail(ctx, email)
}

// ListUsers implements storage.Store.
func (s *Store) ListUsers(ctx context.Context, p storage.Page) ([]storage.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.next.ListUsers(ctx, p)
}

// UpdateUser implements storage.Store.
func (s *Store) UpdateUser(ctx context.Context, id int64, u storage.UserUpdate) (storage.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.next.UpdateUser(ctx, id, u)
}

// SetPassword implements storage.Store.
func (s *Store) SetPassword(ctx context.Context, id int64, hash string, version int64) (storage.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.next.SetPassword(ctx, id, hash, version)
}

// DeleteUser implements storage.Store.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.next.DeleteUser(ctx, id)
}

// CreateVehicle implements storage.Store.
func (s *Store) CreateVehicle(ctx context.Context, v storage.NewVehicle) (storage.Vehicle, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.next.CreateVehicle(ctx, v)
}

// GetVehicle implements storage.Store.
func (s *Store) GetVehicle(ctx context.Context, id int64) (storage.Vehicle, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.next.GetVehicle(ctx, id)
}

// ListVehicles implements storage.Store.
func (s *Store) ListVehicles(ctx context.Context, f storage.VehicleFilter, p storage.Page) ([]storage.Vehicle, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.next.ListVehicles(ctx, f, p)
}

// UpdateVehicle implements storage.Store.
func (s *Store) UpdateVehicle(ctx context.Context, id int64, v storage.VehicleUpdate) (storage.Vehicle, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.next.UpdateVehicle(ctx, id, v)
}

// DeleteVehicle implements storage.Store.
func (s *Store) DeleteVehicle(ctx context.Context, id int64) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.next.DeleteVehicle(ctx, id)
}

// Ping implements storage.Store.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.next.Ping(ctx)
}

// Close implements storage.Store; it closes the wrapped store.
func (s *Store) Close() error { return s.next.Close() }
