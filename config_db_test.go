package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/api"
)

// The database layout a configuration gives: one database, however it is named, or one per
// domain, each process opening only those of the domains it serves, each migrated by the
// owner URL that names it.
func TestLoadConfigDatabases(t *testing.T) {
	const (
		one      = "postgres://app:pw@db:5432/motorpool"
		users    = "postgres://motorpool_users:pw@db/usersdb"
		vehicles = "postgres://motorpool_vehicles:pw@DB:5432/vehiclesdb"
		owner    = "postgres://owner:pw@db/motorpool"
		uowner   = "postgres://owner:pw@db:5432/usersdb"
		mq       = "amqp://guest:guest@mq:5672/"
	)
	cases := []struct {
		name string
		env  map[string]string
		two  bool
		want []database
	}{
		{"embedded", nil, false, []database{{}}},
		{"one database", map[string]string{"DATABASE_URL": one, "MIGRATE_DATABASE_URL": owner}, false,
			[]database{{dbURLs: dbURLs{URL: one, MigrateURL: owner}}}},
		{"both named alike", map[string]string{"USERS_DATABASE_URL": one, "VEHICLES_DATABASE_URL": "postgres://other@db/motorpool"}, false,
			[]database{{dbURLs: dbURLs{URL: one}}}},
		{"one database, vehicles alone, as their role", map[string]string{"DATABASE_URL": one, "VEHICLES_DATABASE_URL": "postgres://motorpool_vehicles:pw@db/motorpool",
			"SERVE_DOMAINS": "vehicles", "REDIS_HOST": "h", "JWT_PUBLIC_KEY_FILES": "k.pub"}, false,
			[]database{{dbURLs: dbURLs{URL: "postgres://motorpool_vehicles:pw@db/motorpool"}}}},
		{"two databases", map[string]string{"USERS_DATABASE_URL": users, "VEHICLES_DATABASE_URL": vehicles, "RABBITMQ_URL": mq,
			"MIGRATE_DATABASE_URL": uowner, "MIGRATE_VEHICLES_DATABASE_URL": "postgres://owner@db/vehiclesdb"}, true,
			[]database{{domain: api.DomainUsers, dbURLs: dbURLs{URL: users, MigrateURL: uowner}},
				{domain: api.DomainVehicles, dbURLs: dbURLs{URL: vehicles, MigrateURL: "postgres://owner@db/vehiclesdb"}}}},
		{"two databases, users alone", map[string]string{"DATABASE_URL": users, "VEHICLES_DATABASE_URL": vehicles, "RABBITMQ_URL": mq,
			"SERVE_DOMAINS": "users", "REDIS_HOST": "h", "JWT_PRIVATE_KEY_FILE": "k.pem"}, true,
			[]database{{domain: api.DomainUsers, dbURLs: dbURLs{URL: users}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := loadConfig(func(k string) string { return c.env[k] }, false)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.twoDatabases() != c.two {
				t.Errorf("twoDatabases() = %v, want %v", cfg.twoDatabases(), c.two)
			}
			if diff := cmp.Diff(c.want, cfg.databases(), cmp.AllowUnexported(database{})); diff != "" {
				t.Errorf("databases() (-want +got):\n%s", diff)
			}
			if printed := fmt.Sprint(cfg.describe()...); strings.Contains(printed, ":pw@") {
				t.Errorf("describe() shows a password: %s", printed)
			}
		})
	}
	if cfg, _ := loadConfig(func(string) string { return "" }, false); cfg.OwnerWait.String() != "2s" {
		t.Errorf("VEHICLES_OWNER_WAIT defaults to %s, want 2s", cfg.OwnerWait)
	}
}

// A database layout that cannot work is refused at start, naming the variable.
func TestLoadConfigDatabasesBad(t *testing.T) {
	const users, vehicles = "postgres://u:hunter2@db/usersdb", "postgres://v:hunter2@db/vehiclesdb"
	for name, env := range map[string]map[string]string{
		"RABBITMQ_URL":                  {"USERS_DATABASE_URL": users, "VEHICLES_DATABASE_URL": vehicles},
		"VEHICLES_DATABASE_URL":         {"USERS_DATABASE_URL": users},
		"USERS_DATABASE_URL":            {"VEHICLES_DATABASE_URL": vehicles},
		"MIGRATE_DATABASE_URL":          {"USERS_DATABASE_URL": users, "VEHICLES_DATABASE_URL": vehicles, "RABBITMQ_URL": "amqp://mq", "MIGRATE_DATABASE_URL": "postgres://o:hunter2@db/elsewhere"},
		"MIGRATE_VEHICLES_DATABASE_URL": {"USERS_DATABASE_URL": users, "VEHICLES_DATABASE_URL": vehicles, "RABBITMQ_URL": "amqp://mq", "MIGRATE_VEHICLES_DATABASE_URL": "postgres://o:hunter2@db/usersdb"},
		"VEHICLES_OWNER_WAIT":           {"VEHICLES_OWNER_WAIT": "2h"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(func(k string) string { return env[k] }, false)
			if err == nil || !strings.HasPrefix(err.Error(), name) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("env %v: %v, want one error naming %s, without the password", env, err, name)
			}
		})
	}
}
