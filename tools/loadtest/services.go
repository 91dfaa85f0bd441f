package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// proc is a child process the run owns; stop ends it and waits, so none outlives the run.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

func startProc(name, logPath string, env []string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never orphaned
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM (motorpool saves its embedded state on it) and kills after 20 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return string(b)
}

// baseEnv is all a child gets from ours: nothing of a developer's own DATABASE_URL or
// VALKEY_URL leaks into a scenario.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls until ok answers true, p exits, or the timeout passes.
func waitFor(ctx context.Context, p *proc, timeout time.Duration, ok func() bool) error {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if ok() {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited:\n%s", p.name, p.tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s:\n%s", p.name, timeout, p.tail())
}

// build compiles motorpool from the checkout into dir.
func build(ctx context.Context, repo, dir string) (string, error) {
	return buildAs(ctx, repo, filepath.Join(dir, "motorpool"))
}

// buildRevision builds rev of the git checkout repo into dir, from a copy of its tree.
func buildRevision(ctx context.Context, repo, rev, dir string) (string, error) {
	src := filepath.Join(dir, "baseline-src")
	if err := os.MkdirAll(src, 0o700); err != nil {
		return "", err
	}
	archive := exec.CommandContext(ctx, "git", "-C", repo, "archive", "--format=tar", rev)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	var stderr strings.Builder
	archive.Stderr = &stderr
	if err := untar.Start(); err != nil {
		return "", err
	}
	if err := archive.Run(); err != nil {
		_ = untar.Wait()
		return "", fmt.Errorf("git archive %s: %w\n%s", rev, err, stderr.String())
	}
	if err := untar.Wait(); err != nil {
		return "", fmt.Errorf("unpacking %s: %w", rev, err)
	}
	return buildAs(ctx, src, filepath.Join(dir, "motorpool-baseline"))
}

func buildAs(ctx context.Context, repo, out string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = repo
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %w\n%s", repo, err, b)
	}
	return out, nil
}

// startValkey starts a private redis-server (or valkey-server) on a free loopback port.
func startValkey(ctx context.Context, dir string) (*proc, string, error) {
	bin, err := exec.LookPath("valkey-server")
	if err != nil {
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return nil, "", errors.New("neither valkey-server nor redis-server is on PATH")
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := startProc("valkey", filepath.Join(dir, "valkey.log"), baseEnv(), bin, "--bind", "127.0.0.1",
		"--port", fmt.Sprint(port), "--save", "", "--appendonly", "no", "--dir", dir)
	if err != nil {
		return nil, "", err
	}
	err = waitFor(ctx, p, 20*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if err != nil {
		p.stop()
		return nil, "", err
	}
	return p, addr, nil
}

// loopbackURL refuses a PostgreSQL URL that is not on this machine: the run is local only.
func loopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		return u, nil
	}
	return nil, fmt.Errorf("-pg %q: only a loopback PostgreSQL is allowed", raw)
}

// createDB makes a throwaway database on the server adminURL names; drop removes it.
func createDB(ctx context.Context, adminURL string) (dbURL string, drop func(), err error) {
	u, err := loopbackURL(adminURL)
	if err != nil {
		return "", nil, err
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL at %s: %w", u.Host, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "loadtest_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	drop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, adminURL)
		if err == nil {
			_, err = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "loadtest: could not drop database %s: %v\n", name, err)
		}
	}
	d := *u
	d.Path = "/" + name
	return d.String(), drop, nil
}

// writeKey writes a fresh Ed25519 signing key (the default algorithm) for the instances
// that share PostgreSQL and Valkey, so a token one issues verifies on every other.
func writeKey(dir string) (string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "jwt.pem")
	return path, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// server is one process under load: a motorpool instance or the floor.
type server struct {
	*proc
	base string // http://127.0.0.1:port
}

// startServer runs args with HTTP_ADDR on a free port and waits for GET /healthz.
func startServer(ctx context.Context, name, dir string, env map[string]string, args ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	e := append(baseEnv(), "HTTP_ADDR="+addr)
	for k, v := range env {
		e = append(e, k+"="+v)
	}
	p, err := startProc(name, filepath.Join(dir, slug(name)+".log"), e, args...)
	if err != nil {
		return nil, err
	}
	s := &server{proc: p, base: "http://" + addr}
	client := &http.Client{Timeout: time.Second}
	err = waitFor(ctx, p, 90*time.Second, func() bool {
		r, err := client.Get(s.base + "/healthz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	})
	if err != nil {
		p.stop()
		return nil, err
	}
	return s, nil
}

// startPerf starts perf record sampling pid's CPU (with call chains: Go keeps frame
// pointers) for d while the load goes on; it ends by itself after d, and wait waits for it.
func startPerf(ctx context.Context, pid int, out string, d time.Duration) (wait func() error, err error) {
	bin, err := exec.LookPath("perf")
	if err != nil {
		return nil, errors.New("-perf: perf is not on PATH")
	}
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "record", "-F", "999", "-g", "-p", fmt.Sprint(pid), "-o", out,
		"--", "sleep", fmt.Sprintf("%.3f", d.Seconds()))
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf record: %w", err)
	}
	return func() error {
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("perf record: %w\n%s", err, buf.String())
		}
		return nil
	}, nil
}

// slug makes a scenario's name a file name: "full stack, cached" → "full-stack-cached".
func slug(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// serveHello is the floor: a bare net/http hello-world, run as this program with -hello.
func serveHello(addr string) error {
	body := []byte(`{"ok":true}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	return http.ListenAndServe(addr, h)
}
