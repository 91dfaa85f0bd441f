package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/motorpool/motorpool/storage/postgres/pgtest"
)

// DB_QUERY_TIMEOUT bounds every database call of the running program, and not its
// migrations: migrate succeeds under a deadline no query could meet, and with PostgreSQL's
// packets held by a proxy of the test's own, registration answers 503 soon after the deadline
// instead of waiting for the network, then 201 once it is back, without a restart.
func TestRunBoundsDatabaseCalls(t *testing.T) {
	direct := pgtest.NewDatabase(t)
	var out strings.Builder
	migrateEnv := map[string]string{"DATABASE_URL": direct, "DB_QUERY_TIMEOUT": "1ms", "DATA_DIR": t.TempDir()}
	if err := run(context.Background(), []string{"migrate"}, func(k string) string { return migrateEnv[k] }, &out); err != nil || out.String() == "applied 0 migration(s)\n" {
		t.Fatalf("migrate with DB_QUERY_TIMEOUT=1ms: %v %q", err, out.String())
	}

	proxied, p := pgtest.BehindProxy(t, direct)
	in := start(t, map[string]string{"DATABASE_URL": proxied, "DB_QUERY_TIMEOUT": "500ms", "DATA_DIR": t.TempDir(), "LOG_FORMAT": "json", "RATE_LIMIT_ENABLED": "false"})
	register := func(email string) (*http.Response, time.Duration) {
		t.Helper()
		c := &http.Client{Timeout: 15 * time.Second}
		begin := time.Now()
		resp, err := c.Post(in.url+"/users", "application/json", strings.NewReader(`{"email":"`+email+`","name":"Ada","password":"correct horse battery"}`))
		if err != nil {
			t.Fatalf("register %s: %v after %v", email, err, time.Since(begin))
		}
		resp.Body.Close()
		return resp, time.Since(begin)
	}
	if resp, _ := register("before@example.com"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("register before the partition: %d", resp.StatusCode)
	}
	p.Hold()
	resp, took := register("during@example.com")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("register during the partition: %d %q Retry-After %q, want 503 problem+json with Retry-After", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"))
	}
	if took > 3*time.Second {
		t.Errorf("register during the partition took %v, want about DB_QUERY_TIMEOUT (500ms)", took)
	}
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	if resp, _ := register("after@example.com"); resp.StatusCode != http.StatusCreated {
		t.Errorf("register after the partition: %d", resp.StatusCode)
	}
	in.stop(t)
	if !strings.Contains(in.out.String(), `"DB_QUERY_TIMEOUT":"500ms"`) {
		t.Errorf("the start-up configuration does not show DB_QUERY_TIMEOUT")
	}
}
