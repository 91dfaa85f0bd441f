// Package db holds motorpool's SQL sources, embedded: the goose migrations that are also the
// schema sqlc reads, the queries sqlc compiles into the packages under sqlc/, and the script
// that sets up PostgreSQL's least-privilege roles.
package db

import (
	"embed"
	"io/fs"
)

// Files holds migrations/<engine>/NNNNN_name.sql and queries/<engine>/<table>.sql.
//
//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql queries/postgres/*.sql queries/sqlite/*.sql
var Files embed.FS

// PostgresRoles is roles/postgres.sql: the owner and application roles and their grants, run
// by a superuser in the application's database (see the file's header). It is one
// transaction and takes no parameters but the motorpool.role_prefix setting.
//
//go:embed roles/postgres.sql
var PostgresRoles string

// PostgresMigrations returns the PostgreSQL goose migrations, at the root of the returned FS.
func PostgresMigrations() fs.FS { return sub("migrations/postgres") }

// SQLiteMigrations returns the SQLite goose migrations, at the root of the returned FS.
func SQLiteMigrations() fs.FS { return sub("migrations/sqlite") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(Files, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path, and these are constants.
		panic(err)
	}
	return f
}
