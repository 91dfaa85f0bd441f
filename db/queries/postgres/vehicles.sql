-- name: CreateVehicle :one
INSERT INTO vehicles (user_id, make, model, year, vin, license_plate, color, created_at, updated_at)
VALUES (@user_id, @make, @model, @year, @vin, @license_plate, sqlc.narg(color), @created_at, @created_at)
RETURNING id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at;

-- name: GetVehicle :one
SELECT id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at
FROM vehicles
WHERE id = @id;

-- name: ListVehicles :many
SELECT id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at
FROM vehicles
WHERE id > @after_id
ORDER BY id
LIMIT @max_rows;

-- name: ListVehiclesByUser :many
-- A separate query rather than a nullable filter, so the planner always uses (user_id, id).
SELECT id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at
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
    updated_at = @updated_at
WHERE id = @id
RETURNING id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at;

-- name: DeleteVehicle :one
DELETE FROM vehicles
WHERE id = @id
RETURNING id;
