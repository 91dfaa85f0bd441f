-- name: CreateUser :one
-- revision 1: the user's USER_CREATED is their first event.
INSERT INTO users (email, email_normalized, name, role, password_hash, created_at, updated_at, revision)
VALUES (@email, @email_normalized, @name, @role, @password_hash, @created_at, @created_at, 1)
RETURNING *;

-- name: GetUser :one
SELECT *
FROM users
WHERE id = @id;

-- name: GetUserByEmailNormalized :one
SELECT *
FROM users
WHERE email_normalized = @email_normalized;

-- name: ListUsers :many
SELECT *
FROM users
WHERE id > @after_id
ORDER BY id
LIMIT @max_rows;

-- name: UpdateUser :one
-- password_version moves with the password and with the normalized email (the right-hand
-- sides read the row as it was), so that reset grants die with either. prev locks the row
-- before reading it, so previous_email is the email this update replaced even when another
-- update of the row committed while this one waited for the lock (the USER_UPDATED event
-- carries it, for whoever keyed something by the old address).
UPDATE users
SET email = @email,
    email_normalized = @email_normalized,
    name = @name,
    password_hash = COALESCE(sqlc.narg(password_hash), users.password_hash),
    password_version = users.password_version + CASE WHEN sqlc.narg(password_hash) IS NULL AND users.email_normalized = @email_normalized THEN 0 ELSE 1 END,
    role = COALESCE(sqlc.narg(role), users.role),
    updated_at = @updated_at,
    revision = users.revision + 1
FROM (SELECT u.id, u.email FROM users AS u WHERE u.id = @id FOR UPDATE) AS prev
WHERE users.id = prev.id
RETURNING sqlc.embed(users), prev.email AS previous_email;

-- name: SetPassword :one
-- Replaces the hash only while the version is the one the caller read; no row means the user
-- is gone or the version moved on, which the caller tells apart with GetUser.
UPDATE users
SET password_hash = @password_hash,
    password_version = password_version + 1,
    updated_at = @updated_at,
    revision = revision + 1
WHERE id = @id
  AND password_version = @password_version
RETURNING *;

-- name: DeleteUser :one
-- The caller locks the user's known_users row (LockUserForDelete) and deletes their vehicles
-- first (DeleteVehiclesOfUser), to record their events, then that row (DeleteKnownUser), whose
-- ON DELETE CASCADE finds no vehicle left.
DELETE FROM users
WHERE id = @id
RETURNING *;

-- name: LockUserAndAdmins :many
-- Locks the user and every admin, in id order so that concurrent callers cannot deadlock, for
-- the last-admin check that precedes a demotion or a deletion in the same transaction. A
-- concurrent demotion or deletion waits here until this transaction ends, then sees its result.
-- NO KEY UPDATE is enough to serialise these callers and leaves foreign-key checks (a vehicle
-- created for an admin) unblocked.
SELECT id, role
FROM users
WHERE role = 'admin' OR id = @id
ORDER BY id
FOR NO KEY UPDATE;
