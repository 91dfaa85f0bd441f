package postgres

import (
	"github.com/motorpool/motorpool/events"
	pgdb "github.com/motorpool/motorpool/sqlc/postgres"
	"github.com/motorpool/motorpool/storage"
)

var _ storage.Observable = (*Store)(nil)

// txn is a write's transaction: its queries, and the events record put in the outbox, which
// inTx hands to the commit observer once the transaction has committed (and to nobody if it
// rolled back).
type txn struct {
	*pgdb.Queries
	recorded []events.Event
}

// Observe implements storage.Observable: the copy shares s's connection pool, and inTx calls
// fn after each commit that recorded events, so every write gets it, the projection's
// included, and future ones too.
func (s *Store) Observe(fn storage.Committed) storage.Observed {
	c := *s
	c.committed = fn
	return &c
}
