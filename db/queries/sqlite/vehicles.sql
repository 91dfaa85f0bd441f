-- name: CreateVehicle :one
INSERT INTO vehicles (user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision)
VALUES (@user_id, @make, @model, @year, @vin, @license_plate, sqlc.narg(color), @created_at, @created_at, 1)
RETURNING id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision;

-- name: GetVehicle :one
SELECT id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision
FROM vehicles
WHERE id = @id;

-- name: GetVehicleOwner :one
-- The owner an update is about to replace, read in its transaction (SQLite's RETURNING sees
-- only the new row).
SELECT user_id
FROM vehicles
WHERE id = @id;

-- name: ListVehicles :many
SELECT id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision
FROM vehicles
WHERE id > @after_id
ORDER BY id
LIMIT @max_rows;

-- name: ListVehiclesByUser :many
-- A separate query rather than a nullable filter, so the planner always uses (user_id, id).
SELECT id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision
FROM vehicles
WHERE user_id = @user_id AND id > @after_id
ORDER BY id
LIMIT @max_rows;

-- name: UpdateVehicle :one
UPDATE vehicles
SET user_id = COALESCE(sqlc.narg(user_id), user_id),
    make = @make,
    model = @model,
    year = @year,
    vin = @vin,
    license_plate = @license_plate,
    color = sqlc.narg(color),
    updated_at = @updated_at,
    revision = revision + 1
WHERE id = @id
RETURNING id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision;

-- name: DeleteVehicle :one
DELETE FROM vehicles
WHERE id = @id
RETURNING id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision;

-- name: DeleteVehiclesOfUser :many
-- Run before the user's own deletion, in its transaction, so each gets its event.
DELETE FROM vehicles
WHERE user_id = @user_id
RETURNING id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision;
