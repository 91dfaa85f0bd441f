package main

import (
	"slices"
	"strconv"
	"time"

	"github.com/motorpool/motorpool/broker"
)

// settings is the table of every environment variable the program reads, in the order
// README.md, .env.example and `motorpool help env` list them. A new variable is a new row
// (and `make generate`); TestSettingsCoverTheSource fails on a variable read elsewhere.
var settings = slices.Concat(serverSettings, databaseSettings, eventSettings, authSettings, adminSettings, cacheSettings, rateLimitSettings, tracingSettings)

var serverSettings = []setting{
	{name: "HTTP_ADDR", def: ":8080", meaning: "listen address", reader: httpAddr},
	{name: "SERVE_DOMAINS", def: "users,vehicles", reader: serveDomains,
		meaning: "the domains whose routes this process serves, comma-separated: `users`, `vehicles` or both ([Running the domains apart](#running-the-domains-apart)); one alone needs Valkey"},
	{name: "SHUTDOWN_TIMEOUT", def: "15s", meaning: "how long SIGINT/SIGTERM waits for in-flight requests",
		reader: duration(func(c *config) *time.Duration { return &c.ShutdownTimeout })},
	{name: "LOG_LEVEL", def: "info", meaning: "`debug`, `info`, `warn`, `error`", reader: logLevel},
	{name: "LOG_FORMAT", shown: "`json`, or `text` on a terminal", meaning: "log format (one line per request, with its `X-Request-Id`)",
		reader: oneOf(func(c *config) *string { return &c.LogFormat }, "must be json or text", "json", "text")},
	{name: "GOGC", def: strconv.Itoa(defaultGCPercent), reader: gogc,
		meaning: "the Go garbage collector's target (Go's own default is 100): the heap may grow to five times what is live, for about a third more requests per second under load; `GOMEMLIMIT` caps it"},
}

