// Package db holds motorpool's SQL sources, embedded: the goose migrations that are also the
// schema sqlc reads, and the queries sqlc compiles into the packages under sqlc/.
package db

import (
	"embed"
	"io/fs"
)

// Files holds migrations/<engine>/NNNNN_name.sql and queries/<engine>/<table>.sql.
//
//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql queries/postgres/*.sql queries/sqlite/*.sql
var Files embed.FS

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
