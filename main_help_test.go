package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Every bad variable is reported by one load, a line each naming it, in the table's order
// (then what the checks between variables find), and secrets stay hidden.
func TestLoadConfigEveryBadVariable(t *testing.T) {
	env := map[string]string{"HTTP_ADDR": "8080", "LOG_LEVEL": "loud", "ADMIN_EMAIL": "a@example.com",
		"DB_PASSWORD": "hunter2", "RATE_LIMIT_MAX": "0"}
	_, err := loadConfig(func(k string) string { return env[k] }, false)
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`HTTP_ADDR="8080": must be host:port, e.g. :8080 or 127.0.0.1:8080`,
		`LOG_LEVEL="loud": must be debug, info, warn or error`,
		`RATE_LIMIT_MAX="0": must be a positive whole number`,
		`DB_HOST: must be set when DB_PASSWORD is (or set DATABASE_URL)`,
		`ADMIN_PASSWORD: must be set when ADMIN_EMAIL is`,
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	// A variable refused for its own value is not reported again for what follows from it.
	env = map[string]string{"USERS_DATABASE_URL": "mysql://u:hunter2@db/users", "VEHICLES_DATABASE_URL": "postgres://v@db/vehicles"}
	_, err = loadConfig(func(k string) string { return env[k] }, false)
	if err == nil || strings.Count(err.Error(), "USERS_DATABASE_URL") != 1 || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a bad USERS_DATABASE_URL: %v, want one line naming it, without the password", err)
	}
}

// `motorpool serve` with two bad variables prints both, a line each, and exits 1; it starts
// nothing. The test binary runs main itself in a child process (TestConfigMainProcess).
func TestConfigMainPrintsEveryBadVariable(t *testing.T) {
	stderr, code := runMain(t, map[string]string{"HTTP_ADDR": "8080", "SHUTDOWN_TIMEOUT": "soon"}, "serve")
	want := "motorpool: HTTP_ADDR=\"8080\": must be host:port, e.g. :8080 or 127.0.0.1:8080\n" +
		"motorpool: SHUTDOWN_TIMEOUT=\"soon\": must be a positive duration such as 5s or 1m\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and:\n%s", code, stderr, want)
	}
	var b bytes.Buffer
	printError(&b, io.ErrUnexpectedEOF)
	if b.String() != "motorpool: unexpected EOF\n" {
		t.Errorf("printError of one error: %q", b.String())
	}
}

// runMain runs the program's main with args and only env's variables of the table set (the
// rest of this process's environment kept), returning its stderr and exit code.
func runMain(t *testing.T, env map[string]string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestConfigMainProcess$", "--"}, args...)...)
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); name != "" {
			if _, ok := lookup(name); !ok {
				cmd.Env = append(cmd.Env, kv)
			}
		}
	}
	cmd.Env = append(cmd.Env, "MOTORPOOL_TEST_MAIN=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stderr.String(), code
}

// TestConfigMainProcess is main, run by runMain in a child process.
func TestConfigMainProcess(t *testing.T) {
	if os.Getenv("MOTORPOOL_TEST_MAIN") != "1" {
		t.Skip("runs as the program, in runMain's child process")
	}
	for i, a := range os.Args {
		if a == "--" {
			os.Args = append([]string{"motorpool"}, os.Args[i+1:]...)
			break
		}
	}
	main()
	os.Exit(0)
}

// serve --help (and -h) prints serve's usage, pointing at help env, and starts nothing;
// help lists the commands; help env lists every variable.
func TestHelp(t *testing.T) {
	none := func(string) string { return "" }
	out := func(args ...string) string {
		t.Helper()
		var b bytes.Buffer
		if err := run(context.Background(), args, none, &b); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return b.String()
	}
	serve := out("serve", "--help")
	if !strings.HasPrefix(serve, "usage: motorpool [serve]") || !strings.Contains(serve, "motorpool help env") {
		t.Errorf("serve --help:\n%s", serve)
	}
	for _, args := range [][]string{{"serve", "-h"}, {"serve", "-help"}, {"help", "serve"}} {
		if got := out(args...); got != serve {
			t.Errorf("%v:\n%s\nwant what serve --help prints", args, got)
		}
	}
	if got := out("migrate", "--help"); !strings.HasPrefix(got, "usage: motorpool migrate") {
		t.Errorf("migrate --help:\n%s", got)
	}
	help := out("help")
	for _, cmd := range []string{"serve", "migrate", "version", "admin create", "token issue", "token revoke", "help"} {
		if !strings.Contains(help, "\n  "+cmd+" ") {
			t.Errorf("help does not list %s:\n%s", cmd, help)
		}
	}
	if got := out("--help"); got != help {
		t.Errorf("--help differs from help:\n%s", got)
	}
	env := out("help", "env")
	for _, s := range settings {
		if !strings.Contains(env, "\n"+s.name+" ") {
			t.Errorf("help env does not list %s", s.name)
		}
	}
	if !regexp.MustCompile(`\nDB_PASSWORD +yes +\(unset\)\n`).MatchString(env) {
		t.Errorf("help env does not flag DB_PASSWORD as secret:\n%s", env)
	}
	if got := out("help", "env", "--format=dotenv"); got != settingsDotenv() {
		t.Error("help env --format=dotenv is not .env.example's rendering")
	}
	if got := out("help", "env", "--format", "markdown"); got != settingsMarkdown() {
		t.Error("help env --format markdown is not README.md's table")
	}
	for _, args := range [][]string{{"help", "env", "--format=xml"}, {"help", "frobnicate"}, {"help", "env", "extra"}} {
		if err := run(context.Background(), args, none, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
