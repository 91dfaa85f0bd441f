#!/bin/sh
# The plan's two databases on one PostgreSQL server, each set up with the least-privilege
# roles of db/roles/postgres.sql (README.md: "Least privilege", "Two databases"), as
# TestRunTwoDatabasesLeastPrivilege runs them. The postgres image runs this once, on an empty
# data directory; it is idempotent, so after an upgrade that changes the roles script run it
# again (before the new version migrates):
#
#   docker compose exec postgres /docker-entrypoint-initdb.d/10-motorpool.sh
#
# Passwords come from the environment (docker-compose.yml); psql passes them as variables,
# quoted by psql, never spliced into the SQL text by the shell.
set -eu

: "${MOTORPOOL_OWNER_PASSWORD:?}" "${MOTORPOOL_USERS_PASSWORD:?}" "${MOTORPOOL_VEHICLES_PASSWORD:?}"
roles=/motorpool/roles/postgres.sql
psql_su() { psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" "$@"; }

for db in usersdb vehiclesdb; do
	if [ "$(psql_su -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
		psql_su -d postgres -c "CREATE DATABASE $db"
	fi
	psql_su -d "$db" -f "$roles"
done

# motorpool_app (one pool serving both domains on one database) is not used by the
# two-database layout and keeps no password, so it cannot sign in.
psql_su -d postgres \
	-v owner="$MOTORPOOL_OWNER_PASSWORD" \
	-v users="$MOTORPOOL_USERS_PASSWORD" \
	-v vehicles="$MOTORPOOL_VEHICLES_PASSWORD" <<'SQL'
ALTER ROLE motorpool_owner PASSWORD :'owner';
ALTER ROLE motorpool_users PASSWORD :'users';
ALTER ROLE motorpool_vehicles PASSWORD :'vehicles';
SQL
