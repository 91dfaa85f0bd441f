-- name: InsertKnownUser :exec
-- CreateUser's, in its transaction: on one database the users domain keeps the projection.
INSERT INTO known_users (id)
VALUES (@id)
ON CONFLICT DO NOTHING;

-- name: ApplyKnownUser :exec
-- ApplyUserCreated's: a user whose deletion was applied stays forgotten. The transaction's
-- write lock (BEGIN IMMEDIATE) orders it with every deletion.
INSERT INTO known_users (id)
SELECT @id
WHERE NOT EXISTS (SELECT 1 FROM deleted_users WHERE deleted_users.id = @id)
ON CONFLICT DO NOTHING;

-- name: KnownUserExists :one
SELECT EXISTS (SELECT 1 FROM known_users WHERE id = @id) AS known;

-- name: DeleteKnownUser :exec
-- ON DELETE CASCADE removes the user's vehicles, but the caller has deleted them already, to
-- record their events.
DELETE FROM known_users
WHERE id = @id;

-- name: InsertDeletedUser :exec
INSERT INTO deleted_users (id)
VALUES (@id)
ON CONFLICT DO NOTHING;

-- name: DeletedUserExists :one
SELECT EXISTS (SELECT 1 FROM deleted_users WHERE id = @id) AS deleted;
