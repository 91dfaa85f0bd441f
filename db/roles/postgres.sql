-- Least-privilege roles for motorpool on PostgreSQL 11 or later (README.md, "Least privilege").
--
-- Run it as a superuser, connected to the application's database, before the first migration
-- and again after every upgrade that changes this file. It is idempotent: each run brings the
-- database to what this file says and changes nothing else (no password, no LOGIN flag):
--
--   psql -v ON_ERROR_STOP=1 -d motorpool -f db/roles/postgres.sql
--
-- Roles (created unless they exist; roles belong to the whole server, not to one database):
--   motorpool_owner     LOGIN. Owns the tables and runs the migrations (MIGRATE_DATABASE_URL);
--                       the only role, superusers aside, that may run DDL or write
--                       goose_db_version. It may be made NOLOGIN, with a person's role that is
--                       a member of it migrating as it (options=-c role=motorpool_owner).
--   motorpool_users     LOGIN. Reads and writes the users domain's tables and known_users
--                       (which its CreateUser and DeleteUser keep), reads goose_db_version (to
--                       see that the schema is up to date), and reads and deletes vehicles
--                       (which DeleteUser takes with their owner on one database), nothing else.
--   motorpool_vehicles  LOGIN. The same for the vehicles domain: vehicles, known_users and
--                       deleted_users (its projection of the users), never users.
--   motorpool_app       LOGIN, a member of both domain roles: the one pool (DATABASE_URL) of
--                       today's one-process, one-database layout. It goes away when the storage
--                       is split and each domain connects as its own role.
-- No role gets a password here; give each LOGIN role one in psql (\password sends only a hash):
--   \password motorpool_app
--
-- The prefix "motorpool" can be another, so that two deployments can share a server:
--   PGOPTIONS='-c motorpool.role_prefix=staging' psql -v ON_ERROR_STOP=1 -d staging -f ...
-- A database keeps the prefix it was first set up with; a later run without one uses it.
--
-- The schema motorpool_roles holds what later grants need: the prefix, each domain's tables,
-- and the functions an event trigger calls so that a table is granted to its domain's role in
-- the migration that creates it (ALTER DEFAULT PRIVILEGES cannot tell one table from another).
BEGIN;

-- Roles and the prefix.
DO $$
DECLARE
    given  text := nullif(current_setting('motorpool.role_prefix', true), '');
    stored text;
    prefix text;
    role_name text;
