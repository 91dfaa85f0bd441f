package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/motorpool/motorpool/broker/brokertest"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
	"github.com/motorpool/motorpool/token"
)

// jwtKeyFiles writes a signing key and its public key, as a users process and a vehicles
// process are given them.
func jwtKeyFiles(t *testing.T) (keyFile, pubFile string) {
	t.Helper()
	dir := t.TempDir()
	keyFile, pubFile = filepath.Join(dir, "jwt.pem"), filepath.Join(dir, "jwt.pub")
	key, err := token.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubFile, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile, pubFile
}

// The plan's deployment with least privilege (README: Two databases): each database set up
// with db/roles/postgres.sql and migrated by its owner, the users process connected to the
// users database as the users role and the vehicles process to the vehicles database as the
// vehicles role. Every step of the layout works on those grants: a registration, the
// projection applying it, a vehicle for the new user, and the deletion reaching the vehicles.
func TestRunTwoDatabasesLeastPrivilege(t *testing.T) {
	ru, rv := pgtest.NewRoles(t), pgtest.NewRoles(t)
	for _, r := range []*pgtest.Roles{ru, rv} {
		if err := r.Apply(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	keyFile, pubFile := jwtKeyFiles(t)
	vc := valkeytest.Open(t)
	addr := os.Getenv("TEST_VALKEY_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	host, port, _ := net.SplitHostPort(addr)
	bcfg, exchange := brokertest.Config(t, ".users.cache", ".vehicles.cache", ".vehicles.projection")
	env := func(domain string) map[string]string {
		e := map[string]string{
			"SERVE_DOMAINS": domain, "DATA_DIR": t.TempDir(), "LOG_FORMAT": "json",
			"REDIS_HOST": host, "REDIS_PORT": port, "VALKEY_KEY_PREFIX": vc.KeyPrefix(),
			"RABBITMQ_URL": bcfg.URL, "RABBITMQ_EXCHANGE": exchange,
			"USERS_DATABASE_URL": ru.Users.URL, "MIGRATE_USERS_DATABASE_URL": ru.Owner.URL,
			"VEHICLES_DATABASE_URL": rv.Vehicles.URL, "MIGRATE_VEHICLES_DATABASE_URL": rv.Owner.URL,
			"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "a long admin password",
		}
		if domain == "users" {
			e["JWT_PRIVATE_KEY_FILE"] = keyFile
		} else {
			e["JWT_PUBLIC_KEY_FILES"] = pubFile
		}
		return e
	}
	users, vehicles := start(t, env("users")), start(t, env("vehicles"))
	defer vehicles.wait(t)
	defer users.stop(t) // SIGTERM stops both

	code, body := post(t, users.url+"/users", `{"email":"ada@example.com","name":"Ada","password":"correct horse battery"}`)
	var ada struct{ ID int64 }
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &ada) != nil {
		t.Fatalf("register: %d %s", code, body)
	}
	tok := loginToken(t, users.url, "ada@example.com", "correct horse battery")
	// The vehicles process learns of Ada through RabbitMQ; the vehicle waits for that.
	code, _, body = call(t, "POST", vehicles.url+"/vehicles", tok,
		`{"make":"Toyota","model":"Corolla","year":2021,"vin":"1HGCM82633A004352","licensePlate":"AB-123-CD"}`)
	var car struct{ ID int64 }
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &car) != nil {
		t.Fatalf("a vehicle for the user just registered on the other database: %d %s", code, body)
	}
	admin := loginToken(t, users.url, "root@example.com", "a long admin password")
	if code, _, body := call(t, "DELETE", fmt.Sprintf("%s/users/%d", users.url, ada.ID), admin, ""); code != http.StatusNoContent {
		t.Fatalf("delete the user: %d %s", code, body)
	}
	eventually(t, "the deleted user's vehicle gone from the vehicles database", func() bool {
		code, _ := getWith(t, fmt.Sprintf("%s/vehicles/%d", vehicles.url, car.ID), admin)
		return code == http.StatusNotFound
	})
	if code, body := getWith(t, fmt.Sprintf("%s/users/%d/vehicles", vehicles.url, ada.ID), admin); code != http.StatusNotFound {
		t.Errorf("the deleted user's vehicles: %d %s, want 404", code, body)
	}
	for _, in := range []*instance{users, vehicles} {
		if strings.Contains(in.out.String(), "permission denied") {
			t.Errorf("a process was refused by its grants:\n%s", in.out)
		}
	}
}
