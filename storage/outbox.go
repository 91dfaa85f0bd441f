package storage

import (
	"context"
	"time"

	"github.com/motorpool/motorpool/events"
)

// Outbox is where a Store's writes leave their events for a relay. Every successful write of a
// user or a vehicle records, in the write's own transaction, one event for each record it
// changed (a user's deletion one for each of their vehicles too, before the user's own); a
// write that fails records nothing. Implementations are safe for concurrent use, also across
// processes sharing the database, and wrap ErrUnavailable as Store's methods do.
type Outbox interface {
	// Relay claims up to max of the waiting events, the oldest first (in the order they were
	// recorded), and calls publish with them. If publish returns nil they are removed, and
	// Relay returns how many; if publish fails (its error is returned, wrapped), ctx ends, or
	// the removal cannot be committed, every one of them stays for a later call: an event is
	// delivered at least once, never lost. While one call holds events no concurrent call gets
	// any of them (on PostgreSQL the others take the next waiting events meanwhile; on SQLite
	// they wait, and so do writes, for the holder has the database's write lock: publish
	// should be quick and bounded by ctx). With nothing waiting it returns 0 without calling
	// publish. max must be positive. A stored event that does not decode (none that a Store
	// wrote) fails the call with an error naming its row, and stays: it is never skipped.
	Relay(ctx context.Context, max int, publish func(ctx context.Context, evs []events.Event) error) (int, error)
	// Backlog reports how many events are waiting and when the first of them (the one Relay
	// would hand out next) was recorded; the zero time when none is waiting.
	Backlog(ctx context.Context) (count int, oldest time.Time, err error)
}

// UserEvent is the event of type t that a write of u records, as u's seq-th event, at at.
// previousEmail is the email an update replaced (for UserUpdated; ignored otherwise).
func UserEvent(t events.Type, u User, previousEmail string, seq int64, at time.Time) (events.Event, error) {
	data := events.User{
		ID: u.ID, Email: u.Email, Name: u.Name, Role: string(u.Role),
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
	if t == events.UserUpdated {
		data.PreviousEmail = previousEmail
	}
	return events.New(t, u.ID, seq, at, data)
}

// VehicleEvent is the event of type t that a write of v records, as v's seq-th event, at at.
// previousUserID is the owner an update replaced (for VehicleUpdated; ignored otherwise).
func VehicleEvent(t events.Type, v Vehicle, previousUserID int64, seq int64, at time.Time) (events.Event, error) {
	data := events.Vehicle{
		ID: v.ID, UserID: v.UserID, Make: v.Make, Model: v.Model, Year: v.Year, VIN: v.VIN,
		LicensePlate: v.LicensePlate, Color: v.Color, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt,
	}
	if t == events.VehicleUpdated {
		data.PreviousUserID = previousUserID
	}
	return events.New(t, v.ID, seq, at, data)
}

// Revised is a record with its revision: the sequence number of the last event recorded for it.
type Revised[T any] struct {
	Record   T
	Revision int64
}

// UserDeletedEvents are the events of a user's deletion, numbered one past each deleted row's
// revision: a VEHICLE_DELETED for each of their vehicles, then the USER_DELETED.
func UserDeletedEvents(u Revised[User], vehicles []Revised[Vehicle], at time.Time) ([]events.Event, error) {
	evs, err := VehiclesDeletedEvents(vehicles, at)
	if err != nil {
		return nil, err
	}
	ev, err := UserEvent(events.UserDeleted, u.Record, "", u.Revision+1, at)
	if err != nil {
		return nil, err
	}
	return append(evs, ev), nil
}

// VehiclesDeletedEvents are the VEHICLE_DELETED events of vehicles' deletion, each numbered
// one past the deleted row's revision.
func VehiclesDeletedEvents(vehicles []Revised[Vehicle], at time.Time) ([]events.Event, error) {
	evs := make([]events.Event, 0, len(vehicles)+1) // room for a USER_DELETED
	for _, v := range vehicles {
		ev, err := VehicleEvent(events.VehicleDeleted, v.Record, 0, v.Revision+1, at)
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// Committed hears of a write once its transaction has committed: evs are exactly the events
// the write recorded in the outbox, in the order recorded (the ones a Relay hands out later).
// It runs on the writer's goroutine before the write returns, so that what it does (dropping
// cache entries) is done when the caller sees the result; it should be quick, and must not
// write through the same store. ctx is the write's, and may be about to end.
type Committed func(ctx context.Context, evs []events.Event)

// Observable is a backend whose committed writes can be observed.
type Observable interface {
	// Observe returns the store with fn called after every write that committed events (a
	// failed write, and a call that records nothing, calls nothing), the projection's
	// ApplyUserDeleted included. The returned store shares the receiver's connections: close
	// only one of them.
	Observe(fn Committed) Observed
}
