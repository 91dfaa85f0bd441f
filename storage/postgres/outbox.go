package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/motorpool/motorpool/events"
	pgdb "github.com/motorpool/motorpool/sqlc/postgres"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/tracing"
)

var _ storage.Outbox = (*Store)(nil)

// Relay implements storage.Outbox. The claim is a DELETE of the oldest rows no other relay
// has locked (FOR UPDATE SKIP LOCKED); publish runs inside its transaction, which commits
// only if publish succeeded. A relay that dies meanwhile loses its connection, and the server
// rolls the deletion back.
func (s *Store) Relay(ctx context.Context, max int, publish func(context.Context, []events.Event) error) (int, error) {
	if max <= 0 {
		return 0, fmt.Errorf("relay: max %d is not positive", max)
	}
	var n int
	err := s.inTx(ctx, "relay", func(q *txn) error {
		rows, err := q.ClaimOutbox(ctx, int32(min(max, math.MaxInt32)))
		if err != nil {
			return translate("claim events", err)
		}
		if len(rows) == 0 {
			return nil
		}
		slices.SortFunc(rows, func(a, b pgdb.ClaimOutboxRow) int { return cmp.Compare(a.ID, b.ID) })
		evs := make([]events.Event, len(rows))
		for i, r := range rows {
			if evs[i], err = events.Unmarshal(r.Payload); err != nil {
				return fmt.Errorf("postgres: relay: outbox row %d: %w", r.ID, err)
			}
		}
		if err := publish(ctx, evs); err != nil {
			return fmt.Errorf("relay: publish: %w", err)
		}
		n = len(evs)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Backlog implements storage.Outbox.
func (s *Store) Backlog(ctx context.Context) (int, time.Time, error) {
	row, err := s.q.OutboxBacklog(ctx)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, translate("outbox backlog", err)
	}
	return int(row.Pending), row.CreatedAt.UTC(), nil
}

// record inserts the events of a write into the outbox, in q's transaction, in one statement.
func record(ctx context.Context, q *txn, evs ...events.Event) error {
	var p pgdb.InsertOutboxParams
	parent, state := tracing.Event(ctx) // the request's trace, continued by the publish
	for _, ev := range evs {
		ev.TraceParent, ev.TraceState = parent, state
		id, err := ev.AggregateID()
		if err != nil {
			return err
		}
		payload, err := events.Marshal(ev)
		if err != nil {
			return err
		}
		p.EventIds = append(p.EventIds, ev.ID)
		p.AggregateTypes = append(p.AggregateTypes, string(ev.Type.Aggregate()))
		p.AggregateIds = append(p.AggregateIds, id)
		p.Sequences = append(p.Sequences, ev.Sequence)
		p.EventTypes = append(p.EventTypes, string(ev.Type))
		p.Payloads = append(p.Payloads, string(payload))
		p.CreatedAts = append(p.CreatedAts, ev.Time)
	}
	if err := q.InsertOutbox(ctx, p); err != nil {
		return translate("record events", err)
	}
	q.recorded = append(q.recorded, evs...)
	return nil
}

// recordUser records the event of a write of row; seq is the user's revision after the write
// (a deletion's is one past the deleted row's).
func recordUser(ctx context.Context, q *txn, t events.Type, row pgdb.User, previousEmail string, seq int64, at time.Time) error {
	ev, err := storage.UserEvent(t, toUser(row), previousEmail, seq, at)
	if err != nil {
		return err
	}
	return record(ctx, q, ev)
}

// recordVehicle records the event of a write of row, as recordUser does for users.
func recordVehicle(ctx context.Context, q *txn, t events.Type, row pgdb.Vehicle, previousUserID, seq int64, at time.Time) error {
	ev, err := storage.VehicleEvent(t, toVehicle(row), previousUserID, seq, at)
	if err != nil {
		return err
	}
	return record(ctx, q, ev)
}

// recordUserDeleted records a VEHICLE_DELETED for each of the user's vehicles, then the
// USER_DELETED.
func recordUserDeleted(ctx context.Context, q *txn, user pgdb.User, vehicles []pgdb.Vehicle, at time.Time) error {
	evs, err := storage.UserDeletedEvents(storage.Revised[storage.User]{Record: toUser(user), Revision: user.Revision}, revised(vehicles), at)
	if err != nil {
		return err
	}
	return record(ctx, q, evs...)
}

// revised pairs each vehicle row with its revision.
func revised(vehicles []pgdb.Vehicle) []storage.Revised[storage.Vehicle] {
	vs := make([]storage.Revised[storage.Vehicle], len(vehicles))
	for i, v := range vehicles {
		vs[i] = storage.Revised[storage.Vehicle]{Record: toVehicle(v), Revision: v.Revision}
	}
	return vs
}
