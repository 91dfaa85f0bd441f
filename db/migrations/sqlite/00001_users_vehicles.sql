-- +goose Up
-- AUTOINCREMENT so that ids of deleted rows are never handed out again. DATETIME is the declared
-- type modernc.org/sqlite parses back into time.Time. Timestamps are written by the application
-- (storage.Now) so both engines store the same microsecond.
CREATE TABLE users (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    email            TEXT     NOT NULL,
    email_normalized TEXT     NOT NULL UNIQUE,
    name             TEXT     NOT NULL,
    role             TEXT     NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    password_hash    TEXT     NOT NULL,
    created_at       DATETIME NOT NULL,
    updated_at       DATETIME NOT NULL
);

CREATE TABLE vehicles (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    make          TEXT     NOT NULL,
    model         TEXT     NOT NULL,
    year          INTEGER  NOT NULL,
    vin           TEXT     NOT NULL UNIQUE,
    license_plate TEXT     NOT NULL,
    color         TEXT,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL
);

-- Serves an owner's paginated list and the cascade on user delete.
CREATE INDEX vehicles_user_id_id_idx ON vehicles (user_id, id);

-- +goose Down
DROP TABLE vehicles;
DROP TABLE users;
