-- +goose Up
-- Timestamps are written by the application (storage.Now) rather than by defaults, so both
-- engines store the same microsecond. Constraint names are what translate() maps to fields.
CREATE TABLE users (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email            text        NOT NULL,
    email_normalized text        NOT NULL,
    name             text        NOT NULL,
    role             text        NOT NULL DEFAULT 'user',
    password_hash    text        NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT users_email_normalized_key UNIQUE (email_normalized),
    CONSTRAINT users_role_check CHECK (role IN ('admin', 'user'))
);

CREATE TABLE vehicles (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint      NOT NULL,
    make          text        NOT NULL,
    model         text        NOT NULL,
    year          integer     NOT NULL,
    vin           text        NOT NULL,
    license_plate text        NOT NULL,
    color         text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT vehicles_vin_key UNIQUE (vin),
    CONSTRAINT vehicles_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

-- Serves an owner's paginated list (WHERE user_id = $1 AND id > $2 ORDER BY id) and the
-- cascade on user delete.
CREATE INDEX vehicles_user_id_id_idx ON vehicles (user_id, id);

-- +goose Down
DROP TABLE vehicles;
DROP TABLE users;
