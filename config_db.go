package main

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/motorpool/motorpool/api"
)

// dbURLs is one domain's PostgreSQL database: the application's URL and the migrations' (the
// tables' owner; URL itself when empty).
type dbURLs struct {
	URL        string
	MigrateURL string
}

// database is one database a process opens: the domains whose tables it holds for this
// process ("" for the one database of both), and its URLs (none: the embedded SQLite store).
type database struct {
	domain api.Domain
	dbURLs
}

// loadDatabaseConfig reads the PostgreSQL settings: DATABASE_URL (or DB_HOST and its
// companions) and MIGRATE_DATABASE_URL for one database, and USERS_DATABASE_URL,
// VEHICLES_DATABASE_URL and their MIGRATE_ twins for a database per domain.
func loadDatabaseConfig(c *config, getenv func(string) string, errs *[]error) {
	dbURL, err := databaseURL(getenv)
	if err != nil {
		*errs = append(*errs, err)
	}
	c.DatabaseURL = dbURL
	pgURL := func(name string) string {
		v := strings.TrimSpace(getenv(name))
		if v != "" {
			if err := checkPostgresURL(name, v); err != nil {
				*errs = append(*errs, err)
			}
		}
		return v
	}
	c.MigrateURL = pgURL("MIGRATE_DATABASE_URL")
	c.UsersDB = dbURLs{URL: pgURL("USERS_DATABASE_URL"), MigrateURL: pgURL("MIGRATE_USERS_DATABASE_URL")}
	c.VehiclesDB = dbURLs{URL: pgURL("VEHICLES_DATABASE_URL"), MigrateURL: pgURL("MIGRATE_VEHICLES_DATABASE_URL")}
	for _, d := range []*dbURLs{&c.UsersDB, &c.VehiclesDB} {
		if d.URL == "" {
			d.URL = dbURL
		}
	}
	for _, m := range []struct{ name, url, of string }{
		{"MIGRATE_USERS_DATABASE_URL", c.UsersDB.MigrateURL, c.UsersDB.URL},
		{"MIGRATE_VEHICLES_DATABASE_URL", c.VehiclesDB.MigrateURL, c.VehiclesDB.URL},
	} {
		if m.url != "" && m.of != "" && !sameDatabase(m.url, m.of) {
			*errs = append(*errs, &configError{m.name, maskURL(m.url), "must name the same database as the domain's application URL (" + maskURL(m.of) + ")"})
		}
	}
	// MIGRATE_DATABASE_URL migrates the one database, or of two the one it names.
	two := c.twoDatabases()
	for _, d := range []*dbURLs{&c.UsersDB, &c.VehiclesDB} {
		if d.MigrateURL == "" && d.URL != "" && c.MigrateURL != "" && (!two || sameDatabase(d.URL, c.MigrateURL)) {
			d.MigrateURL = c.MigrateURL
		}
	}
	switch {
	case c.MigrateURL != "" && c.UsersDB.URL == "" && c.VehiclesDB.URL == "":
		*errs = append(*errs, &configError{"MIGRATE_DATABASE_URL", maskURL(c.MigrateURL), "is for PostgreSQL: set DATABASE_URL (or DB_HOST) too, for the application's own connections"})
	case two && c.MigrateURL != "" && c.UsersDB.MigrateURL != c.MigrateURL && c.VehiclesDB.MigrateURL != c.MigrateURL:
		*errs = append(*errs, &configError{"MIGRATE_DATABASE_URL", maskURL(c.MigrateURL), "names neither domain's database (with two, its host, port and database name must be one domain's URL's)"})
	case (c.UsersDB.URL == "") != (c.VehiclesDB.URL == ""):
		name := "VEHICLES_DATABASE_URL"
		if c.UsersDB.URL == "" {
			name = "USERS_DATABASE_URL"
		}
		*errs = append(*errs, &configError{name, "", "must be set too (or DATABASE_URL): one domain's database cannot be the embedded SQLite store"})
	}
	c.OwnerWait = 2 * time.Second
	if v := getenv("VEHICLES_OWNER_WAIT"); v != "" {
		if d, err := time.ParseDuration(v); err != nil || d < 0 || d > time.Minute {
			*errs = append(*errs, &configError{"VEHICLES_OWNER_WAIT", v, "must be 0 (no wait) or a duration up to 1m, such as 2s"})
		} else {
			c.OwnerWait = d
		}
	}
}