BEGIN
    IF to_regprocedure('motorpool_roles.prefix()') IS NOT NULL THEN
        EXECUTE 'SELECT motorpool_roles.prefix()' INTO stored;
    END IF;
    prefix := coalesce(given, stored, 'motorpool');
    IF prefix <> stored THEN
        RAISE EXCEPTION 'this database''s roles are prefixed %, not %', stored, prefix
            USING HINT = 'Run without motorpool.role_prefix, or with the prefix the database has.';
    END IF;
    IF prefix !~ '^[a-z][a-z0-9_]{0,39}$' THEN
        RAISE EXCEPTION 'motorpool.role_prefix % is not a lower-case name of at most 40 characters', prefix;
    END IF;

    IF to_regnamespace('motorpool_roles') IS NULL THEN
        CREATE SCHEMA motorpool_roles;
    END IF;
    EXECUTE format('CREATE OR REPLACE FUNCTION motorpool_roles.prefix() RETURNS text LANGUAGE sql IMMUTABLE AS %L',
        format('SELECT %L::text', prefix));

    FOREACH role_name IN ARRAY ARRAY[prefix || '_owner', prefix || '_users', prefix || '_vehicles', prefix || '_app'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', role_name);
        END IF;
        -- Enforced on every run: none of these may step around the grants below. Altered only
        -- when one is on, for PostgreSQL refuses a non-superuser (RDS's master user) the
        -- statement even when it would change nothing.
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = role_name
                   AND (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls)) THEN
            EXECUTE format('ALTER ROLE %I NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', role_name);
        END IF;
    END LOOP;
END
$$;

-- Each domain's tables: the one place a table is given to an application role. A new table
-- goes into its domain's list here, in the same change as the migration that creates it (a
-- test fails until it does); run this file before that migration and the table is granted as
-- it is created. With the storage split, a database that lacks a listed table skips it.
CREATE OR REPLACE FUNCTION motorpool_roles.domain_tables() RETURNS TABLE (domain text, table_name text)
LANGUAGE sql IMMUTABLE AS $$
    VALUES
        -- users domain: the accounts.
        ('users', 'users'),
        -- vehicles domain, with the tombstones of the user deletions its projection applied,
        -- which only the projection (fed by the users domain's events) writes.
        ('vehicles', 'vehicles'),
        ('vehicles', 'deleted_users'),
        -- Both: on one database each domain's writes record their events in the one outbox,
        -- in the write's transaction, and either domain's process may relay it. (With a
        -- database per domain, each has an outbox of its own.)
        ('users', 'outbox'),
        ('vehicles', 'outbox'),
        -- Both: known_users, the users a vehicle may name, is the vehicles domain's, which
        -- reads it and, on a database of its own, writes it from the users domain's events;
        -- the users domain's CreateUser and DeleteUser write it in their transactions, which
        -- on one database keeps it for the vehicles (DeleteUser locks the row against new
        -- vehicles first).
        ('users', 'known_users'),
        ('vehicles', 'known_users')
$$;

-- grant_domain_tables grants each listed table in the schema public (only only_table, when it
-- is given) to its domain's role: read and write its rows, and use the sequences of its columns.
-- goose's version table may be read by every application role, so that a process started with
-- an application role's URL alone finds the schema up to date (and fails on a pending
-- migration); only the owner writes it. It runs with its caller's rights, so it grants only on
-- tables the caller owns (or, run by a superuser, on any).
CREATE OR REPLACE FUNCTION motorpool_roles.grant_domain_tables(only_table regclass DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    t   record;
    seq regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass AS rel, motorpool_roles.prefix() || '_' || d.domain AS role
        FROM motorpool_roles.domain_tables() d
        JOIN pg_class c ON c.relname = d.table_name AND c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
        WHERE only_table IS NULL OR c.oid = only_table
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %s TO %I', t.rel, t.role);
        FOR seq IN
            SELECT dep.objid::regclass FROM pg_depend dep JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
            WHERE dep.classid = 'pg_class'::regclass AND dep.refobjid = t.rel AND dep.deptype IN ('a', 'i')
        LOOP
            EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO %I', seq, t.role);
        END LOOP;
    END LOOP;
    -- The one grant across domains beyond the tables both list: on one database deleting a
    -- user deletes their vehicles in the same transaction, recording an event for each
    -- (storage/postgres DeleteUser), so the users role may read and delete vehicles, never
    -- create or change them. With a database per domain the users database's vehicles table
    -- stays empty.
    IF to_regclass('public.vehicles') IS NOT NULL AND (only_table IS NULL OR only_table = to_regclass('public.vehicles')) THEN
        EXECUTE format('GRANT SELECT, DELETE ON TABLE public.vehicles TO %I', motorpool_roles.prefix() || '_users');
    END IF;
    FOR t IN
        SELECT c.oid::regclass AS rel FROM pg_class c
        WHERE c.relname = 'goose_db_version' AND c.relnamespace = 'public'::regnamespace
          AND (only_table IS NULL OR c.oid = only_table)
    LOOP
        EXECUTE format('GRANT SELECT ON TABLE %s TO %I, %I', t.rel,
            motorpool_roles.prefix() || '_users', motorpool_roles.prefix() || '_vehicles');
    END LOOP;
END
$$;

-- The event trigger's function runs as whoever runs the DDL, the owner in a migration. Roles
-- that may not use motorpool_roles own no listed table, so they are left alone.
CREATE OR REPLACE FUNCTION motorpool_roles.grant_on_ddl() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    cmd record;
BEGIN
    IF NOT has_schema_privilege('motorpool_roles', 'USAGE') THEN
        RETURN;
    END IF;
    FOR cmd IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE object_type = 'table' LOOP
        PERFORM motorpool_roles.grant_domain_tables(cmd.objid::regclass);
    END LOOP;
END
$$;

-- ALTER TABLE too: a column added with a sequence needs its grant. Made anew on every run, so
-- that it has the tags written here.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'motorpool_roles_grant') THEN
        DROP EVENT TRIGGER motorpool_roles_grant;
    END IF;
    CREATE EVENT TRIGGER motorpool_roles_grant ON ddl_command_end WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
        EXECUTE FUNCTION motorpool_roles.grant_on_ddl();
