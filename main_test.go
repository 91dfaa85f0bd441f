package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
	"github.com/motorpool/motorpool/token"
)

// instance is one run of the real program on 127.0.0.1:0.
type instance struct {
	url  string
	done chan error
	out  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
	w  *io.PipeWriter
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.b.Write(p)
	l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listening = regexp.MustCompile(`motorpool listening on (http://127\.0\.0\.1:\d+)`)

// start runs the program with env and waits until /healthz answers.
func start(t *testing.T, env map[string]string) *instance {
	t.Helper()
	return startWith(t, context.Background(), env)
}

// startWith is start with ctx for run: cancelling it stops this instance alone.
func startWith(t *testing.T, ctx context.Context, env map[string]string) *instance {
	t.Helper()
	env["HTTP_ADDR"] = "127.0.0.1:0"
	pr, pw := io.Pipe()
	in := &instance{done: make(chan error, 1), out: &lockedBuffer{w: pw}}
	go func() {
		err := run(ctx, []string{"serve"}, func(k string) string { return env[k] }, in.out)
		pw.Close()
		in.done <- err
	}()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	select {
	case in.url = <-urls:
	case err := <-in.done:
		t.Fatalf("run exited before listening: %v\n%s", err, in.out)
	case <-time.After(60 * time.Second):
		t.Fatalf("no listening line in 60s:\n%s", in.out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(in.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered 200: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return in
}

// stop sends SIGTERM to this process, which run handles, and waits for run to return.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	in.wait(t)
}

func (in *instance) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-in.done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, in.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not return after SIGTERM:\n%s", in.out)
	}
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The program serves, finishes a request that is in flight when SIGTERM arrives, stops, and
// finds its data again after a restart.
func TestRunGracefulShutdownAndRestart(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"SQLITE_PATH": filepath.Join(dir, "nested", "motorpool.db"), "DATA_DIR": dir, "LOG_FORMAT": "json",
		"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "a long admin password",
	}
	in := start(t, env)
	if !strings.Contains(in.out.String(), "Swagger UI: "+in.url+"/docs/") {
		t.Errorf("start-up output lacks the Swagger UI URL:\n%s", in.out)
	}
	if code, body := post(t, in.url+"/users", `{"email":"ada@example.com","name":"Ada","password":"correct horse battery"}`); code != http.StatusCreated {
		t.Fatalf("create user: %d %s", code, body)
	}

	// A slow client: the body trickles in, and SIGTERM arrives halfway through it.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", in.url+"/users", pr)
	req.Header.Set("Content-Type", "application/json")
	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		res <- result{code: resp.StatusCode, body: string(b)}
	}()
	if _, err := io.WriteString(pw, `{"email":"slow@example.com",`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the request is in the server's hands now
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // shutdown has begun and is waiting for us
	if _, err := io.WriteString(pw, `"name":"Slow","password":"correct horse battery"}`); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-res
	if r.err != nil || r.code != http.StatusCreated {
		t.Fatalf("in-flight request during shutdown: %v %d %s", r.err, r.code, r.body)
	}
	in.wait(t)
	if !strings.Contains(in.out.String(), `"msg":"shutting down"`) {
		t.Errorf("no shutdown log line:\n%s", in.out)
	}
	if _, err := http.Get(in.url + "/healthz"); err == nil {
		t.Error("the server still answers after shutdown")
	}

	// Restart on the same files: the admin was not created twice, both users are there, and the
	// signing key and the sessions outlive restarts.
	in = start(t, env)
	adminToken := loginToken(t, in.url, "root@example.com", "a long admin password")
	code, body := getWith(t, in.url+"/users", adminToken)
	if code != http.StatusOK || !strings.Contains(body, "ada@example.com") || !strings.Contains(body, "slow@example.com") || strings.Count(body, "root@example.com") != 1 {
		t.Errorf("after restart: %d %s", code, body)
	}
	_, jwks := get(t, in.url+"/.well-known/jwks.json")
	in.stop(t)
	in = start(t, env)
	if _, again := get(t, in.url+"/.well-known/jwks.json"); again != jwks || !strings.Contains(jwks, `"kid"`) {
		t.Errorf("the signing key changed across a restart:\n%s\n%s", jwks, again)
	}
	// The session of a token issued before the restart is still live.
	if code, body := getWith(t, in.url+"/auth/me", adminToken); code != http.StatusOK {
		t.Errorf("a token from before a restart: %d %s", code, body)
	}
	in.stop(t)
}

func loginToken(t *testing.T, base, email, password string) string {
	t.Helper()
	code, body := post(t, base+"/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	if code != http.StatusOK {
		t.Fatalf("login %s: %d %s", email, code, body)
	}
	var pair struct{ AccessToken string }
	if err := json.Unmarshal([]byte(body), &pair); err != nil || pair.AccessToken == "" {
		t.Fatalf("login body %s: %v", body, err)
	}
	return pair.AccessToken
}

func getWith(t *testing.T, url, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// DATABASE_URL and REDIS_HOST switch the same program to PostgreSQL and Valkey.
func TestRunOnPostgresAndValkey(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "jwt.pem")
	if _, err := token.LoadOrCreateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	vc := valkeytest.Open(t) // skips or fails (CI) when Valkey is missing; gives a fresh prefix
	addr := os.Getenv("TEST_VALKEY_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	host, port, _ := net.SplitHostPort(addr)
	in := start(t, map[string]string{
		"DATABASE_URL": pgtest.NewDatabase(t), "LOG_FORMAT": "json", "DATA_DIR": t.TempDir(),
		"REDIS_HOST": host, "REDIS_PORT": port, "VALKEY_KEY_PREFIX": vc.KeyPrefix(), "JWT_PRIVATE_KEY_FILE": keyFile,
		"ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "a long admin password",
	})
	if !strings.Contains(in.out.String(), `"store":"postgres `) || !strings.Contains(in.out.String(), `"auth_state":"valkey `) {
		t.Errorf("start-up configuration does not say postgres and valkey:\n%s", in.out)
	}
	tok := loginToken(t, in.url, "root@example.com", "a long admin password")
	if code, body := getWith(t, in.url+"/auth/me", tok); code != http.StatusOK {
		t.Errorf("/auth/me: %d %s", code, body)
	}
	if code, body := get(t, in.url+"/readyz"); code != http.StatusOK || !strings.Contains(body, `"valkey":{"status":"ok"}`) {
		t.Errorf("readyz: %d %s", code, body)
	}
	if code, body := post(t, in.url+"/users", `{"email":"ada@example.com","name":"Ada","password":"correct horse battery"}`); code != http.StatusCreated {
		t.Fatalf("create user: %d %s", code, body)
	}
	if code, body := get(t, in.url+"/readyz"); code != http.StatusOK {
		t.Errorf("readyz: %d %s", code, body)
	}
	in.stop(t)
}

func TestRunMigrateAndVersion(t *testing.T) {
	env := map[string]string{"SQLITE_PATH": filepath.Join(t.TempDir(), "m.db"), "DATA_DIR": t.TempDir()}
	getenv := func(k string) string { return env[k] }
	var out strings.Builder
	if err := run(context.Background(), []string{"migrate"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"migrate"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || lines[0] == "applied 0 migration(s)" || lines[1] != "applied 0 migration(s)" {
		t.Errorf("migrate twice printed %q; want some, then none", lines)
	}
	out.Reset()
	if err := run(context.Background(), []string{"version"}, getenv, &out); err != nil || !strings.HasPrefix(out.String(), "motorpool ") {
		t.Errorf("version: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"frobnicate"}, getenv, io.Discard); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Errorf("unknown command: %v", err)
	}
}

// motorpool admin create bootstraps an admin once and never overwrites a user.
func TestRunAdminCreate(t *testing.T) {
	env := map[string]string{"SQLITE_PATH": filepath.Join(t.TempDir(), "a.db"), "DATA_DIR": t.TempDir(), "ADMIN_PASSWORD": "a long admin password"}
	getenv := func(k string) string { return env[k] }
	var out strings.Builder
	if err := run(context.Background(), []string{"admin", "create", "root@example.com", "Root"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"admin", "create", "ROOT@example.com"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "created admin root@example.com") || !strings.Contains(got, "exists; left unchanged") {
		t.Errorf("admin create twice printed %q", got)
	}
	env["ADMIN_PASSWORD"] = "short"
	if err := run(context.Background(), []string{"admin", "create", "x@example.com"}, getenv, io.Discard); err == nil || !strings.HasPrefix(err.Error(), "ADMIN_PASSWORD") {
		t.Errorf("short password: %v", err)
	}
	env["ADMIN_PASSWORD"] = "a long admin password"
	for _, args := range [][]string{{"admin"}, {"admin", "create"}, {"admin", "delete", "x@example.com"}, {"admin", "create", "not-an-email"},
		{"admin", "create", "x@example.com", "Nul\x00Name"}, {"admin", "create", "x@example.com", "  "}} {
		if err := run(context.Background(), args, getenv, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	// The admin can sign in.
	in := start(t, env)
	loginToken(t, in.url, "root@example.com", "a long admin password")
	in.stop(t)
}

// Bad configuration stops the program with a line per bad variable naming it, and secrets
// stay hidden. run returns loadConfig's error before anything starts; calling loadConfig directly
// keeps a check that stopped failing from starting a server on :8080.
func TestLoadConfigBad(t *testing.T) {
	cases := []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"HTTP_ADDR": "8080"}, "HTTP_ADDR"},
		{map[string]string{"HTTP_ADDR": ":99999"}, "HTTP_ADDR"},
		{map[string]string{"DB_HOST": "db", "DB_PORT": "five"}, "DB_PORT"},
		{map[string]string{"DB_PASSWORD": "hunter2"}, "DB_HOST"},
		{map[string]string{"DATABASE_URL": "mysql://u:hunter2@h/db"}, "DATABASE_URL"},
		{map[string]string{"DB_MAX_CONNS": "0"}, "DB_MAX_CONNS"},
		{map[string]string{"DB_MAX_CONNS": "4", "DB_MIN_CONNS": "5"}, "DB_MIN_CONNS"},
		{map[string]string{"DB_CONNECT_TIMEOUT": "soon"}, "DB_CONNECT_TIMEOUT"},
		{map[string]string{"DB_QUERY_TIMEOUT": "0s"}, "DB_QUERY_TIMEOUT"},
		{map[string]string{"SHUTDOWN_TIMEOUT": "-1s"}, "SHUTDOWN_TIMEOUT"},
		{map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{map[string]string{"REDIS_HOST": "127.0.0.1"}, "JWT_PRIVATE_KEY_FILE"},
		{map[string]string{"REDIS_HOST": "h", "REDIS_PORT": "x"}, "REDIS_PORT"},
		{map[string]string{"REDIS_PASSWORD": "hunter2"}, "REDIS_HOST"},
		{map[string]string{"VALKEY_URL": "http://u:hunter2@h"}, "VALKEY_URL"},
		{map[string]string{"RABBITMQ_URL": "http://guest:hunter2@h"}, "RABBITMQ_URL"},
		{map[string]string{"RELAY_MAX_LAG": "never"}, "RELAY_MAX_LAG"},
		{map[string]string{"VALKEY_KEY_PREFIX": "a{b}"}, "VALKEY_KEY_PREFIX"},
		{map[string]string{"JWT_ACCESS_TTL": "forever"}, "JWT_ACCESS_TTL"},
		{map[string]string{"SESSION_IDLE_TTL": "0s"}, "SESSION_IDLE_TTL"},
		{map[string]string{"LOGIN_MAX_FAILURES": "0"}, "LOGIN_MAX_FAILURES"},
		{map[string]string{"PUBLIC_BASE_URL": "example.com"}, "PUBLIC_BASE_URL"},
		{map[string]string{"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"},
		{map[string]string{"ADMIN_EMAIL": "a@example.com"}, "ADMIN_PASSWORD"},
		{map[string]string{"ADMIN_EMAIL": "a@example.com", "ADMIN_PASSWORD": "hunter2"}, "ADMIN_PASSWORD"},
		// What the API refuses is refused here too: it would reach the store unchecked.
		{map[string]string{"ADMIN_EMAIL": "a@example.com", "ADMIN_PASSWORD": "a long admin password", "ADMIN_NAME": "Ada\x00"}, "ADMIN_NAME"},
		{map[string]string{"ADMIN_NAME": "Ada\u0085Lovelace"}, "ADMIN_NAME"},
		{map[string]string{"ADMIN_EMAIL": "a\u0085@example.com", "ADMIN_PASSWORD": "a long admin password"}, "ADMIN_EMAIL"},
		{map[string]string{"SMTP_HOST": "smtp.example.com"}, "SMTP_FROM"},
		{map[string]string{"SMTP_HOST": "smtp.example.com", "SMTP_FROM": "a@example.com", "SMTP_PORT": "0"}, "SMTP_PORT"},
		{map[string]string{"SERVE_DOMAINS": "users,cars", "REDIS_HOST": "h", "JWT_PRIVATE_KEY_FILE": "k.pem"}, "SERVE_DOMAINS"},
		{map[string]string{"SERVE_DOMAINS": " , ", "REDIS_HOST": "h", "JWT_PRIVATE_KEY_FILE": "k.pem"}, "SERVE_DOMAINS"},
		{map[string]string{"SERVE_DOMAINS": "users,", "REDIS_HOST": "h", "JWT_PRIVATE_KEY_FILE": "k.pem"}, "SERVE_DOMAINS"},
		{map[string]string{"SERVE_DOMAINS": "all", "REDIS_HOST": "h", "JWT_PRIVATE_KEY_FILE": "k.pem"}, "SERVE_DOMAINS"},
		// One domain alone needs the sessions shared, in Valkey.
		{map[string]string{"SERVE_DOMAINS": "vehicles"}, "SERVE_DOMAINS"},
		// Only the users process signs; a vehicles one needs at least the public keys.
		{map[string]string{"SERVE_DOMAINS": "vehicles", "REDIS_HOST": "h"}, "JWT_PRIVATE_KEY_FILE"},
		{map[string]string{"SERVE_DOMAINS": "users", "REDIS_HOST": "h", "JWT_PUBLIC_KEY_FILES": "k.pub"}, "JWT_PRIVATE_KEY_FILE"},
		{map[string]string{"REDIS_HOST": "h", "JWT_PUBLIC_KEY_FILES": "k.pub"}, "JWT_PRIVATE_KEY_FILE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadConfig(func(k string) string { return c.env[k] }, false)
			if err == nil {
				t.Fatalf("env %v: no error", c.env)
			}
			// A line per bad variable (the checks between variables may find another), each
			// naming its variable, this one first.
			msg := err.Error()
			if !strings.HasPrefix(msg, c.name) {
				t.Errorf("error %q should start with %s", msg, c.name)
			}
			for _, line := range strings.Split(msg, "\n") {
				if _, ok := lookup(strings.FieldsFunc(line, func(r rune) bool { return r == '=' || r == ':' })[0]); !ok {
					t.Errorf("error line %q does not start with a variable's name", line)
				}
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error %q leaks a password", msg)
			}
		})
	}
}

// The printed configuration masks the database password.
func TestConfigMasksSecrets(t *testing.T) {
	env := map[string]string{"DB_HOST": "db.internal", "DB_USER": "svc", "DB_PASSWORD": "hunter2", "DB_NAME": "fleet"}
	cfg, err := loadConfig(func(k string) string { return env[k] }, false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DatabaseURL != "postgres://svc:hunter2@db.internal:5432/fleet" {
		t.Errorf("DatabaseURL = %q", cfg.DatabaseURL)
	}
	printed := fmt.Sprint(cfg.describe()...)
	if strings.Contains(printed, "hunter2") || !strings.Contains(printed, "db.internal") {
		t.Errorf("describe() = %s", printed)
	}
}

// SERVE_DOMAINS is read case-insensitively and trimmed, defaults to both domains, and is in
// the start-up line of settings.
func TestLoadConfigServeDomains(t *testing.T) {
	for v, want := range map[string]string{"": "users,vehicles", "Vehicles , USERS": "users,vehicles", " users ": "users", "vehicles": "vehicles"} {
		env := map[string]string{"SERVE_DOMAINS": v, "REDIS_HOST": "h", "JWT_PRIVATE_KEY_FILE": "k.pem"}
		cfg, err := loadConfig(func(k string) string { return env[k] }, false)
		if err != nil {
			t.Errorf("SERVE_DOMAINS=%q: %v", v, err)
			continue
		}
		d := cfg.describe()
		if i := slices.Index(d, any("SERVE_DOMAINS")); i < 0 || d[i+1] != want {
			t.Errorf("SERVE_DOMAINS=%q: describe() = %v, want SERVE_DOMAINS %s", v, d, want)
		}
	}
	// A vehicles process may hold the public keys alone.
	env := map[string]string{"SERVE_DOMAINS": "vehicles", "REDIS_HOST": "h", "JWT_PUBLIC_KEY_FILES": "k.pub"}
	if _, err := loadConfig(func(k string) string { return env[k] }, false); err != nil {
		t.Errorf("a vehicles process with public keys only: %v", err)
	}
}
