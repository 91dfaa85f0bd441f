package postgres

import (
	"context"
	"time"

	pgdb "github.com/motorpool/motorpool/sqlc/postgres"
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

// ApplyUserCreated implements storage.UserProjection. Under READ COMMITTED a creation that
// checked for the tombstone before a concurrent deletion committed would insert after it, and
// the deletion, finding no row yet, would leave the user known; the per-user advisory lock
// (LockUserProjection) that both take first makes one wait for the other's commit, and the
// check that follows, a statement of its own, sees it.
func (s *Store) ApplyUserCreated(ctx context.Context, id int64) error {
	const op = "apply user created"
	return s.inTx(ctx, op, func(q *txn) error {
		if err := q.LockUserProjection(ctx, id); err != nil {
			return translate(op, err)
		}
		if err := q.ApplyKnownUser(ctx, id); err != nil {
			return translate(op, err)
		}
		return nil
	})
}

// ApplyUserDeleted implements storage.UserProjection. After the per-user advisory lock (see
// ApplyUserCreated) and the tombstone, it locks the known_users row as DeleteUser does
// (LockUserForDelete), so that a vehicle being created for the user either committed before
// (and is deleted here, with its event) or fails its foreign-key check once this commits.
func (s *Store) ApplyUserDeleted(ctx context.Context, id int64) error {
	const op = "apply user deleted"
	return s.inTx(ctx, op, func(q *txn) error {
		if err := q.LockUserProjection(ctx, id); err != nil {
			return translate(op, err)
		}
		if err := q.InsertDeletedUser(ctx, id); err != nil {
			return translate(op, err)
		}
		if err := q.LockUserForDelete(ctx, id); err != nil {
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
func recordVehiclesDeleted(ctx context.Context, q *txn, vehicles []pgdb.Vehicle, at time.Time) error {
	if len(vehicles) == 0 {
		return nil
	}
	evs, err := storage.VehiclesDeletedEvents(revised(vehicles), at)
	if err != nil {
		return err
	}
	return record(ctx, q, evs...)
}