END
$$;

-- The database, the schema, and what the owner makes later.
DO $$
DECLARE
    owner_role    text := motorpool_roles.prefix() || '_owner';
    users_role    text := motorpool_roles.prefix() || '_users';
    vehicles_role text := motorpool_roles.prefix() || '_vehicles';
    app_role      text := motorpool_roles.prefix() || '_app';
    bad           text;
BEGIN
    -- An owner of the database or of the schema public may create objects whatever is revoked.
    SELECT r.rolname INTO bad FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
    WHERE d.datname = current_database() AND r.rolname IN (users_role, vehicles_role, app_role);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'the database % is owned by %, an application role', current_database(), bad
            USING HINT = format('ALTER DATABASE %I OWNER TO postgres (or another role that does not serve requests)', current_database());
    END IF;
    SELECT r.rolname INTO bad FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
    WHERE n.nspname = 'public' AND r.rolname IN (users_role, vehicles_role, app_role);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'the schema public is owned by %, an application role', bad
            USING HINT = 'ALTER SCHEMA public OWNER TO pg_database_owner (PostgreSQL 15 and later) or postgres';
    END IF;

    -- Only these roles (and superusers) connect, and no one makes temporary tables: those are
    -- DDL too. Another role that needs to connect, a monitoring agent say, is granted CONNECT.
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I, %I, %I, %I', current_database(), owner_role, users_role, vehicles_role, app_role);

    -- PostgreSQL 15 revokes CREATE on public from PUBLIC already; earlier versions grant it.
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA public TO %I', owner_role);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I, %I, %I', users_role, vehicles_role, app_role);

    -- The owner's future objects are nobody else's: tables and sequences are private by
    -- default anyway, functions are not (PUBLIC may execute them). The per-domain grants come
    -- from the event trigger.
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE ALL ON TABLES FROM PUBLIC', owner_role);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE ALL ON SEQUENCES FROM PUBLIC', owner_role);
    EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC', owner_role);

    -- The app role of the one-database layout is both domains at once.
    IF NOT pg_has_role(app_role, users_role, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO %I', users_role, app_role);
    END IF;
    IF NOT pg_has_role(app_role, vehicles_role, 'MEMBER') THEN
        EXECUTE format('GRANT %I TO %I', vehicles_role, app_role);
    END IF;

    -- Only the owner's migrations (and superusers) use motorpool_roles.
    REVOKE ALL ON SCHEMA motorpool_roles FROM PUBLIC;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA motorpool_roles FROM PUBLIC;
    EXECUTE format('GRANT USAGE ON SCHEMA motorpool_roles TO %I', owner_role);
    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA motorpool_roles TO %I', owner_role);
END
$$;

-- Tables that exist already: those a superuser migrated before the owner existed pass to it,
-- with goose's version table, so that it can migrate them and an application role can neither
-- ALTER nor DROP them; then every listed table is granted. A table in public that no domain
-- lists is reported: no application role can use it.
DO $$
DECLARE
    owner_role text := motorpool_roles.prefix() || '_owner';
    rel        regclass;
BEGIN
    FOR rel IN
        SELECT c.oid FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
          AND c.relowner <> owner_role::regrole
          AND (c.relname = 'goose_db_version' OR c.relname IN (SELECT table_name FROM motorpool_roles.domain_tables()))
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO %I', rel, owner_role);
    END LOOP;
    PERFORM motorpool_roles.grant_domain_tables();
    FOR rel IN
        SELECT c.oid FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> 'goose_db_version'
          AND c.relname NOT IN (SELECT table_name FROM motorpool_roles.domain_tables())
    LOOP
        RAISE WARNING 'table % is in no domain of db/roles/postgres.sql: no application role may use it', rel;
    END LOOP;
END
$$;

COMMIT;
