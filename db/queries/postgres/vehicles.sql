-- name: CreateVehicle :one
INSERT INTO vehicles (user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision)
VALUES (@user_id, @make, @model, @year, @vin, @license_plate, sqlc.narg(color), @created_at, @created_at, 1)
RETURNING id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision;

-- name: GetVehicle :one
SELECT id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision
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
-- prev locks the row before reading it, so previous_user_id is the owner this update replaced
-- even when another update of the row committed while this one waited for the lock (the
-- VEHICLE_UPDATED event carries it, for whoever keeps the old owner's list).
UPDATE vehicles
SET user_id = COALESCE(sqlc.narg(user_id), vehicles.user_id),
    make = @make,
    model = @model,
    year = @year,
    vin = @vin,
    license_plate = @license_plate,
    color = sqlc.narg(color),
    updated_at = @updated_at,
    revision = vehicles.revision + 1
FROM (SELECT v.id, v.user_id AS owner FROM vehicles AS v WHERE v.id = @id FOR UPDATE) AS prev
WHERE vehicles.id = prev.id
RETURNING sqlc.embed(vehicles), prev.owner AS previous_user_id;

-- name: DeleteVehicle :one
DELETE FROM vehicles
WHERE id = @id
RETURNING id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision;

-- name: DeleteVehiclesOfUser :many
-- Run after LockUserForDelete, before the user's own deletion, so each gets its event.
DELETE FROM vehicles
WHERE user_id = @user_id
RETURNING id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision;
