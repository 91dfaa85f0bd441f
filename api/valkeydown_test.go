package api_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/motorpool/motorpool/client"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/valkey"
)

// startValkey runs a private server from the binaries on PATH on a free port, for tests that
// stop it. It fails (CI) or skips (elsewhere) when there is none.
func startValkey(t *testing.T) (addr string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), runValkeyOn(t, port)
}

// runValkeyOn runs a private server on port, so a test can also restart one where its
// clients expect it; the server stops at the end of the test or when stop is called.
func runValkeyOn(t *testing.T, port int) (stop func()) {
	t.Helper()
	bin, err := exec.LookPath("valkey-server")
	if err != nil {
		bin, err = exec.LookPath("redis-server")
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no valkey-server or redis-server on PATH")
		}
		t.Skip("no valkey-server or redis-server on PATH")
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start on %s", bin, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitValkeyGoneNoticed waits, a second at most, until a signed-in request (status sends one)
// answers 503 after the test stopped Valkey. Until the client has read the closed connection,
// which drops every client-side copy at once, a request racing the server's death may still
// be answered from a copy; that moment is bounded here, never the copies' TTL, and logged.
func awaitValkeyGoneNoticed(t *testing.T, status func() int) {
	t.Helper()
	stopped, served := time.Now(), 0
	for deadline := stopped.Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
		if status() == http.StatusServiceUnavailable {
			break
		}
		served++
		if time.Now().After(deadline) {
			t.Fatalf("signed-in requests were still answered %v after Valkey stopped", time.Since(stopped))
		}
	}
	t.Logf("the closed connection was noticed %v after Valkey stopped (%d requests answered meanwhile)", time.Since(stopped), served)
}

// With Valkey gone, authenticated requests and logins fail closed with 503 problem+json,
// within the store's short timeouts: never a hang, never a 500. Liveness stays up.
func TestValkeyDownFailsClosed(t *testing.T) {
	addr, stop := startValkey(t)
	vc, err := valkey.Open(context.Background(), valkey.Config{Addrs: []string{addr}, CommandTimeout: 300 * time.Millisecond, DialTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vc.Close() })
	s := newTestServer(t, backend{store: pgtest.Open(t), state: valkey.NewAuthState(vc), valkey: vc})
	ctx := context.Background()
	if r, err := s.Client.GetMeWithResponse(ctx); err != nil || r.StatusCode() != http.StatusOK {
		t.Fatalf("before: %v %d", err, r.StatusCode())
	}
	stop()
	awaitValkeyGoneNoticed(t, func() int {
		r, err := s.Client.GetMeWithResponse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r.StatusCode()
	})

	for name, call := range map[string]func() (int, []byte, http.Header){
		"authenticated GET": func() (int, []byte, http.Header) {
			r, _ := s.Client.GetUserWithResponse(ctx, s.Admin.Id, nil)
			return r.StatusCode(), r.Body, r.HTTPResponse.Header
		},
		"login": func() (int, []byte, http.Header) {
			r, _ := s.clientWith(t, "").LoginWithResponse(ctx, client.LoginJSONRequestBody{Email: adminEmail, Password: testPassword})
			return r.StatusCode(), r.Body, r.HTTPResponse.Header
		},
		"refresh": func() (int, []byte, http.Header) {
			r, _ := s.clientWith(t, "").RefreshTokensWithResponse(ctx, client.RefreshTokensJSONRequestBody{RefreshToken: "x.y.z"})
			return r.StatusCode(), r.Body, r.HTTPResponse.Header
		},
	} {
		start := time.Now()
		code, body, h := call()
		took := time.Since(start)
		if name == "refresh" {
			// A token that does not verify is refused before Valkey is asked.
			if code != http.StatusUnauthorized {
				t.Errorf("%s: %d %s, want 401", name, code, body)
			}
			continue
		}
		if code != http.StatusServiceUnavailable || h.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s with Valkey down: %d %s, want 503 problem+json", name, code, body)
		}
		if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("%s with Valkey down: Retry-After %q, want whole seconds", name, h.Get("Retry-After"))
		}
		if took > 3*time.Second {
			t.Errorf("%s took %v with Valkey down; want a prompt answer", name, took)
		}
	}
	if r, _ := s.do(t, "GET", "/healthz", "", nil); r.StatusCode != http.StatusOK {
		t.Errorf("healthz with Valkey down: %d", r.StatusCode)
	}
	if strings.Contains(s.Logs.String(), `"status":500`) {
		t.Errorf("a 500 was logged:\n%s", s.Logs.String())
	}
}
