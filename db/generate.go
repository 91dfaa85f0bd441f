package db

// sqlc reads the migrations and queries here and writes ../sqlc/postgres and ../sqlc/sqlite.
//go:generate go tool -modfile=../tools/go.mod sqlc generate -f ../sqlc.yaml
