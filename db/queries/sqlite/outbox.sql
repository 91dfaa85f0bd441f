-- name: InsertOutbox :exec
INSERT INTO outbox (event_id, aggregate_type, aggregate_id, sequence, event_type, payload, created_at)
VALUES (@event_id, @aggregate_type, @aggregate_id, @sequence, @event_type, @payload, @created_at);

-- name: ClaimOutbox :many
-- Deleting is claiming: the caller's transaction holds SQLite's one write lock until it commits
-- (the events are published) or rolls back (they are not, and stay). RETURNING has no order;
-- the caller sorts by id.
DELETE FROM outbox
WHERE id IN (
    SELECT id
    FROM outbox
    ORDER BY id
    LIMIT @max_events
)
RETURNING id, payload;

-- name: OutboxBacklog :one
-- No row when the outbox is empty.
SELECT (SELECT count(*) FROM outbox) AS pending, created_at
FROM outbox
ORDER BY id
LIMIT 1;
