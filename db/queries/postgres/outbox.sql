-- name: InsertOutbox :exec
-- One statement for the events of a write, however many (a user's deletion records one per
-- vehicle too), inserted, and so numbered, in the order given.
INSERT INTO outbox (event_id, aggregate_type, aggregate_id, sequence, event_type, payload, created_at)
SELECT (@event_ids::text[])[i]::uuid, (@aggregate_types::text[])[i], (@aggregate_ids::bigint[])[i],
       (@sequences::bigint[])[i], (@event_types::text[])[i], (@payloads::text[])[i]::jsonb,
       (@created_ats::timestamptz[])[i]
FROM generate_series(1, cardinality(@event_ids::text[])) AS i
ORDER BY i;

-- name: ClaimOutbox :many
-- Deleting is claiming: the rows stay locked, invisible to other relays (SKIP LOCKED), until
-- the transaction ends, and come back if it rolls back. RETURNING has no order; the caller
-- sorts by id.
DELETE FROM outbox
WHERE id IN (
    SELECT id
    FROM outbox
    ORDER BY id
    LIMIT @max_events
    FOR UPDATE SKIP LOCKED
)
RETURNING id, payload;

-- name: OutboxBacklog :one
-- No row when the outbox is empty.
SELECT (SELECT count(*) FROM outbox) AS pending, created_at
FROM outbox
ORDER BY id
LIMIT 1;
