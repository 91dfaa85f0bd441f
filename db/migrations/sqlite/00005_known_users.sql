-- +goose Up
-- known_users is the vehicles domain's view of the users its vehicles may reference. With one
-- database the users domain's own writes keep it, in their transactions; with a database per
-- domain the vehicles database's copy is fed by the users domain's events, and its users table
-- stays empty. Either way the owner check is this foreign key, not a read of users.
CREATE TABLE known_users (
    id INTEGER PRIMARY KEY
);

-- deleted_users holds a tombstone for every deletion the projection applied: user ids are
-- never reused, so a deletion is final, and a USER_CREATED delivered again after it (events
-- may be redelivered and arrive out of order) must not bring the user back.
CREATE TABLE deleted_users (
    id INTEGER PRIMARY KEY
);

INSERT INTO known_users (id) SELECT id FROM users;

-- SQLite cannot change a foreign key in place, so vehicles is rebuilt: every column as the
-- migrations so far left it, the key now on known_users. Nothing references vehicles, so
-- dropping it (with foreign keys on) cascades nowhere, and the copy passes the new key, since
-- every owner is a user and every user is known.
CREATE TABLE vehicles_new (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER  NOT NULL REFERENCES known_users (id) ON DELETE CASCADE,
    make          TEXT     NOT NULL,
    model         TEXT     NOT NULL,
    year          INTEGER  NOT NULL,
    vin           TEXT     NOT NULL UNIQUE,
    license_plate TEXT     NOT NULL,
    color         TEXT,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL,
    revision      INTEGER  NOT NULL DEFAULT 0
);

-- AUTOINCREMENT's high-water mark lives in sqlite_sequence under the table's name and goes
-- when the table is dropped; copied alone, the rows would leave it at the highest id left, and
-- the ids of the newest vehicles deleted would be handed out again. Seeded before the copy,
-- the copy keeps it (it only ever raises it), and the rename carries it over.
INSERT INTO sqlite_sequence (name, seq) SELECT 'vehicles_new', seq FROM sqlite_sequence WHERE name = 'vehicles';

INSERT INTO vehicles_new (id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision)
SELECT id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision
FROM vehicles;

DROP TABLE vehicles;
ALTER TABLE vehicles_new RENAME TO vehicles;

-- Dropped with the old table. Serves an owner's paginated list and the cascade on a user's
-- deletion.
CREATE INDEX vehicles_user_id_id_idx ON vehicles (user_id, id);

-- +goose Down
-- The same rebuild back onto users, before known_users goes (dropping it first would cascade
-- to every vehicle). On a vehicles database of the two-database layout the owners are in no
-- users row, so the copy fails the old key and the migration rolls back: go back to one
-- database first. Nothing is deleted to make it fit.
CREATE TABLE vehicles_old (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    make          TEXT     NOT NULL,
    model         TEXT     NOT NULL,
    year          INTEGER  NOT NULL,
    vin           TEXT     NOT NULL UNIQUE,
    license_plate TEXT     NOT NULL,
    color         TEXT,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL,
    revision      INTEGER  NOT NULL DEFAULT 0
);
INSERT INTO sqlite_sequence (name, seq) SELECT 'vehicles_old', seq FROM sqlite_sequence WHERE name = 'vehicles';
INSERT INTO vehicles_old (id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision)
SELECT id, user_id, make, model, year, vin, license_plate, color, created_at, updated_at, revision
FROM vehicles;
DROP TABLE vehicles;
ALTER TABLE vehicles_old RENAME TO vehicles;
CREATE INDEX vehicles_user_id_id_idx ON vehicles (user_id, id);
DROP TABLE deleted_users;
DROP TABLE known_users;
