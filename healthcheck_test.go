package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHealthcheckURL(t *testing.T) {
	for _, c := range []struct{ addr, want string }{
		{":8080", "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0:8080", "http://127.0.0.1:8080/healthz"},
		{"[::]:9000", "http://127.0.0.1:9000/healthz"},
		{"127.0.0.1:8080", "http://127.0.0.1:8080/healthz"},
		{"10.1.2.3:8080", "http://10.1.2.3:8080/healthz"},
		{"[::1]:8080", "http://[::1]:8080/healthz"},
		{"localhost:8080", "http://localhost:8080/healthz"},
	} {
		got, err := healthcheckURL(c.addr)
		if err != nil || got != c.want {
			t.Errorf("healthcheckURL(%q) = %q, %v; want %q", c.addr, got, err, c.want)
		}
	}
	for _, bad := range []string{"8080", "localhost", "host:"} {
		if got, err := healthcheckURL(bad); err == nil {
			t.Errorf("healthcheckURL(%q) = %q, want an error", bad, got)
		}
	}
}

// The subcommand as the container runs it: through run, with HTTP_ADDR from the environment.
func TestHealthcheckCommand(t *testing.T) {
	status := http.StatusOK
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		w.WriteHeader(status)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	getenv := func(k string) string {
		if k == "HTTP_ADDR" {
			return addr
		}
		return ""
	}
	var out strings.Builder
	if err := run(context.Background(), []string{"healthcheck"}, getenv, &out); err != nil {
		t.Fatalf("a server answering 200: %v", err)
	}
	if path != "/healthz" {
		t.Errorf("asked for %q, want /healthz", path)
	}
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusFound, http.StatusNotFound} {
		status = code
		if err := run(context.Background(), []string{"healthcheck"}, getenv, &out); err == nil {
			t.Errorf("a server answering %d: no error", code)
		}
	}
	if err := run(context.Background(), []string{"healthcheck", "extra"}, getenv, &out); err == nil {
		t.Error("healthcheck with an argument: no error")
	}
}

func TestHealthcheckNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := healthcheck(context.Background(), func(string) string { return addr }, &strings.Builder{}); err == nil {
		t.Error("no server: no error")
	}
}

// A server that accepts the connection but never answers fails the probe within its bound.
func TestHealthcheckHungServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	if err := healthcheck(context.Background(), func(string) string { return ln.Addr().String() }, &strings.Builder{}); err == nil {
		t.Error("a server that never answers: no error")
	}
	if d := time.Since(start); d > healthcheckTimeout+time.Second {
		t.Errorf("took %v, want about %v", d, healthcheckTimeout)
	}
}

// Against the real server in embedded mode, on the port it picked.
func TestHealthcheckServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	in := startWith(t, ctx, map[string]string{"SQLITE_PATH": filepath.Join(t.TempDir(), "m.db"), "DATA_DIR": t.TempDir()})
	defer in.wait(t)
	defer cancel()
	addr := strings.TrimPrefix(in.url, "http://")
	var out strings.Builder
	if err := run(ctx, []string{"healthcheck"}, func(k string) string { return map[string]string{"HTTP_ADDR": addr}[k] }, &out); err != nil {
		t.Fatalf("healthcheck against the running server: %v", err)
	}
}
