package storage

import "context"

// UserProjection is the vehicles domain's view of the users domain: the users its vehicles may
// reference (a vehicle's owner must be known, and a user's deletion deletes their vehicles).
//
// On one database the users domain's own writes keep it, in their transactions: CreateUser
// makes the user known and DeleteUser forgets them, so the Apply methods are never needed. On
// a database per domain the vehicles database's projection is fed by the users domain's events
// (package projection), through ApplyUserCreated and ApplyUserDeleted. Either way
// CreateVehicle and UpdateVehicle answer *FieldError{ErrReference, "userId"} for an owner
// that is not known.
//
// Both Apply methods are idempotent and commute: user ids are never reused, so a deletion is
// final, and a USER_CREATED applied after (or concurrently with) the user's USER_DELETED, as
// a redelivery may be, changes nothing. Implementations are safe for concurrent use, also
// across processes sharing the database, and wrap ErrUnavailable as Store's methods do.
type UserProjection interface {
	// KnownUser reports whether user id is known: whether vehicles may reference them.
	KnownUser(ctx context.Context, id int64) (bool, error)
	// UserDeleted reports whether the deletion of user id was applied (ApplyUserDeleted): they
	// will never be known again. On one database, where DeleteUser keeps no record of the
	// deletion, it is false.
	UserDeleted(ctx context.Context, id int64) (bool, error)
	// ApplyUserCreated makes user id known, unless their deletion was applied already.
	ApplyUserCreated(ctx context.Context, id int64) error
	// ApplyUserDeleted forgets user id for good and deletes their vehicles in one
	// transaction, recording a VEHICLE_DELETED for each, as DeleteUser does: a vehicle being
	// created for the user concurrently either commits first (and is deleted with its event)
	// or fails with ErrReference. Applied again, it changes nothing and records nothing.
	ApplyUserDeleted(ctx context.Context, id int64) error
}

// Observed is a backend's store and projection with its commits observed (Observable).
type Observed interface {
	Store
	UserProjection
}
