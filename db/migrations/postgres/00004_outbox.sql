-- +goose Up
-- revision counts a record's committed changes and is the sequence number of the last event
-- recorded for it. The statement that changes a row bumps it, so the row lock that orders the
-- writes of one record also orders their sequence numbers, and a failed write bumps nothing.
-- Rows written before the outbox start at 0: their first recorded event is number 1, as a new
-- record's USER_CREATED or VEHICLE_CREATED is.
ALTER TABLE users ADD COLUMN revision bigint NOT NULL DEFAULT 0;
ALTER TABLE vehicles ADD COLUMN revision bigint NOT NULL DEFAULT 0;

-- The transactional outbox: every write of a user or a vehicle inserts its event here in the
-- write's own transaction; a relay reads the rows in id order and deletes what it published.
-- payload is the whole event, CloudEvents 1.0 structured JSON (package events); the other
-- columns repeat what a relay or an operator selects on without parsing it.
CREATE TABLE outbox (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       uuid        NOT NULL,
    aggregate_type text        NOT NULL,
    aggregate_id   bigint      NOT NULL,
    sequence       bigint      NOT NULL,
    event_type     text        NOT NULL,
    payload        jsonb       NOT NULL,
    created_at     timestamptz NOT NULL,
    CONSTRAINT outbox_aggregate_type_check CHECK (aggregate_type IN ('user', 'vehicle')),
    CONSTRAINT outbox_sequence_check CHECK (sequence > 0)
);

-- +goose Down
DROP TABLE outbox;
ALTER TABLE vehicles DROP COLUMN revision;
ALTER TABLE users DROP COLUMN revision;
