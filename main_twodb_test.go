package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/motorpool/motorpool/broker/brokertest"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
)

// count is one number a query answers on dbURL.
func count(t *testing.T, dbURL, query string, args ...any) int {
	t.Helper()
	var n int
	queryDB(t, dbURL, func(c *pgx.Conn) error { return c.QueryRow(context.Background(), query, args...).Scan(&n) })
	return n
}

// A database per domain, served by one process: each domain's rows live in its own database,
// the vehicles database knows the users through its projection, and the API answers as on one
// database: a new user's vehicle is accepted at once, a deleted user's vehicles go with them,
// an owner that does not exist is a 422 after VEHICLES_OWNER_WAIT.
func TestRunTwoDatabases(t *testing.T) {
	usersDB, vehiclesDB := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	bcfg, exchange := brokertest.Config(t, ".users-vehicles.cache", ".vehicles.projection")
	env := map[string]string{
		"USERS_DATABASE_URL": usersDB, "VEHICLES_DATABASE_URL": vehiclesDB, "VEHICLES_OWNER_WAIT": "300ms",
		"RABBITMQ_URL": bcfg.URL, "RABBITMQ_EXCHANGE": exchange, "DATA_DIR": t.TempDir(), "LOG_FORMAT": "json",
		"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "a long admin password",
	}

	// Two databases need RabbitMQ: without it the program says so and does not start.
	noBroker := func(k string) string {
		if k == "RABBITMQ_URL" {
			return ""
		}
		return env[k]
	}
	if err := run(t.Context(), nil, noBroker, &lockedBuffer{}); err == nil || !strings.Contains(err.Error(), "RABBITMQ_URL") {
		t.Errorf("two databases without RabbitMQ: %v, want an error naming RABBITMQ_URL", err)
	}

	in := start(t, env)
	defer in.stop(t)
	for _, want := range []string{"users: postgres ", "vehicles: postgres "} {
		if !strings.Contains(in.out.String(), want) {
			t.Errorf("the start-up line does not name the %q database:\n%s", want, in.out)
		}
	}
	admin := loginToken(t, in.url, "root@example.com", "a long admin password")
	code, body := post(t, in.url+"/users", `{"email":"ada@example.com","name":"Ada","password":"correct horse battery"}`)
	var ada struct{ ID int64 }
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &ada) != nil {
		t.Fatalf("register: %d %s", code, body)
	}
	tok := loginToken(t, in.url, "ada@example.com", "correct horse battery")
	code, _, body = call(t, "POST", in.url+"/vehicles", tok,
		`{"make":"Toyota","model":"Corolla","year":2021,"vin":"1HGCM82633A004352","licensePlate":"AB-123-CD"}`)
	var car struct{ ID int64 }
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &car) != nil {
		t.Fatalf("a vehicle for the user registered a moment ago: %d %s", code, body)
	}
	mine := fmt.Sprintf("%s/users/%d/vehicles", in.url, ada.ID)
	if code, body := getWith(t, mine, tok); code != http.StatusOK || !strings.Contains(body, "1HGCM82633A004352") {
		t.Errorf("GET the user's vehicles: %d %s", code, body)
	}

	// Each domain's rows are in its own database only.
	if n := count(t, usersDB, "SELECT count(*) FROM vehicles"); n != 0 {
		t.Errorf("%d vehicles in the users database", n)
	}
	if n := count(t, vehiclesDB, "SELECT count(*) FROM users"); n != 0 {
		t.Errorf("%d users in the vehicles database", n)
	}
	if n := count(t, vehiclesDB, "SELECT count(*) FROM known_users WHERE id = $1", ada.ID); n != 1 {
		t.Errorf("the vehicles database does not know user %d", ada.ID)
	}

	// An owner nobody created: refused once the wait is over.
	began := time.Now()
	code, _, body = call(t, "POST", in.url+"/vehicles", admin,
		`{"userId":999999,"make":"Kia","model":"Rio","year":2020,"vin":"KNADM4A37E6339125","licensePlate":"XY-999-ZZ"}`)
	if waited := time.Since(began); code != http.StatusUnprocessableEntity || !strings.Contains(body, "userId") || waited < 300*time.Millisecond {
		t.Errorf("a vehicle for a user who does not exist: %d %s after %s, want 422 naming userId after VEHICLES_OWNER_WAIT (300ms)", code, body, waited)
	}

	// The user's deletion takes their vehicles, in the other database, with them.
	if code, _, body := call(t, "DELETE", fmt.Sprintf("%s/users/%d", in.url, ada.ID), admin, ""); code != http.StatusNoContent {
		t.Fatalf("delete the user: %d %s", code, body)
	}
	if code, body := getWith(t, fmt.Sprintf("%s/vehicles/%d", in.url, car.ID), admin); code != http.StatusNotFound {
		t.Errorf("the deleted user's vehicle: %d %s, want 404", code, body)
	}
	if code, body := getWith(t, mine, admin); code != http.StatusNotFound {
		t.Errorf("the deleted user's vehicles: %d %s, want 404", code, body)
	}

	// The events go out of both outboxes, and the projection's consumer hears the users' (and
	// finds them applied already).
	eventually(t, "empty outboxes", func() bool {
		return count(t, usersDB, "SELECT count(*) FROM outbox")+count(t, vehiclesDB, "SELECT count(*) FROM outbox") == 0
	})
	eventually(t, "the projection's deliveries", func() bool {
		_, m := get(t, in.url+"/metrics")
		return strings.Contains(m, `motorpool_consumer_deliveries_total{outcome="ok",queue="`+exchange+`.vehicles.projection"} 3`) // the admin's and Ada's creations, her deletion
	})
	if n := count(t, vehiclesDB, "SELECT count(*) FROM known_users WHERE id = $1", ada.ID); n != 0 {
		t.Errorf("the vehicles database still knows the deleted user")
	}
	if code, body := get(t, in.url+"/readyz"); code != http.StatusOK || !strings.Contains(body, `"outbox_users"`) || !strings.Contains(body, `"outbox_vehicles"`) {
		t.Errorf("/readyz: %d %s; want both outboxes checked", code, body)
	}
}
