-- +goose Up
-- revision counts a record's committed changes and is the sequence number of the last event
-- recorded for it. The statement that changes a row bumps it, inside the transaction that holds
-- SQLite's one write lock, and a failed write bumps nothing. Rows written before the outbox
-- start at 0: their first recorded event is number 1, as a new record's *_CREATED is.
ALTER TABLE users ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vehicles ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

-- The transactional outbox: every write of a user or a vehicle inserts its event here in the
-- write's own transaction; a relay reads the rows in id order and deletes what it published.
-- AUTOINCREMENT so that an id is never handed out again once pruned. payload is the whole
-- event, CloudEvents 1.0 structured JSON (package events), as text.
CREATE TABLE outbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT     NOT NULL,
    aggregate_type TEXT     NOT NULL CHECK (aggregate_type IN ('user', 'vehicle')),
    aggregate_id   INTEGER  NOT NULL,
    sequence       INTEGER  NOT NULL CHECK (sequence > 0),
    event_type     TEXT     NOT NULL,
    payload        TEXT     NOT NULL,
    created_at     DATETIME NOT NULL
);

-- +goose Down
DROP TABLE outbox;
ALTER TABLE vehicles DROP COLUMN revision;
ALTER TABLE users DROP COLUMN revision;
