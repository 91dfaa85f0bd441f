package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// REFRESH_REUSE_GRACE=0 turns the grace off (RFC 9700's strict reuse detection); a negative or
// unreadable value is refused with a line naming the variable.
func TestLoadConfigRefreshReuseGrace(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 10 * time.Second, "0": 0, "0s": 0, "2s": 2 * time.Second} {
		cfg, err := loadConfig(func(k string) string {
			if k == "REFRESH_REUSE_GRACE" {
				return v
			}
			return ""
		}, false)
		if err != nil {
			t.Errorf("REFRESH_REUSE_GRACE=%q: %v", v, err)
			continue
		}
		if cfg.Auth.RefreshGrace != want {
			t.Errorf("REFRESH_REUSE_GRACE=%q: grace %v, want %v", v, cfg.Auth.RefreshGrace, want)
		}
	}
	for _, v := range []string{"-1s", "soon", "10"} {
		_, err := loadConfig(func(k string) string {
			if k == "REFRESH_REUSE_GRACE" {
				return v
			}
			return ""
		}, false)
		if err == nil || !strings.HasPrefix(err.Error(), "REFRESH_REUSE_GRACE") {
			t.Errorf("REFRESH_REUSE_GRACE=%q: err = %v, want one naming the variable", v, err)
		}
	}
}

// Run with REFRESH_REUSE_GRACE=0, a refresh token replayed at once (well within the default
// grace) ends its session: the successor it was rotated into is refused too.
func TestRunRefreshReuseWithoutGrace(t *testing.T) {
	dir := t.TempDir()
	in := start(t, map[string]string{
		"SQLITE_PATH": filepath.Join(dir, "motorpool.db"), "DATA_DIR": dir, "LOG_FORMAT": "json",
		"REFRESH_REUSE_GRACE": "0", "ADMIN_EMAIL": "root@example.com", "ADMIN_PASSWORD": "a long admin password",
	})
	defer in.stop(t)
	type tokenPair struct{ AccessToken, RefreshToken string }
	pair := func(path, body string) (int, tokenPair) {
		t.Helper()
		var p tokenPair
		code, b := post(t, in.url+path, body)
		if code == http.StatusOK {
			if err := json.Unmarshal([]byte(b), &p); err != nil {
				t.Fatal(err)
			}
		}
		return code, p
	}
	code, first := pair("/auth/login", `{"email":"root@example.com","password":"a long admin password"}`)
	if code != http.StatusOK {
		t.Fatalf("login: %d", code)
	}
	refresh := func(tok string) (int, tokenPair) {
		return pair("/auth/refresh", `{"refreshToken":"`+tok+`"}`)
	}
	code, next := refresh(first.RefreshToken)
	if code != http.StatusOK {
		t.Fatalf("refresh: %d", code)
	}
	if code, _ := refresh(first.RefreshToken); code != http.StatusUnauthorized {
		t.Fatalf("replayed refresh token: %d, want 401", code)
	}
	if code, _ := refresh(next.RefreshToken); code != http.StatusUnauthorized {
		t.Errorf("the successor after a replay without grace: %d, want 401 (the session ended)", code)
	}
	if code, _ := getWith(t, in.url+"/auth/me", next.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("the successor's access token after the replay: %d, want 401", code)
	}
}
