package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a private PostgreSQL server in a temporary directory on a free port, for tests
// that stop it (never the shared server). It runs as the postgres OS user when the test runs
// as root, since postgres refuses to run as root.
type Server struct {
	tb         testing.TB
	bin, data  string
	port       int
	credential *syscall.Credential // nil: run as ourselves
	cmd        *exec.Cmd
	exited     chan struct{}
}

// StartServer initialises and starts a Server, stopped and removed when tb ends. Without
// PostgreSQL's binaries it skips tb, or fails it when $CI is set.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	bin := findBinDir(tb)
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	s := &Server{tb: tb, bin: bin, data: filepath.Join(dir, "data")}
	if os.Geteuid() == 0 {
		s.credential = postgresUser(tb)
		if err := os.Chown(dir, int(s.credential.Uid), int(s.credential.Gid)); err != nil {
			tb.Fatal(err)
		}
	}
	initdb := s.command(filepath.Join(bin, "initdb"), "-D", s.data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
	if out, err := initdb.CombinedOutput(); err != nil {
		tb.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// URL is the URL of database name on the server.
func (s *Server) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, name)
}

// CreateDatabase creates database name and returns its URL.
func (s *Server) CreateDatabase(name string) string {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		s.tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		s.tb.Fatal(err)
	}
	return s.URL(name)
}

// Start starts the server (again, after Stop) and waits until it accepts connections.
func (s *Server) Start() {
	s.tb.Helper()
	s.cmd = s.command(filepath.Join(s.bin, "postgres"), "-D", s.data, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+filepath.Dir(s.data),
		"-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=30")
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("pgtest: start postgres: %v", err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(s.cmd, s.exited)
	for deadline := time.Now().Add(30 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return
		}
		select {
		case <-s.exited:
			s.tb.Fatalf("pgtest: postgres exited at start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("pgtest: postgres did not accept connections: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down the way an operator's fast shutdown does (SIGINT: sessions
// are terminated with SQLSTATE 57P01) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.credential != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.credential}
	}
	return cmd
}

// findBinDir is the newest /usr/lib/postgresql/*/bin, or the directory of postgres on PATH.
func findBinDir(tb testing.TB) string {
	tb.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	if os.Getenv("CI") != "" {
		tb.Fatal("pgtest: no PostgreSQL binaries (initdb, postgres)")
	}
	tb.Skip("pgtest: no PostgreSQL binaries (initdb, postgres)")
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func postgresUser(tb testing.TB) *syscall.Credential {
	tb.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		tb.Skipf("pgtest: running as root and there is no postgres user to run the server as: %v", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}
