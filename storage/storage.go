// Package storage declares motorpool's domain types and the interfaces its backends implement,
// with their error contract. It imports only the standard library (and x/text for email
// normalisation, and events for the outbox's vocabulary); backends live in sub-packages and
// pass the conformance suite in storagetest.
package storage

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Errors every Store returns, wrapped or not; test with errors.Is.
var (
	// ErrNotFound: the record the call names does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique value (a user's email, a vehicle's VIN) is taken by another record.
	ErrConflict = errors.New("conflict")
	// ErrReference: the call refers to another record (a vehicle's owner) that does not exist.
	ErrReference = errors.New("referenced record does not exist")
	// ErrLastAdmin: the change would leave no admin (demoting or deleting the only one).
	ErrLastAdmin = errors.New("the last admin cannot be demoted or deleted")
	// ErrStale: the record changed since the caller read the version it names.
	ErrStale = errors.New("record changed since")
	// ErrUnavailable: the backend did not answer (connection refused or lost, the call's
	// deadline passed, the server shutting down, SQLite locked past its busy timeout). The call
	// may or may not have taken effect; the caller should retry later. It is never a bug.
	ErrUnavailable = errors.New("backend unavailable")
)

// FieldError ties ErrConflict or ErrReference to the field at fault, so the API can name it.
type FieldError struct {
	Err   error  // ErrConflict or ErrReference
	Field string // the API's field name: "email", "vin", "userId"
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Role is a user's role.
type Role string

// The roles a user can have.
const (
	RoleAdmin Role = "admin"
	RoleUser  Role = "user"
)

// User is a registered user. PasswordHash is an encoded argon2id hash; it never leaves the
// service. PasswordVersion starts at 1 and grows with every change of the password and with
// every change of the email (under NormalizeEmail), so that grants tied to both (reset
// tokens, mailed to an address) die with either.
type User struct {
	ID              int64
	Email           string // as the user typed it
	Name            string
	Role            Role
	PasswordHash    string
	PasswordVersion int64
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// NewUser is what CreateUser needs.
type NewUser struct {
	Email        string
	Name         string
	Role         Role // RoleUser when empty
	PasswordHash string
}

// UserUpdate replaces a user's email and name, the password hash when PasswordHash is not nil,
// and the role when Role is not nil. A new password or email bumps PasswordVersion (once).
type UserUpdate struct {
	Email        string
	Name         string
	PasswordHash *string
	Role         *Role
}

// Vehicle is a vehicle owned by one user.
type Vehicle struct {
	ID           int64
	UserID       int64
	Make         string
	Model        string
	Year         int32
	VIN          string
	LicensePlate string
	Color        *string // nil when unknown
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// NewVehicle is what CreateVehicle needs.
type NewVehicle struct {
	UserID       int64
	Make         string
	Model        string
	Year         int32
	VIN          string
	LicensePlate string
	Color        *string
}

// VehicleUpdate replaces every field of a vehicle; a nil UserID keeps the owner.
type VehicleUpdate struct {
	UserID       *int64
	Make         string
	Model        string
	Year         int32
	VIN          string
	LicensePlate string
	Color        *string
}

// Page selects one page of a list ordered by id: the first Limit records whose id is greater
// than AfterID (0 for the first page). Limit must be positive; backends reject anything else.
type Page struct {
	AfterID int64
	Limit   int
}

// VehicleFilter narrows ListVehicles; a nil UserID lists every vehicle.
type VehicleFilter struct {
	UserID *int64
}

// Store is the durable home of users and vehicles. Implementations are safe for concurrent use.
// Timestamps are UTC with microsecond precision; ids are never reused. Every method returns an
// error wrapping ErrUnavailable when the backend cannot answer, whatever the driver's cause, and
// honours ctx's deadline. Every write that succeeds records its events in the backend's Outbox,
// in the same transaction.
type Store interface {
	// CreateUser stores a new user. A user whose email equals another's under NormalizeEmail
	// gets a *FieldError{ErrConflict, "email"}.
	CreateUser(ctx context.Context, u NewUser) (User, error)
	// GetUser returns ErrNotFound if there is no user with that id.
	GetUser(ctx context.Context, id int64) (User, error)
	// GetUserByEmail finds a user by email, compared under NormalizeEmail; ErrNotFound if none.
	GetUserByEmail(ctx context.Context, email string) (User, error)
	// ListUsers returns one page of users in id order.
	ListUsers(ctx context.Context, p Page) ([]User, error)
	// UpdateUser returns ErrNotFound for an unknown id, *FieldError{ErrConflict, "email"}
	// when the new email belongs to another user, and ErrLastAdmin when it would demote the
	// only admin (checked atomically with the change, so two concurrent demotions of the last
	// two admins cannot both succeed).
	UpdateUser(ctx context.Context, id int64, u UserUpdate) (User, error)
	// SetPassword replaces the password hash of the user whose PasswordVersion is still
	// version, bumping the version; ErrNotFound for an unknown id, ErrStale when the version
	// has moved on.
	SetPassword(ctx context.Context, id int64, hash string, version int64) (User, error)
	// DeleteUser deletes a user and, in the same transaction, their vehicles; ErrNotFound if
	// there is no such user, ErrLastAdmin if they are the only admin (checked atomically).
	DeleteUser(ctx context.Context, id int64) error

	// CreateVehicle returns *FieldError{ErrConflict, "vin"} for a VIN in use and
	// *FieldError{ErrReference, "userId"} when the owner does not exist.
	CreateVehicle(ctx context.Context, v NewVehicle) (Vehicle, error)
	// GetVehicle returns ErrNotFound if there is no vehicle with that id.
	GetVehicle(ctx context.Context, id int64) (Vehicle, error)
	// ListVehicles returns one page of vehicles in id order.
	ListVehicles(ctx context.Context, f VehicleFilter, p Page) ([]Vehicle, error)
	// UpdateVehicle returns ErrNotFound for an unknown id, *FieldError{ErrConflict, "vin"} and
	// *FieldError{ErrReference, "userId"} as CreateVehicle does.
	UpdateVehicle(ctx context.Context, id int64, v VehicleUpdate) (Vehicle, error)
	// DeleteVehicle returns ErrNotFound if there is no vehicle with that id.
	DeleteVehicle(ctx context.Context, id int64) error

	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	// Close releases the backend's connections.
	Close() error
}

// NormalizeEmail is the form under which emails are compared and keyed (uniqueness, look-ups,
// login counters, reset grants): trimmed, NFKC-normalised, with invisible format characters
// (zero-width spaces and joiners, the BOM) removed, then fully case-folded (Unicode's
// CaseFolding, which strings.ToLower is not: ς, σ and Σ, or ß and SS, fold together) and
// NFKC-normalised again, so that look-alike spellings of one address collide and normalising
// twice changes nothing.
func NormalizeEmail(email string) string {
	s := norm.NFKC.String(strings.TrimSpace(email))
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
	// A Caser keeps state between calls, so each call gets its own.
	return strings.Map(foldCherokee, norm.NFKC.String(cases.Fold().String(s)))
}

// foldCherokee puts right what cases.Fold gets wrong: it swaps the case of Cherokee letters
// both ways, so folding twice undoes it, where CaseFolding.txt folds both cases to the upper.
func foldCherokee(r rune) rune {
	if (r >= 0xAB70 && r <= 0xABBF) || (r >= 0x13F8 && r <= 0x13FD) {
		return unicode.ToUpper(r)
	}
	return r
}

// Now is the clock backends stamp records with: UTC, truncated to the microsecond that both
// PostgreSQL and SQLite keep.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// PoolStats describes a backend's connection pool, for metrics.
type PoolStats struct {
	MaxConns     int           // the most connections the pool opens
	OpenConns    int           // connections open now
	InUse        int           // connections lent out now
	Idle         int           // connections idle now
	WaitCount    int64         // acquisitions that had to wait, since start
	WaitDuration time.Duration // total time spent waiting, since start
}

// CheckLastAdmin decides whether user id may stop being an admin (demotion or deletion), from
// the roles of that user and of every admin, read under the backend's lock: ErrNotFound if id
// is not among them, ErrLastAdmin if they are the only admin, else nil.
func CheckLastAdmin(id int64, roles map[int64]Role) error {
	role, found := roles[id]
	if !found {
		return ErrNotFound
	}
	if role != RoleAdmin {
		return nil
	}
	admins := 0
	for _, r := range roles {
		if r == RoleAdmin {
			admins++
		}
	}
	if admins == 1 {
		return ErrLastAdmin
	}
	return nil
}
