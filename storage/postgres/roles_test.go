package postgres_test

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for goose
	"github.com/pressly/goose/v3"

	"github.com/motorpool/motorpool/db"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/postgres"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/storagetest"
)

// leastPrivilege is a database set up as README's "Least privilege" says: db/roles/postgres.sql
// first, then the migrations as the owner (MIGRATE_DATABASE_URL), so the tables get their
// grants as they are created.
func leastPrivilege(t *testing.T) *pgtest.Roles {
	t.Helper()
	r := pgtest.NewRoles(t)
	if err := r.Apply(t.Context()); err != nil {
		t.Fatalf("apply the roles: %v", err)
	}
	if n, err := openAs(t, r.Owner).Migrate(t.Context()); err != nil || n == 0 {
		t.Fatalf("Migrate as the owner = %d, %v", n, err)
	}
	return r
}

func openAs(t *testing.T, role pgtest.Role) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), postgres.Config{URL: role.URL})
	if err != nil {
		t.Fatalf("open as %s: %v", role.Name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(t.Context()) })
	return c
}

// denied reports whether err is PostgreSQL's insufficient_privilege.
func denied(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501"
}

// The whole store contract holds on the app role of the one-database layout: every query the
// store makes is granted.
func TestStoreAsAppRole(t *testing.T) {
	storagetest.RunStore(t, func(t *testing.T) storage.Store { return openAs(t, leastPrivilege(t).App) })
}

