package main

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/storage/valkey"
)

// Each row of the table is whole: a variable's name once, its meaning, its reader.
func TestSettingsTable(t *testing.T) {
	name := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	seen := map[string]bool{}
	for _, s := range settings {
		if !name.MatchString(s.name) || seen[s.name] {
			t.Errorf("%q: a variable's name must be like NAME_2 and in the table once", s.name)
		}
		seen[s.name] = true
		if s.meaning == "" || s.parse == nil || s.show == nil {
			t.Errorf("%s: needs a meaning, parse and show", s.name)
		}
		if s.def != "" && s.shown != "" {
			t.Errorf("%s: a default value (def) is shown as it is; shown is for a default that is none", s.name)
		}
	}
}

// envOf is the environment that a .env file's NAME=value lines set.
func envOf(t *testing.T, dotenv string) map[string]string {
	t.Helper()
	env := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(dotenv))
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("line %q is neither a comment nor NAME=value", line)
			}
			env[k] = v
		}
	}
	return env
}

// Setting every variable to its default, as .env.example does, changes nothing; and the
// table's defaults are the packages' own, which their tests assume.
func TestSettingsDefaults(t *testing.T) {
	none, err := loadConfig(func(string) string { return "" }, false)
	if err != nil {
		t.Fatalf("no variables set: %v", err)
	}
	env := envOf(t, settingsDotenv())
	if len(env) == 0 {
		t.Fatal("no defaults in the .env rendering")
	}
	all, err := loadConfig(func(k string) string { return env[k] }, false)
	if err != nil {
		t.Fatalf("every default set: %v", err)
	}
	if !reflect.DeepEqual(none, all) {
		t.Errorf("setting every variable to its default changes the configuration:\nnone set: %+v\nall set:  %+v", none, all)
	}
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"auth", none.Auth, auth.DefaultConfig()},
		{"rate limits", none.RateLimit, api.DefaultRateLimitConfig()},
		{"AUTH_STATE_CACHE_TTL", none.AuthStateCacheTTL, valkey.DefaultLocalTTL},
		{"SERVE_DOMAINS", none.Domains, api.Domains()},
		{"RABBITMQ_EXCHANGE", none.Events.Broker.Exchange, broker.DefaultExchange},
		{"GOGC", none.GCPercent, defaultGCPercent},
		{"LOG_FORMAT", none.LogFormat, "json"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: the table's defaults give %+v, the package's are %+v", c.what, c.got, c.want)
		}
	}
	// What describe shows of the defaults is what the table writes.
	for _, s := range settings {
		if got := s.show(&none); s.def != "" && got != s.def {
			t.Errorf("%s: its default %q shows as %q", s.name, s.def, got)
		}
	}
	if term, _ := loadConfig(func(string) string { return "" }, true); term.LogFormat != "text" {
		t.Errorf("LOG_FORMAT on a terminal = %q, want text", term.LogFormat)
	}
}

// readmeTable is README.md's text between the settings markers.
func readmeTable(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok1 := strings.Cut(string(b), "<!-- settings:begin -->\n")
	table, _, ok2 := strings.Cut(rest, "<!-- settings:end -->")
	if !ok1 || !ok2 {
		t.Fatal("README.md has no <!-- settings:begin --> and <!-- settings:end --> lines")
	}
	return table
}

// The committed .env.example and README.md's table are what the table renders.
func TestSettingsGenerated(t *testing.T) {
	b, err := os.ReadFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(settingsDotenv(), string(b)); diff != "" {
		t.Errorf(".env.example is stale: run `make generate` and commit it (-rendered +committed):\n%s", diff)
	}
	if diff := cmp.Diff(settingsMarkdown(), readmeTable(t)); diff != "" {
		t.Errorf("README.md's configuration table is stale: run `make generate` and commit it (-rendered +committed):\n%s", diff)
	}
}

// .env.example's contract with other tools: each variable on exactly one line matching
// ^#? ?NAME=, and no other line matching.
func TestSettingsDotenvContract(t *testing.T) {
	count := map[string]int{}
	for _, line := range strings.Split(settingsDotenv(), "\n") {
		if m := envLine.FindStringSubmatch(line); m != nil {
			count[m[1]]++
		}
	}
	for _, s := range settings {
		if count[s.name] != 1 {
			t.Errorf("%s is on %d lines matching %s, want 1", s.name, count[s.name], envLine)
		}
		delete(count, s.name)
	}
	for name := range count {
		t.Errorf("a line matching %s names %s, which is no setting", envLine, name)
	}
}

// Every variable the program's own code names, read from the environment (getenv,
// os.Getenv, os.LookupEnv), asked about between variables (given[...]) or named in a
// configError, is in the table: a variable cannot be read past it.
func TestSettingsCoverTheSource(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	check := func(e ast.Expr, how string) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return
		}
		name, err := strconv.Unquote(lit.Value)
		if err != nil {
			t.Fatal(err)
		}
		found++
		if _, ok := lookup(name); !ok {
			t.Errorf("%s: %s %q, which the table of settings lacks", fset.Position(lit.Pos()), how, name)
		}
	}
	for _, f := range pkgs["main"].Files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				var fn string
				switch f := n.Fun.(type) {
				case *ast.Ident:
					fn = f.Name
				case *ast.SelectorExpr:
					fn = f.Sel.Name
				}
				if (fn == "getenv" || fn == "Getenv" || fn == "LookupEnv") && len(n.Args) == 1 {
					check(n.Args[0], "reads")
				}
			case *ast.IndexExpr:
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "given" {
					check(n.Index, "asks about")
				}
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "configError" && len(n.Elts) > 0 {
					check(n.Elts[0], "reports")
				}
			}
			return true
		})
	}
	if found < 10 {
		t.Errorf("found %d names in the source: the scan no longer sees how variables are read", found)
	}
}

// No secret is printed: not at start (describe), not in an error refusing it.
func TestSettingsMaskSecrets(t *testing.T) {
	base := map[string]string{"JWT_PRIVATE_KEY_FILE": "k.pem", "RABBITMQ_URL": "amqp://mq"}
	for _, s := range settings {
		if s.secret == public {
			continue
		}
		for _, v := range []string{"hunter2 hunter2", "postgres://u:hunter2@db/motorpool", "redis://u:hunter2@h:6379",
			"amqp://u:hunter2@mq/", "mysql://u:hunter2@h/db", "postgres://u@db/motorpool?password=hunter2",
			"u:hunter2@db/motorpool", "postgres://db/motorpool?sslpassword=hunter2", "postgres://u:hunter2@/motorpool"} {
			env := map[string]string{s.name: v}
			for k, v := range base {
				env[k] = v
			}
			cfg, err := loadConfig(func(k string) string { return env[k] }, false)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("%s=%q: the error shows it: %v", s.name, v, err)
			}
			if printed := fmt.Sprint(cfg.describe()...); strings.Contains(printed, "hunter2") {
				t.Errorf("%s=%q: describe() shows it: %s", s.name, v, printed)
			}
		}
	}
}
