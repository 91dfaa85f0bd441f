package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
	"github.com/motorpool/motorpool/token"
)

// `motorpool token revoke` denies a service token, given whole or by its jti, on every instance
// sharing the Valkey, at once; other service tokens keep working. Without Valkey it says why
// it cannot, and bad arguments are refused.
func TestRunTokenRevoke(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "jwt.pem")
	key, err := token.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	vc := valkeytest.Open(t)
	addr := os.Getenv("TEST_VALKEY_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	host, port, _ := net.SplitHostPort(addr)
	env := func() map[string]string {
		dir := t.TempDir()
		return map[string]string{
			"SQLITE_PATH": filepath.Join(dir, "motorpool.db"), "DATA_DIR": dir, "LOG_FORMAT": "json",
			"REDIS_HOST": host, "REDIS_PORT": port, "VALKEY_KEY_PREFIX": vc.KeyPrefix(), "JWT_PRIVATE_KEY_FILE": keyFile,
		}
	}
	cli := func(e map[string]string, args ...string) (string, error) {
		var out strings.Builder
		err := run(context.Background(), args, func(k string) string { return e[k] }, &out)
		return strings.TrimSpace(out.String()), err
	}
	issue := func(name string) string {
		t.Helper()
		tok, err := cli(env(), "token", "issue", "--service", name)
		if err != nil {
			t.Fatalf("token issue: %v", err)
		}
		return tok
	}
	a, b := start(t, env()), start(t, env())
	defer b.wait(t)
	defer a.stop(t) // SIGTERM stops both
	reporting, billing, audit := issue("reporting"), issue("billing"), issue("audit")
	status := func(in *instance, tok string) int {
		code, _ := getWith(t, in.url+"/vehicles", tok)
		return code
	}
	for _, tok := range []string{reporting, billing, audit} {
		if code := status(a, tok); code != http.StatusOK {
			t.Fatalf("a fresh service token: %d, want 200", code)
		}
	}

	if out, err := cli(env(), "token", "revoke", reporting); err != nil || !strings.Contains(out, "revoked token") {
		t.Fatalf("token revoke TOKEN = %q, %v", out, err)
	}
	iss, err := token.NewIssuer(token.Config{Issuer: "motorpool", Audience: "motorpool-api", AccessTTL: time.Hour, RefreshTTL: time.Hour}, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := iss.Verify(billing, token.Access)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cli(env(), "token", "revoke", "--jti", c.ID); err != nil || !strings.Contains(out, c.ID) {
		t.Fatalf("token revoke --jti = %q, %v", out, err)
	}
	for name, in := range map[string]*instance{"one instance": a, "another": b} {
		for what, tok := range map[string]string{"revoked by token": reporting, "revoked by jti": billing} {
			if code := status(in, tok); code != http.StatusUnauthorized {
				t.Errorf("%s, %s: %d, want 401", name, what, code)
			}
		}
		if code := status(in, audit); code != http.StatusOK {
			t.Errorf("%s, a service token not revoked: %d, want 200", name, code)
		}
	}

	embedded := env()
	delete(embedded, "REDIS_HOST")
	delete(embedded, "REDIS_PORT")
	for _, args := range [][]string{
		{"token", "revoke"},
		{"token", "revoke", audit, "--jti", "x"},
		{"token", "revoke", "--jti", "x", audit},
		{"token", "revoke", "--ttl", "1h", audit},
		{"token", "revoke", "not-a-token"},
		{"token", "revoke", "--jti", "a{b}"},
		{"token", "revoke", "--jti", "x", "--ttl", "0s"},
	} {
		if out, err := cli(env(), args...); err == nil {
			t.Errorf("%v: no error (out %q)", args, out)
		}
	}
	if _, err := cli(embedded, "token", "revoke", audit); err == nil || !strings.Contains(err.Error(), "Valkey") {
		t.Errorf("token revoke without Valkey: err = %v, want one naming Valkey", err)
	}
	if code := status(a, audit); code != http.StatusOK {
		t.Errorf("a service token after refused revocations: %d, want 200", code)
	}
}
