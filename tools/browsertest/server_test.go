package browsertest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the repository this module sits in (tools/browsertest → ../..).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildMotorpool compiles the checkout's server into dir, so the test drives the code of
// this tree and not whatever motorpool is on PATH. A cold build takes a while on a busy
// machine, so it has its own bound, outside the browser's.
func buildMotorpool(t *testing.T, dir string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "motorpool")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of the server in %s: %v\n%s", cmd.Dir, err, out)
	}
	return bin
}

var listening = regexp.MustCompile(`(?m)^motorpool listening on (http://\S+)$`)

// startMotorpool runs `motorpool serve` on a free loopback port with its embedded SQLite
// store and state in dir (as clients/check.sh does) and returns its base URL and the path
// of its log. env adds settings (NAME=value). The server is stopped with SIGTERM when the
// test ends.
func startMotorpool(t *testing.T, bin, dir string, env ...string) (baseURL, logPath string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath = filepath.Join(dir, "motorpool.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve")
	// Only what the server needs: nothing of a developer's DATABASE_URL or VALKEY_URL.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"HTTP_ADDR=127.0.0.1:0",
		"SQLITE_PATH=" + filepath.Join(dir, "motorpool.db"),
		"DATA_DIR=" + filepath.Join(dir, "data"),
		"LOG_LEVEL=warn",
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never orphaned
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start motorpool: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})

	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
		out, _ := os.ReadFile(logPath)
		if m := listening.FindSubmatch(out); m != nil {
			return string(m[1]), logPath
		}
		select {
		case <-done:
			t.Fatalf("motorpool exited before it listened:\n%s", out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	out, _ := os.ReadFile(logPath)
	t.Fatalf("motorpool did not print %q within 30s:\n%s", "motorpool listening on http://...", out)
	return "", ""
}
