package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/motorpool/motorpool/storage/postgres/pgtest"
)

// With the roles of db/roles/postgres.sql: the application's role alone cannot migrate and
// says what to set; serve migrates as MIGRATE_DATABASE_URL's owner and serves as
// DATABASE_URL's app role; migrate connects as the owner only; and once the schema is up to
// date the app role alone passes the migration step.
func TestRunLeastPrivilege(t *testing.T) {
	r := pgtest.NewRoles(t)
	if err := r.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	runMigrate := func(env map[string]string) (string, error) {
		var out strings.Builder
		err := run(context.Background(), []string{"migrate"}, func(k string) string { return env[k] }, &out)
		return out.String(), err
	}

	if _, err := runMigrate(map[string]string{"DATABASE_URL": r.App.URL}); err == nil || !strings.Contains(err.Error(), "MIGRATE_DATABASE_URL") {
		t.Errorf("migrate as the app role on an empty schema: %v, want a failure naming MIGRATE_DATABASE_URL", err)
	}

	in := start(t, map[string]string{
		"MIGRATE_DATABASE_URL": r.Owner.URL, "DATABASE_URL": r.App.URL, "DATA_DIR": t.TempDir(), "LOG_FORMAT": "json",
		"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "a long admin password",
	})
	out := in.out.String()
	owner, _ := url.Parse(r.Owner.URL)
	if pw, _ := owner.User.Password(); !strings.Contains(out, `"migrations":"postgres postgres://`+r.Owner.Name+":xxxxx@") || strings.Contains(out, pw) {
		t.Errorf("start-up configuration does not show the owner's URL masked:\n%s", out)
	}
	if code, body := post(t, in.url+"/users", `{"email":"ada@example.com","name":"Ada","password":"correct horse battery"}`); code != http.StatusCreated {
		t.Fatalf("create user as the app role: %d %s", code, body)
	}
	tok := loginToken(t, in.url, "root@example.com", "a long admin password")
	if code, body := getWith(t, in.url+"/users?email=ada@example.com", tok); code != http.StatusOK || !strings.Contains(body, "ada@example.com") {
		t.Errorf("find the user: %d %s", code, body)
	}
	in.stop(t)

	// Nothing listens on port 1: migrate never opens DATABASE_URL when it has its own.
	unreachable := "postgres://nobody@127.0.0.1:1/motorpool?sslmode=disable"
	if got, err := runMigrate(map[string]string{"MIGRATE_DATABASE_URL": r.Owner.URL, "DATABASE_URL": unreachable, "DB_CONNECT_TIMEOUT": "1s"}); err != nil || got != "applied 0 migration(s)\n" {
		t.Errorf("migrate as the owner: %q, %v", got, err)
	}
	if got, err := runMigrate(map[string]string{"DATABASE_URL": r.App.URL}); err != nil || got != "applied 0 migration(s)\n" {
		t.Errorf("migrate as the app role on an up-to-date schema: %q, %v", got, err)
	}
}

// MIGRATE_DATABASE_URL is checked as DATABASE_URL is, its password hidden, and only with
// PostgreSQL configured.
func TestLoadConfigMigrateURL(t *testing.T) {
	for _, env := range []map[string]string{
		{"DATABASE_URL": "postgres://app@db/fleet", "MIGRATE_DATABASE_URL": "mysql://owner:hunter2@db/fleet"},
		{"DATABASE_URL": "postgres://app@db/fleet", "MIGRATE_DATABASE_URL": "postgres://owner:hunter2@/fleet"},
		{"MIGRATE_DATABASE_URL": "postgres://owner:hunter2@db/fleet"},
	} {
		_, err := loadConfig(func(k string) string { return env[k] }, false)
		if err == nil || !strings.HasPrefix(err.Error(), "MIGRATE_DATABASE_URL") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("env %v: error %v, want one naming MIGRATE_DATABASE_URL without the password", env, err)
		}
	}
	env := map[string]string{"DB_HOST": "db", "DB_USER": "app", "MIGRATE_DATABASE_URL": "postgres://owner:hunter2@db/motorpool"}
	cfg, err := loadConfig(func(k string) string { return env[k] }, false)
	if err != nil || cfg.MigrateURL != env["MIGRATE_DATABASE_URL"] || cfg.DatabaseURL != "postgres://app@db:5432/motorpool" {
		t.Fatalf("loadConfig: %+v, %v", cfg, err)
	}
	if printed := fmt.Sprint(cfg.describe()...); strings.Contains(printed, "hunter2") || !strings.Contains(printed, "postgres://owner:xxxxx@db/motorpool") {
		t.Errorf("describe() = %s", printed)
	}
}
