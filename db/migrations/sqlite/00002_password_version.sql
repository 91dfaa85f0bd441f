-- +goose Up
-- password_version grows with every password change, so that grants tied to a password (reset
-- tokens) die with it. Existing users start at 1, as new ones do.
ALTER TABLE users ADD COLUMN password_version INTEGER NOT NULL DEFAULT 1;

-- Serves the last-admin check, which reads every admin row (WHERE role = 'admin') before a
-- demotion or a deletion.
CREATE INDEX users_admin_id_idx ON users (id) WHERE role = 'admin';

-- +goose Down
DROP INDEX users_admin_id_idx;
ALTER TABLE users DROP COLUMN password_version;
