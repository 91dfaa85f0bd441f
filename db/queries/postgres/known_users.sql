-- name: InsertKnownUser :exec
-- CreateUser's, in its transaction: on one database the users domain keeps the projection.
INSERT INTO known_users (id)
VALUES (@id)
ON CONFLICT DO NOTHING;

-- name: ApplyKnownUser :exec
-- ApplyUserCreated's: a user whose deletion was applied stays forgotten. Run after
-- LockUserProjection, in its own statement, so that its snapshot sees the tombstone of a
-- deletion that held the lock before it.
INSERT INTO known_users (id)
SELECT @id::bigint
WHERE NOT EXISTS (SELECT 1 FROM deleted_users WHERE deleted_users.id = @id::bigint)
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

-- name: LockUserForDelete :exec
-- A user's deletion (DeleteUser, ApplyUserDeleted) locks their known_users row first: FOR
-- UPDATE conflicts with the FOR KEY SHARE that the foreign-key check of a vehicle being
-- created for or moved to this user takes, so it waits for those in flight to commit and holds
-- off the rest until the deletion commits (and their check fails). So the vehicles
-- DeleteVehiclesOfUser then deletes, each with its event, are all the user will have had, and
-- the cascade silently removes none.
SELECT id
FROM known_users
WHERE id = @id
FOR UPDATE;

-- name: LockUserProjection :exec
-- Serialises ApplyUserCreated and ApplyUserDeleted of one user (a row lock cannot: the
-- known_users row a creation inserts may not exist yet), until the transaction ends. The key
-- is the two-int4 form, whose keys PostgreSQL keeps apart from the one-bigint form's, which
-- goose's migration lock uses: 1836084085 (0x6d706b75, "mpku") names the motorpool known
-- users, and the user id is folded into 31 bits; two ids that fold alike only wait for each
-- other.
SELECT pg_advisory_xact_lock(1836084085, mod(@id::bigint, 2147483648)::integer);

-- name: DeletedUserExists :one
SELECT EXISTS (SELECT 1 FROM deleted_users WHERE id = @id) AS deleted;
