package main

import (
	"errors"
	"net"
	"net/url"
	"strings"

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

// dbParts are DB_HOST and its companions, a PostgreSQL URL in parts.
type dbParts struct{ Host, Port, User, Password, Name string }

// url is the URL the parts make; the password is escaped as user info needs.
func (p dbParts) url() string {
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(p.Host, p.Port), Path: "/" + p.Name, User: url.User(p.User)}
	if p.Password != "" {
		u.User = url.UserPassword(p.User, p.Password)
	}
	return u.String()
}

// postgresURL reads a postgres:// URL with a host (the loader masks its password).
func postgresURL(f func(*config) *string) reader {
	return reader{
		parse: func(c *config, v string) error {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
				return errors.New("must be a postgres:// URL with a host")
			}
			*f(c) = v
			return nil
		},
		show: func(c *config) string { return *f(c) },
	}
}

// checkDatabases settles the PostgreSQL layout the database variables describe: DATABASE_URL
// (or DB_HOST and its companions) and MIGRATE_DATABASE_URL for one database, and
// USERS_DATABASE_URL, VEHICLES_DATABASE_URL and their MIGRATE_ twins for a database per
// domain. given holds the variables set to other than their default.
func checkDatabases(c *config, given map[string]bool, errs *configErrors) {
	if !given["DATABASE_URL"] {
		if c.DBParts.Host != "" {
			c.DatabaseURL = c.DBParts.url()
		} else {
			for _, name := range []string{"DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"} {
				if given[name] {
					*errs = append(*errs, &configError{"DB_HOST", "", "must be set when " + name + " is (or set DATABASE_URL)"})
					break
				}
			}
		}
	}
	for _, d := range []*dbURLs{&c.UsersDB, &c.VehiclesDB} {
		if d.URL == "" {
			d.URL = c.DatabaseURL
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
}

// checkDatabaseLayout refuses a database per domain without what it needs: the users domain's
// events reach the vehicles database's projection through RabbitMQ only.
func checkDatabaseLayout(c *config, errs *configErrors) {
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