// Each domain role reads and writes its own tables and no other (but that the users role reads
// the vehicles it deletes with a user, on one database, and keeps known_users); all read
// goose's version table, which only the owner writes.
func TestRolesDomains(t *testing.T) {
	r := leastPrivilege(t)
	owns := map[string][]string{
		r.Users.Name:    {"users", "vehicles", "known_users", "goose_db_version"},
		r.Vehicles.Name: {"vehicles", "known_users", "deleted_users", "goose_db_version"},
		r.App.Name:      {"users", "vehicles", "known_users", "deleted_users", "goose_db_version"},
	}
	for _, role := range []pgtest.Role{r.Users, r.Vehicles, r.App} {
		c := connect(t, role.URL)
		for _, table := range []string{"users", "vehicles", "known_users", "deleted_users", "goose_db_version"} {
			_, err := c.Exec(t.Context(), "SELECT * FROM "+table)
			if want := contains(owns[role.Name], table); want && err != nil {
				t.Errorf("%s: SELECT from %s: %v", role.Name, table, err)
			} else if !want && !denied(err) {
				t.Errorf("%s: SELECT from %s: %v, want permission denied", role.Name, table, err)
			}
		}
		for _, stmt := range []string{
			"DELETE FROM goose_db_version",
			"UPDATE goose_db_version SET is_applied = false",
			"INSERT INTO goose_db_version (version_id, is_applied) VALUES (99, true)",
		} {
			if _, err := c.Exec(t.Context(), stmt); !denied(err) {
				t.Errorf("%s: %s: %v, want permission denied", role.Name, stmt, err)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The two domains work apart on one database, as they will on two: a vehicle may name a user
// its role cannot read (the foreign key is checked as the tables' owner), and deleting a user
// as the users role takes the vehicles with it (the one thing that role may do to vehicles).
func TestRolesDomainStores(t *testing.T) {
	r := leastPrivilege(t)
	users, vehicles := openAs(t, r.Users), openAs(t, r.Vehicles)
	ctx := t.Context()
	u, err := users.CreateUser(ctx, storage.NewUser{Email: "ada@example.com", Name: "Ada", PasswordHash: "h"})
	if err != nil {
		t.Fatalf("CreateUser as the users role: %v", err)
	}
	v, err := vehicles.CreateVehicle(ctx, storage.NewVehicle{UserID: u.ID, Make: "Toyota", Model: "Corolla", Year: 2021, VIN: "1HGCM82633A004352", LicensePlate: "AB-123-CD"})
	if err != nil {
		t.Fatalf("CreateVehicle as the vehicles role: %v", err)
	}
	if _, err := vehicles.CreateVehicle(ctx, storage.NewVehicle{UserID: u.ID + 1, Make: "Toyota", Model: "Corolla", Year: 2021, VIN: "1HGCM82633A004353", LicensePlate: "AB-124-CD"}); !errors.Is(err, storage.ErrReference) {
		t.Errorf("CreateVehicle for no user as the vehicles role: %v, want ErrReference", err)
	}
	if _, err := vehicles.GetUser(ctx, u.ID); !denied(err) {
		t.Errorf("GetUser as the vehicles role: %v, want permission denied", err)
	}
	// The users role reads and deletes the vehicles it deletes with their owner, no more.
	if _, err := users.CreateVehicle(ctx, storage.NewVehicle{UserID: u.ID, Make: "Fiat", Model: "Uno", Year: 1990, VIN: "1HGCM82633A004354", LicensePlate: "AB-125-CD"}); !denied(err) {
		t.Errorf("CreateVehicle as the users role: %v, want permission denied", err)
	}
	if _, err := users.UpdateVehicle(ctx, v.ID, storage.VehicleUpdate{Make: "Fiat", Model: "Uno", Year: 1990, VIN: v.VIN, LicensePlate: v.LicensePlate}); !denied(err) {
		t.Errorf("UpdateVehicle as the users role: %v, want permission denied", err)
	}
	if err := users.DeleteUser(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUser as the users role: %v", err)
	}
	if _, err := vehicles.GetVehicle(ctx, v.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetVehicle after its owner was deleted: %v, want ErrNotFound", err)
	}
	if known, err := vehicles.KnownUser(ctx, u.ID); err != nil || known {
		t.Errorf("KnownUser after DeleteUser as the vehicles role = %v, %v; want false", known, err)
	}
}

// The vehicles role runs the projection of a database of its own; the users role, which may
// not touch the tombstones, cannot.
func TestRolesProjection(t *testing.T) {
	r := leastPrivilege(t)
	users, vehicles := openAs(t, r.Users), openAs(t, r.Vehicles)
	ctx := t.Context()
	const id = 4242
	if err := vehicles.ApplyUserCreated(ctx, id); err != nil {
		t.Fatalf("ApplyUserCreated as the vehicles role: %v", err)
	}
	if known, err := vehicles.KnownUser(ctx, id); err != nil || !known {
		t.Fatalf("KnownUser as the vehicles role = %v, %v; want true", known, err)
	}
	v, err := vehicles.CreateVehicle(ctx, storage.NewVehicle{UserID: id, Make: "Toyota", Model: "Corolla", Year: 2021, VIN: "1HGCM82633A004352", LicensePlate: "AB-123-CD"})
	if err != nil {
		t.Fatalf("CreateVehicle for a projected user: %v", err)
	}
	if err := users.ApplyUserDeleted(ctx, id); !denied(err) {
		t.Errorf("ApplyUserDeleted as the users role: %v, want permission denied", err)
	}
	if err := users.ApplyUserCreated(ctx, id+1); !denied(err) {
		t.Errorf("ApplyUserCreated as the users role: %v, want permission denied", err)
	}
	if err := vehicles.ApplyUserDeleted(ctx, id); err != nil {
		t.Fatalf("ApplyUserDeleted as the vehicles role: %v", err)
	}
	if _, err := vehicles.GetVehicle(ctx, v.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetVehicle after ApplyUserDeleted: %v, want ErrNotFound", err)
	}
}

// No application role can run DDL: not on the tables (which the owner owns), not in the
// schema, not in the database, not even a temporary table.
func TestRolesNoDDL(t *testing.T) {
	r := leastPrivilege(t)
	statements := []string{
		"CREATE TABLE intruder (id int)",
		"CREATE TEMP TABLE intruder (id int)",
		"CREATE VIEW intruder AS SELECT 1",
		"CREATE FUNCTION intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
		"CREATE SCHEMA intruder",
		"CREATE INDEX intruder ON users (name)",
		"ALTER TABLE users ADD COLUMN intruder int",
		"ALTER TABLE vehicles DROP CONSTRAINT vehicles_user_id_fkey",
		"ALTER TABLE users OWNER TO CURRENT_USER",
		"DROP TABLE vehicles",
		"DROP TABLE users CASCADE",
		"TRUNCATE users CASCADE",
		"DROP EVENT TRIGGER motorpool_roles_grant",
		"SELECT motorpool_roles.grant_domain_tables()",
	}
	for _, role := range []pgtest.Role{r.Users, r.Vehicles, r.App} {
		c := connect(t, role.URL)
		for _, stmt := range statements {
			if _, err := c.Exec(t.Context(), stmt); !denied(err) {
				t.Errorf("%s: %s: %v, want permission denied", role.Name, stmt, err)
			}
		}
	}
	// All still there, unchanged.
	if n, err := openAs(t, r.Owner).Migrate(t.Context()); err != nil || n != 0 {
		t.Errorf("Migrate after the attempts = %d, %v; want nothing to do", n, err)
	}
	storeSmoke(t, openAs(t, r.App))
}

// storeSmoke creates a user and a vehicle and deletes the user, which takes the vehicle along.
func storeSmoke(t *testing.T, s storage.Store) {
	t.Helper()
	ctx := t.Context()
	u, err := s.CreateUser(ctx, storage.NewUser{Email: "grace@example.com", Name: "Grace", PasswordHash: "h"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	v, err := s.CreateVehicle(ctx, storage.NewVehicle{UserID: u.ID, Make: "Ford", Model: "T", Year: 1927, VIN: "1FTFW1ET1DFC10312", LicensePlate: "T-1"})
	if err != nil {
		t.Fatalf("CreateVehicle: %v", err)
	}
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := s.GetVehicle(ctx, v.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetVehicle after DeleteUser: %v, want ErrNotFound", err)
	}
}

// Every table the migrations make is owned by the owner and writable by exactly one domain,
// with its sequences: a table the roles script does not list would be usable by no
// application role. Add a new table to its domain in db/roles/postgres.sql.
func TestRolesEveryTableInADomain(t *testing.T) {
	r := leastPrivilege(t)
	rows, err := connect(t, r.Admin).Query(t.Context(), `
SELECT c.relname, c.relkind::text, pg_get_userbyid(c.relowner),
       CASE c.relkind WHEN 'S' THEN has_sequence_privilege($1, c.oid, 'USAGE') ELSE has_table_privilege($1, c.oid, 'UPDATE') END,
       CASE c.relkind WHEN 'S' THEN has_sequence_privilege($2, c.oid, 'USAGE') ELSE has_table_privilege($2, c.oid, 'UPDATE') END,
       has_table_privilege('public', c.oid, 'SELECT')
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
ORDER BY 1`, r.Users.Name, r.Vehicles.Name)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var (
			name, kind, owner     string
			users, vehicles, anon bool
		)
		if err := rows.Scan(&name, &kind, &owner, &users, &vehicles, &anon); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		if owner != r.Owner.Name {
			t.Errorf("%s is owned by %s, want %s", name, owner, r.Owner.Name)
		}
		if anon {
			t.Errorf("PUBLIC may read %s", name)
		}
		// The tables both domains write on one database (db/roles/postgres.sql): each records
		// its events in the outbox, and known_users is the vehicles domain's projection that
		// the users domain's writes keep.
		shared := name == "outbox" || name == "outbox_id_seq" || name == "known_users"
		if inGoose := strings.HasPrefix(name, "goose_db_version"); inGoose && (users || vehicles) {
			t.Errorf("an application role may write %s; only the owner migrates", name)
		} else if shared && !(users && vehicles) {
			t.Errorf("%s is granted to users: %v, vehicles: %v; want both", name, users, vehicles)
		} else if !inGoose && !shared && users == vehicles {
			t.Errorf("%s (relkind %s) is granted to users: %v, vehicles: %v; want exactly one domain: list it in db/roles/postgres.sql", name, kind, users, vehicles)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !contains(names, "users") || !contains(names, "vehicles") || !contains(names, "goose_db_version") {
		t.Errorf("tables in public: %v; the query finds nothing", names)
	}
}

// What the owner makes later and the script does not list is no one else's: no grant to an
// application role, and (ALTER DEFAULT PRIVILEGES) none to PUBLIC, functions included.
func TestRolesLaterObjectsStayPrivate(t *testing.T) {
	r := leastPrivilege(t)
	owner := connect(t, r.Owner.URL)
	for _, stmt := range []string{
		"CREATE TABLE later (id bigserial PRIMARY KEY)",
		"CREATE FUNCTION later_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'",
	} {
		if _, err := owner.Exec(t.Context(), stmt); err != nil {
			t.Fatalf("as the owner: %s: %v", stmt, err)
		}
	}
	admin := connect(t, r.Admin)
	for _, grantee := range []string{r.Users.Name, r.Vehicles.Name, r.App.Name, "public"} {
		var table, seq, fn bool
		if err := admin.QueryRow(t.Context(), `SELECT has_table_privilege($1, 'later', 'SELECT, INSERT, UPDATE, DELETE'),
has_sequence_privilege($1, 'later_id_seq', 'USAGE, SELECT, UPDATE'), has_function_privilege($1, 'later_fn()', 'EXECUTE')`, grantee).Scan(&table, &seq, &fn); err != nil {
			t.Fatal(err)
		}
		if table || seq || fn {
			t.Errorf("%s may use the owner's new objects: table %v, sequence %v, function %v", grantee, table, seq, fn)
		}
	}
}

// A database migrated as a superuser before the roles existed, as every deployment was until
// now, passes to the owner when the script runs: the app role works, and the owner migrates.
// Running the script again changes nothing, and it refuses another prefix on that database.
func TestRolesOnMigratedDatabase(t *testing.T) {
	r := pgtest.NewRoles(t)
	ctx := t.Context()
	if n, err := openAs(t, pgtest.Role{Name: "the superuser", URL: r.Admin}).Migrate(ctx); err != nil || n == 0 {
		t.Fatalf("Migrate as the superuser = %d, %v", n, err)
	}
	for range 2 {
		if err := r.Apply(ctx); err != nil {
			t.Fatalf("apply the roles on a migrated database: %v", err)
		}
	}
	storeSmoke(t, openAs(t, r.App))
	if n, err := openAs(t, r.Owner).Migrate(ctx); err != nil || n != 0 {
		t.Errorf("Migrate as the owner = %d, %v; want nothing to do", n, err)
	}
	if _, err := connect(t, r.App.URL).Exec(ctx, "DROP TABLE vehicles"); err == nil {
		t.Error("the app role dropped a table that the superuser had created")
	}

	admin := connect(t, r.Admin)
	if _, err := admin.Exec(ctx, "SET motorpool.role_prefix = 'mpt_other'"); err != nil {
		t.Fatal(err)
	}
	_, err := admin.Exec(ctx, db.PostgresRoles)
	if err == nil || !strings.Contains(err.Error(), "prefixed "+r.Prefix) {
		t.Errorf("the script with another prefix: %v, want a refusal naming %s", err, r.Prefix)
	}
	if _, err := admin.Exec(ctx, "ROLLBACK"); err != nil { // the script's BEGIN, whose COMMIT never ran
		t.Fatal(err)
	}
	var others int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'mpt\\_other\\_%'").Scan(&others); err != nil || others != 0 {
		t.Errorf("roles made by the refused run: %d, %v", others, err)
	}
}

// An application role finds a migrated schema up to date, so a process may start with its URL
// alone, and cannot apply a pending migration: that takes the owner.
func TestRolesMigrateAsApplication(t *testing.T) {
	r := pgtest.NewRoles(t)
	ctx := t.Context()
	if err := r.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	// The owner migrated an older release; this one brings more.
	raw, err := sql.Open("pgx", r.Owner.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, raw, db.PostgresMigrations(), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := openAs(t, r.App).Migrate(ctx); !errors.Is(err, postgres.ErrNotOwner) || !strings.Contains(err.Error(), r.App.Name) {
		t.Fatalf("Migrate as the app role with migrations pending: %v, want ErrNotOwner naming the role", err)
	}
	if n, err := openAs(t, r.Owner).Migrate(ctx); err != nil || n == 0 {
		t.Fatalf("Migrate as the owner = %d, %v", n, err)
	}
	for _, role := range []pgtest.Role{r.Users, r.Vehicles, r.App} {
		if n, err := openAs(t, role).Migrate(ctx); err != nil || n != 0 {
			t.Errorf("Migrate as %s on a migrated schema = %d, %v; want nothing to do", role.Name, n, err)
		}
	}
}
