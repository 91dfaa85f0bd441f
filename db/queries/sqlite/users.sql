-- name: CreateUser :one
-- revision 1: the user's USER_CREATED is their first event.
INSERT INTO users (email, email_normalized, name, role, password_hash, created_at, updated_at, revision)
VALUES (@email, @email_normalized, @name, @role, @password_hash, @created_at, @created_at, 1)
RETURNING *;

-- name: GetUser :one
SELECT *
FROM users
WHERE id = @id;

-- name: GetUserEmail :one
-- The email an update is about to replace, read in its transaction (SQLite's RETURNING sees
-- only the new row).
SELECT email
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
-- sides read the row as it was), so that reset grants die with either.
UPDATE users
SET email = @email,
    email_normalized = @email_normalized,
    name = @name,
    password_hash = COALESCE(sqlc.narg(password_hash), password_hash),
    password_version = password_version + CASE WHEN sqlc.narg(password_hash) IS NULL AND email_normalized = @email_normalized THEN 0 ELSE 1 END,
    role = COALESCE(sqlc.narg(role), role),
    updated_at = @updated_at,
    revision = revision + 1
WHERE id = @id
RETURNING *;

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
-- The caller deletes the user's vehicles first (DeleteVehiclesOfUser), in the same
-- transaction, to record their events, then their known_users row (DeleteKnownUser), whose
-- ON DELETE CASCADE finds no vehicle left.
DELETE FROM users
WHERE id = @id
RETURNING *;

-- name: GetUserAndAdmins :many
-- The user and every admin, for the last-admin check that precedes a demotion or a deletion in
-- the same BEGIN IMMEDIATE transaction (which holds SQLite's one write lock throughout).
SELECT id, role
FROM users
WHERE role = 'admin' OR id = @id
ORDER BY id;
