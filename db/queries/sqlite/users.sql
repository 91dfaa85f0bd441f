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
UPDATE users
SET email = @email,
    email_normalized = @email_normalized,
    name = @name,
    password_hash = COALESCE(sqlc.narg(password_hash), password_hash),
    updated_at = @updated_at
WHERE id = @id
RETURNING *;

-- name: DeleteUser :one
-- The vehicles go with the user through ON DELETE CASCADE, within this one statement.
DELETE FROM users
WHERE id = @id
RETURNING id;