// checkDatabaseLayout refuses a database per domain without what it needs: the users domain's
// events reach the vehicles database's projection through RabbitMQ only.
func checkDatabaseLayout(c *config, errs *[]error) {
	if c.twoDatabases() && c.Events.Broker.URL == "" {
		*errs = append(*errs, &configError{"RABBITMQ_URL", "", "must be set with a database per domain (USERS_DATABASE_URL and VEHICLES_DATABASE_URL differ): the users' events reach the vehicles database through RabbitMQ"})
	}
}

// twoDatabases reports whether the domains have a database each.
func (c config) twoDatabases() bool {
	return c.UsersDB.URL != "" && c.VehiclesDB.URL != "" && !sameDatabase(c.UsersDB.URL, c.VehiclesDB.URL)
}

// databases are the databases this process opens: the one database of both domains (or the
// embedded store), or the database of each domain it serves.
func (c config) databases() []database {
	if !c.twoDatabases() {
		// One pool; a process serving the vehicles alone connects as their role, if named.
		one := c.UsersDB
		if !c.serves(api.DomainUsers) {
			one = c.VehiclesDB
		}
		return []database{{dbURLs: one}}
	}
	var dbs []database
	if c.serves(api.DomainUsers) {
		dbs = append(dbs, database{domain: api.DomainUsers, dbURLs: c.UsersDB})
	}
	if c.serves(api.DomainVehicles) {
		dbs = append(dbs, database{domain: api.DomainVehicles, dbURLs: c.VehiclesDB})
	}
	return dbs
}

// sameDatabase reports whether two PostgreSQL URLs name one database: the same host, port
// and database name, whoever connects (a domain's role and the owner's do).
func sameDatabase(a, b string) bool {
	key := func(s string) string {
		u, err := url.Parse(s)
		if err != nil {
			return s
		}
		port := u.Port()
		if port == "" {
			port = "5432"
		}
		name := strings.Trim(u.Path, "/")
		if name == "" {
			name = u.User.Username() // PostgreSQL's default database is the user's name
		}
		return strings.ToLower(u.Hostname()) + ":" + port + "/" + name
	}
	return key(a) == key(b)
}

// databaseURL takes DATABASE_URL, or builds one from DB_HOST and its companions; "" means
// the embedded SQLite store.
func databaseURL(getenv func(string) string) (string, error) {
	if v := strings.TrimSpace(getenv("DATABASE_URL")); v != "" {
		if err := checkPostgresURL("DATABASE_URL", v); err != nil {
			return "", err
		}
		return v, nil
	}
	host := strings.TrimSpace(getenv("DB_HOST"))
	if host == "" {
		for _, name := range []string{"DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"} {
			if getenv(name) != "" {
				return "", &configError{"DB_HOST", "", "must be set when " + name + " is (or set DATABASE_URL)"}
			}
		}
		return "", nil
	}
	port := "5432"
	if v := getenv("DB_PORT"); v != "" {
		if p, err := strconv.Atoi(v); err != nil || p < 1 || p > 65535 {
			return "", &configError{"DB_PORT", v, "must be a port number from 1 to 65535"}
		}
		port = v
	}
	user, name := "postgres", "motorpool"
	if v := getenv("DB_USER"); v != "" {
		user = v
	}
	if v := getenv("DB_NAME"); v != "" {
		name = v
	}
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(host, port), Path: "/" + name}
	if pw := getenv("DB_PASSWORD"); pw != "" {
		u.User = url.UserPassword(user, pw)
	} else {
		u.User = url.User(user)
	}
	return u.String(), nil
}

// checkPostgresURL refuses what is not a postgres:// URL with a host, naming the variable and
// masking the password.
func checkPostgresURL(name, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return &configError{name, maskURL(v), "must be a postgres:// URL with a host"}
	}
	return nil
}
