-- name: CreateUser :one
INSERT INTO users (email, email_normalized, name, role, password_hash, created_at, updated_at)
VALUES (@email, @email_normalized, @name, @role, @password_hash, @created_at, @created_at)
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
-- sides read the row as it was), so that reset grants die with either.
UPDATE users
SET email = @email,
    email_normalized = @email_normalized,
    name = @name,
    password_hash = COALESCE(sqlc.narg(password_hash), password_hash),
    password_version = password_version + CASE WHEN sqlc.narg(password_hash) IS NULL AND email_normalized = @email_normalized THEN 0 ELSE 1 END,
    role = COALESCE(sqlc.narg(role), role),
    updated_at = @updated_at
WHERE id = @id
RETURNING *;

-- name: SetPassword :one
-- Replaces the hash only while the version is the one the caller read; no row means the user
-- is gone or the version moved on, which the caller tells apart with GetUser.
UPDATE users
SET password_hash = @password_hash,
    password_version = password_version + 1,
    updated_at = @updated_at
WHERE id = @id
  AND password_version = @password_version
RETURNING *;

-- name: DeleteUser :one
-- The vehicles go with the user through ON DELETE CASCADE, within this one statement.
DELETE FROM users
WHERE id = @id
RETURNING id;

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
