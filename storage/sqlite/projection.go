package sqlite

import (
	"context"
	"time"

	sqlitedb "github.com/motorpool/motorpool/sqlc/sqlite"
	"github.com/motorpool/motorpool/storage"
)

var _ storage.UserProjection = (*Store)(nil)

// KnownUser implements storage.UserProjection.
func (s *Store) KnownUser(ctx context.Context, id int64) (bool, error) {
	known, err := s.q.KnownUserExists(ctx, id)
	if err != nil {
		return false, translate("known user", err)
	}
	return known, nil
}

// UserDeleted implements storage.UserProjection.
func (s *Store) UserDeleted(ctx context.Context, id int64) (bool, error) {
	deleted, err := s.q.DeletedUserExists(ctx, id)
	if err != nil {
		return false, translate("user deleted", err)
	}
	return deleted, nil
}

// ApplyUserCreated implements storage.UserProjection. Its transaction holds SQLite's one write
// lock from BEGIN IMMEDIATE on (see inTx), so the tombstone check and the insert cannot
// interleave with a deletion's.
func (s *Store) ApplyUserCreated(ctx context.Context, id int64) error {
	const op = "apply user created"
	return s.inTx(ctx, op, func(q *txn) error {
		if err := q.ApplyKnownUser(ctx, id); err != nil {
			return translate(op, err)
		}
		return nil
	})
}

// ApplyUserDeleted implements storage.UserProjection. Under the write lock no vehicle can be
// created for the user meanwhile: one created before is deleted here with its event, and one
// created after fails its foreign-key check.
func (s *Store) ApplyUserDeleted(ctx context.Context, id int64) error {
	const op = "apply user deleted"
	return s.inTx(ctx, op, func(q *txn) error {
		if err := q.InsertDeletedUser(ctx, id); err != nil {
			return translate(op, err)
		}
		vehicles, err := q.DeleteVehiclesOfUser(ctx, id)
		if err != nil {
			return translate("apply user deleted: delete vehicles", err)
		}
		if err := q.DeleteKnownUser(ctx, id); err != nil {
			return translate(op, err)
		}
		return recordVehiclesDeleted(ctx, q, vehicles, storage.Now())
	})
}

// recordVehiclesDeleted records a VEHICLE_DELETED for each vehicle, as recordUserDeleted does
// but for the USER_DELETED, which is the users domain's to record. None records nothing, so
// that a deletion applied again calls no observer.
func recordVehiclesDeleted(ctx context.Context, q *txn, vehicles []sqlitedb.Vehicle, at time.Time) error {
	if len(vehicles) == 0 {
		return nil
	}
	evs, err := storage.VehiclesDeletedEvents(revised(vehicles), at)
	if err != nil {
		return err
	}
	return record(ctx, q, evs...)
}
