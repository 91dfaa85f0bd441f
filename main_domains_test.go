package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
	"github.com/motorpool/motorpool/token"
)

// call makes a request with a bearer token ("" for none) and a JSON body ("" for none).
func call(t *testing.T, method, url, tok, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// The production layout of SERVE_DOMAINS: a users process and a vehicles process sharing
// PostgreSQL and Valkey, the vehicles one holding only the public key. A token the users
// process issues works on the vehicles process; each answers the other's routes as unknown
// paths; a logout on the users process is refused on the vehicles process at once.
func TestRunDomainsApart(t *testing.T) {
	dir := t.TempDir()
	keyFile, pubFile := filepath.Join(dir, "jwt.pem"), filepath.Join(dir, "jwt.pub")
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
	vc := valkeytest.Open(t)
	addr := os.Getenv("TEST_VALKEY_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	host, port, _ := net.SplitHostPort(addr)
	db := pgtest.NewDatabase(t)
	env := func(domains string) map[string]string {
		return map[string]string{
			"SERVE_DOMAINS": domains, "DATABASE_URL": db, "LOG_FORMAT": "json", "DATA_DIR": t.TempDir(),
			"REDIS_HOST": host, "REDIS_PORT": port, "VALKEY_KEY_PREFIX": vc.KeyPrefix(),
			"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "a long admin password",
		}
	}
	uenv, venv := env("users"), env(" Vehicles ")
	uenv["JWT_PRIVATE_KEY_FILE"] = keyFile
	venv["JWT_PUBLIC_KEY_FILES"] = pubFile

	// The vehicles process cannot sign: token issue says what it needs, generating nothing.
	err = run(context.Background(), []string{"token", "issue", "--service", "x"}, func(k string) string { return venv[k] }, io.Discard)
	if err == nil || !strings.HasPrefix(err.Error(), "JWT_PRIVATE_KEY_FILE") {
		t.Errorf("token issue on the vehicles process's settings: %v, want an error naming JWT_PRIVATE_KEY_FILE", err)
	}
	if _, err := os.Stat(filepath.Join(venv["DATA_DIR"], "jwt-signing-key.pem")); err == nil {
		t.Error("token issue generated a signing key")
	}

	users, vehicles := start(t, uenv), start(t, venv)
	defer vehicles.wait(t)
	defer users.stop(t) // SIGTERM stops both
	if !strings.Contains(vehicles.out.String(), "admin bootstrap skipped") {
		t.Errorf("the vehicles process did not say it leaves ADMIN_EMAIL to the users process:\n%s", vehicles.out)
	}
	for in, want := range map[*instance]string{users: `"SERVE_DOMAINS":"users"`, vehicles: `"SERVE_DOMAINS":"vehicles"`} {
		if !strings.Contains(in.out.String(), want) {
			t.Errorf("start-up settings lack %s:\n%s", want, in.out)
		}
	}

	code, _, body := call(t, "POST", users.url+"/users", "", `{"email":"ada@example.com","name":"Ada","password":"correct horse battery"}`)
	if code != http.StatusCreated {
		t.Fatalf("register on the users process: %d %s", code, body)
	}
	var ada struct{ ID int64 }
	if err := json.Unmarshal([]byte(body), &ada); err != nil || ada.ID == 0 {
		t.Fatalf("register: %s %v", body, err)
	}
	tok := loginToken(t, users.url, "ada@example.com", "correct horse battery")

	code, _, body = call(t, "POST", vehicles.url+"/vehicles", tok,
		`{"make":"Toyota","model":"Corolla","year":2021,"vin":"1HGCM82633A004352","licensePlate":"AB-123-CD"}`)
	if code != http.StatusCreated {
		t.Fatalf("create a vehicle on the vehicles process with the users process's token: %d %s", code, body)
	}
	var car struct{ ID int64 }
	if err := json.Unmarshal([]byte(body), &car); err != nil || car.ID == 0 {
		t.Fatalf("create vehicle: %s %v", body, err)
	}
	mine := fmt.Sprintf("/users/%d/vehicles", ada.ID)
	if code, body := getWith(t, vehicles.url+mine, tok); code != http.StatusOK || !strings.Contains(body, "1HGCM82633A004352") {
		t.Errorf("GET %s on the vehicles process: %d %s", mine, code, body)
	}

	// Each process answers the other domain's routes as unknown paths.
	unknown := func(in *instance, name, method, path, body string) {
		t.Helper()
		code, h, got := call(t, method, in.url+path, tok, body)
		if code != http.StatusNotFound || h.Get("Content-Type") != "application/problem+json" || !strings.Contains(got, "No resource lives at this path.") {
			t.Errorf("%s %s on the %s process: %d %s %s, want the unknown path's 404", method, path, name, code, h.Get("Content-Type"), got)
		}
	}
	for _, r := range [][3]string{{"GET", "/users/1", ""}, {"GET", "/users", ""}, {"GET", "/auth/me", ""},
		{"POST", "/auth/login", `{"email":"ada@example.com","password":"correct horse battery"}`}} {
		unknown(vehicles, "vehicles", r[0], r[1], r[2])
	}
	for _, r := range [][3]string{{"GET", "/vehicles", ""}, {"GET", fmt.Sprintf("/vehicles/%d", car.ID), ""}, {"GET", mine, ""}} {
		unknown(users, "users", r[0], r[1], r[2])
	}
	if code, body := getWith(t, users.url+"/auth/me", tok); code != http.StatusOK {
		t.Errorf("/auth/me on the users process: %d %s", code, body)
	}

	// Both serve the operational routes, and publish the same key.
	var jwks [2]string
	for i, in := range []*instance{users, vehicles} {
		for _, path := range []string{"/healthz", "/metrics", "/openapi.yaml", "/docs/"} {
			if code, body := get(t, in.url+path); code != http.StatusOK {
				t.Errorf("GET %s: %d %s", path, code, body)
			}
		}
		if code, body := get(t, in.url+"/readyz"); code != http.StatusOK || !strings.Contains(body, `"valkey":{"status":"ok"}`) {
			t.Errorf("readyz: %d %s", code, body)
		}
		_, jwks[i] = get(t, in.url+"/.well-known/jwks.json")
	}
	if jwks[0] != jwks[1] || !strings.Contains(jwks[0], `"kid":"`+key.ID()+`"`) {
		t.Errorf("the processes publish different keys:\nusers    %s\nvehicles %s", jwks[0], jwks[1])
	}

	// The vehicles process has the session in its client-side cache; the logout reaches it
	// through Valkey's invalidation.
	one := fmt.Sprintf("%s/vehicles/%d", vehicles.url, car.ID)
	if code, body := getWith(t, one, tok); code != http.StatusOK {
		t.Fatalf("GET the vehicle before the logout: %d %s", code, body)
	}
	if code, _, body := call(t, "POST", users.url+"/auth/logout", tok, ""); code != http.StatusNoContent {
		t.Fatalf("logout on the users process: %d %s", code, body)
	}
	loggedOut, bound := time.Now(), 500*time.Millisecond
	for {
		code, _ := getWith(t, one, tok)
		if code == http.StatusUnauthorized {
			t.Logf("refused on the vehicles process %v after the logout", time.Since(loggedOut))
			break
		}
		if code != http.StatusOK || time.Since(loggedOut) > bound {
			t.Fatalf("the vehicles process still answers %d %v after the logout, want 401 within %v", code, time.Since(loggedOut), bound)
		}
	}
}