var databaseSettings = []setting{
	{name: "DATABASE_URL", secret: secretInURL, meaning: "PostgreSQL URL; when set, PostgreSQL is the store",
		reader: postgresURL(func(c *config) *string { return &c.DatabaseURL })},
	{name: "MIGRATE_DATABASE_URL", shown: "`DATABASE_URL`", secret: secretInURL,
		meaning: "PostgreSQL URL the migrations run as (at `serve` start and in `motorpool migrate`, which then opens no other): the tables' owner, so that `DATABASE_URL`'s role needs no DDL (see Least privilege)",
		reader:  postgresURL(func(c *config) *string { return &c.MigrateURL })},
	{name: "USERS_DATABASE_URL", shown: "`DATABASE_URL`", secret: secretInURL,
		meaning: "the users domain's PostgreSQL database; when it and `VEHICLES_DATABASE_URL` name two databases, each domain's process opens its own and the vehicles database keeps a projection of the users fed through RabbitMQ (required then) ([Two databases](#two-databases))",
		reader:  postgresURL(func(c *config) *string { return &c.UsersDB.URL })},
	{name: "VEHICLES_DATABASE_URL", shown: "`DATABASE_URL`", secret: secretInURL,
		meaning: "the vehicles domain's PostgreSQL database (see `USERS_DATABASE_URL`)",
		reader:  postgresURL(func(c *config) *string { return &c.VehiclesDB.URL })},
	{name: "MIGRATE_USERS_DATABASE_URL", shown: "`MIGRATE_DATABASE_URL` when it names that database", secret: secretInURL,
		meaning: "the owner's URL for the users domain's database; it must name the same database",
		reader:  postgresURL(func(c *config) *string { return &c.UsersDB.MigrateURL })},
	{name: "MIGRATE_VEHICLES_DATABASE_URL", shown: "`MIGRATE_DATABASE_URL` when it names that database", secret: secretInURL,
		meaning: "the owner's URL for the vehicles domain's database; it must name the same database",
		reader:  postgresURL(func(c *config) *string { return &c.VehiclesDB.MigrateURL })},
	{name: "VEHICLES_OWNER_WAIT", def: "2s",
		meaning: "with two databases, how long creating or moving a vehicle waits for an owner the vehicles database does not know yet (their `USER_CREATED` on its way) before answering 422; `0` to `1m`",
		reader: durationIn(func(c *config) *time.Duration { return &c.OwnerWait }, 0, time.Minute,
			"must be 0 (no wait) or a duration up to 1m, such as 2s")},
	{name: "DB_HOST", meaning: "PostgreSQL host: with it, and `DATABASE_URL` unset, the URL is built from `DB_HOST`, `DB_PORT`, `DB_USER`, `DB_PASSWORD` and `DB_NAME`",
		reader: text(func(c *config) *string { return &c.DBParts.Host })},
	{name: "DB_PORT", def: "5432", meaning: "PostgreSQL port, with `DB_HOST`",
		reader: port(func(c *config) *string { return &c.DBParts.Port })},
	{name: "DB_USER", def: "postgres", meaning: "PostgreSQL user, with `DB_HOST`",
		reader: text(func(c *config) *string { return &c.DBParts.User })},
	{name: "DB_PASSWORD", secret: secret, meaning: "PostgreSQL password, with `DB_HOST`",
		reader: text(func(c *config) *string { return &c.DBParts.Password })},
	{name: "DB_NAME", def: "motorpool", meaning: "PostgreSQL database, with `DB_HOST`",
		reader: text(func(c *config) *string { return &c.DBParts.Name })},
	{name: "DB_MAX_CONNS", shown: "pgx: max(4, CPUs); SQLite: max(4, CPUs)", meaning: "connection pool size",
		reader: conns(func(c *config) *int32 { return &c.DBMaxConns }, 1)},
	{name: "DB_MIN_CONNS", def: "0", meaning: "PostgreSQL connections kept open",
		reader: conns(func(c *config) *int32 { return &c.DBMinConns }, 0)},
	{name: "DB_CONNECT_TIMEOUT", def: "5s", meaning: "PostgreSQL connect timeout",
		reader: duration(func(c *config) *time.Duration { return &c.DBConnTimeout })},
	{name: "DB_QUERY_TIMEOUT", def: "5s",
		meaning: "bound on each database call (not on the migrations), SQLite's wait for another writer's lock included; past it, or with the database unreachable, requests get 503 with `Retry-After`. PostgreSQL connections also use TCP keepalives and `TCP_USER_TIMEOUT` (15s), so a server gone silent is noticed",
		reader:  duration(func(c *config) *time.Duration { return &c.DBQueryTimeout })},
	{name: "DB_MAX_CONN_LIFETIME", def: "1h", meaning: "PostgreSQL connection recycling",
		reader: duration(func(c *config) *time.Duration { return &c.DBConnLifetime })},
	{name: "DB_MAX_CONN_IDLE_TIME", def: "30m", meaning: "idle PostgreSQL connections are closed after this",
		reader: duration(func(c *config) *time.Duration { return &c.DBConnIdleTime })},
	{name: "SQLITE_PATH", def: "./data/motorpool.db",
		meaning: "the SQLite file when no PostgreSQL is configured (WAL mode, foreign keys on; created 0600, as are its `-wal` and `-shm` files, for it holds password hashes)",
		reader:  text(func(c *config) *string { return &c.SQLitePath })},
}

var eventSettings = []setting{
	{name: "RABBITMQ_URL", secret: secretInURL, reader: rabbitmqURL,
		meaning: "`amqp://user:password@host:5672/vhost`: the outbox's events are published there (exchange `motorpool.events`, topic, routed by type, publisher confirms); unset, they are relayed within the process"},
	{name: "RABBITMQ_EXCHANGE", def: broker.DefaultExchange, meaning: "the topic exchange of the events",
		reader: text(func(c *config) *string { return &c.Events.Broker.Exchange })},
	{name: "RELAY_MAX_LAG", def: "1m",
		meaning: "`/readyz` fails (check `outbox`) while the oldest event waiting in the outbox is older than this; with `RABBITMQ_URL` it also checks the broker (`broker`)",
		reader:  duration(func(c *config) *time.Duration { return &c.Events.MaxLag })},
}
