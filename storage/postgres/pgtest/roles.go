package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/motorpool/motorpool/db"
)

// Roles is a fresh database for the least-privilege roles of db/roles/postgres.sql, whose
// names carry a prefix of its own: roles belong to the whole server, and tests run at once.
type Roles struct {
	Admin                       string // the database as the superuser that applies the script
	Owner, Users, Vehicles, App Role
	Prefix                      string // the script's motorpool.role_prefix
	password                    string // every role's, random
}

// Role is one of the script's roles and the database's URL as it.
type Role struct{ Name, URL string }

// NewRoles creates a database as NewDatabase does and names its roles, and when tb ends drops
// the roles after the database (which holds their grants). The script is not applied yet:
// see Apply.
func NewRoles(tb testing.TB) *Roles {
	tb.Helper()
	var b [6 + 16]byte
	_, _ = rand.Read(b[:]) // never fails
	r := &Roles{Prefix: "mpt_" + hex.EncodeToString(b[:6]), password: hex.EncodeToString(b[6:])}
	r.Admin = newDatabase(tb, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, fmt.Sprintf("DROP ROLE IF EXISTS %s, %s, %s, %s",
			r.Owner.Name, r.Users.Name, r.Vehicles.Name, r.App.Name))
		return err
	})
	for _, role := range []struct {
		dst    *Role
		suffix string
	}{{&r.Owner, "_owner"}, {&r.Users, "_users"}, {&r.Vehicles, "_vehicles"}, {&r.App, "_app"}} {
		u, err := url.Parse(r.Admin)
		if err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
		role.dst.Name = r.Prefix + role.suffix
		u.User = url.UserPassword(role.dst.Name, r.password)
		role.dst.URL = u.String()
	}
	return r
}

// Apply runs db/roles/postgres.sql in the database as the superuser, with the roles' prefix,
// and gives each role the password its URL holds (so that a server that asks for passwords
// lets them in too). It may run again, as an operator reruns the script.
func (r *Roles) Apply(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, r.Admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT set_config('motorpool.role_prefix', $1, false)", r.Prefix); err != nil {
		return err
	}
	// Without arguments Exec sends the whole script at once, as psql -f would statement by
	// statement; it is one transaction either way.
	if _, err := conn.Exec(ctx, db.PostgresRoles); err != nil {
		return fmt.Errorf("db/roles/postgres.sql: %w", err)
	}
	for _, role := range []Role{r.Owner, r.Users, r.Vehicles, r.App} {
		// The names and passwords are ours, hex and underscores: nothing to quote.
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", role.Name, r.password)); err != nil {
			return err
		}
	}
	return nil
}
