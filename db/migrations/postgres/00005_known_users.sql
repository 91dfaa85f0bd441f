-- +goose Up
-- known_users is the vehicles domain's view of the users its vehicles may reference. With one
-- database the users domain's own writes keep it, in their transactions; with a database per
-- domain the vehicles database's copy is fed by the users domain's events, and its users table
-- stays empty. Either way the owner check is this foreign key, not a read of users, so the
-- vehicles domain needs no access to the users domain's rows.
CREATE TABLE known_users (
    id bigint PRIMARY KEY
);

-- deleted_users holds a tombstone for every deletion the projection applied: user ids are
-- never reused, so a deletion is final, and a USER_CREATED delivered again after it (events
-- may be redelivered and arrive out of order) must not bring the user back.
CREATE TABLE deleted_users (
    id bigint PRIMARY KEY
);

INSERT INTO known_users (id) SELECT id FROM users;

-- The same constraint name, which translate() maps to the userId field. A vehicle creation
-- now takes FOR KEY SHARE on the known_users row, so a user's deletion locks that row.
ALTER TABLE vehicles DROP CONSTRAINT vehicles_user_id_fkey;
ALTER TABLE vehicles ADD CONSTRAINT vehicles_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES known_users (id) ON DELETE CASCADE;

-- +goose Down
-- On a vehicles database of the two-database layout the owners are in no users row, so the
-- old key fails and the migration rolls back: go back to one database first. Nothing is
-- deleted to make it fit.
ALTER TABLE vehicles DROP CONSTRAINT vehicles_user_id_fkey;
ALTER TABLE vehicles ADD CONSTRAINT vehicles_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
DROP TABLE deleted_users;
DROP TABLE known_users;
