package composecheck

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// repoRoot is the repository this module sits in (tools/composecheck → ../..).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// loadProject loads docker-compose.yml as docker compose would, interpolating env (and
// nothing from this process's environment, so the result does not depend on who runs it).
func loadProject(t *testing.T, root string, env map[string]string) *types.Project {
	t.Helper()
	file := filepath.Join(root, "docker-compose.yml")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: file, Content: b}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("motorpool", true) })
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

// motorpoolServices are the services built from this repository.
func motorpoolServices(t *testing.T, p *types.Project, root string) []types.ServiceConfig {
	t.Helper()
	var out []types.ServiceConfig
	for _, s := range p.Services {
		if s.Build != nil && filepath.Clean(s.Build.Context) == root {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) == 0 {
		t.Fatal("no service of docker-compose.yml is built from the repository")
	}
	return out
}

// envValue is the value service s sets name to ("" when unset or given no value).
func envValue(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

func TestComposeLoads(t *testing.T) {
	root := repoRoot(t)
	p := loadProject(t, root, nil)
	var names []string
	for _, s := range motorpoolServices(t, p, root) {
		names = append(names, s.Name+"="+envValue(s, "SERVE_DOMAINS"))
	}
	// README: a users process and a vehicles process.
	if want := []string{"users=users", "vehicles=vehicles"}; !slices.Equal(names, want) {
		t.Errorf("motorpool services (name=SERVE_DOMAINS) %v, want %v", names, want)
	}
	for _, want := range []string{"postgres", "valkey", "rabbitmq", "nginx"} {
		if _, err := p.GetService(want); err != nil {
			t.Errorf("the plan's stack has no %s: %v", want, err)
		}
	}
	// The plan's Valkey persists with AOF.
	if v, err := p.GetService("valkey"); err == nil && !strings.Contains(strings.Join(v.Command, " "), "--appendonly yes") {
		t.Errorf("valkey's command %q does not turn on AOF (--appendonly yes)", v.Command)
	}

	// Interpolation: a variable from the environment replaces its default.
	q := loadProject(t, root, map[string]string{"MOTORPOOL_USERS_PASSWORD": "from-the-env"})
	u, err := q.GetService("users")
	if err != nil {
		t.Fatal(err)
	}
	if got := envValue(u, "USERS_DATABASE_URL"); !strings.Contains(got, ":from-the-env@") {
		t.Errorf("USERS_DATABASE_URL with MOTORPOOL_USERS_PASSWORD set: %q", got)
	}
}

// Every service that keeps running has a healthcheck, and every dependency is waited for:
// until healthy, or, for a one-shot service (no healthcheck, never restarted), until it
// completed.
func TestComposeHealthchecks(t *testing.T) {
	p := loadProject(t, repoRoot(t), nil)
	oneShot := map[string]bool{}
	for _, s := range p.Services {
		hc := s.HealthCheck
		if hc != nil && !hc.Disable && len(hc.Test) > 0 && hc.Test[0] != "NONE" {
			continue
		}
		if s.Restart != "" && s.Restart != types.RestartPolicyNo {
			t.Errorf("service %s has no healthcheck", s.Name)
			continue
		}
		oneShot[s.Name] = true
	}
	awaited := map[string]bool{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			want := types.ServiceConditionHealthy
			if oneShot[dep] {
				want = types.ServiceConditionCompletedSuccessfully
				awaited[dep] = true
			}
			if d.Condition != want {
				t.Errorf("%s depends on %s with condition %q, want %q", s.Name, dep, d.Condition, want)
			}
		}
	}
	for name := range oneShot {
		if !awaited[name] {
			t.Errorf("service %s has no healthcheck and is not a one-shot that another waits for", name)
		}
	}
}

// envName is how .env.example names a variable, set or commented out.
var envName = regexp.MustCompile(`^#? ?([A-Z][A-Z0-9_]*)=`)

// knownVariables are the variables the program reads: every name in .env.example at the
// repository root, which `make generate` writes from the table of settings and
// check-generated keeps current.
func knownVariables(t *testing.T, root string) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := envName.FindStringSubmatch(sc.Text()); m != nil {
			names[m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// Every variable set on a motorpool service is one the program reads: a misspelt one would be
// ignored without a word, and the setting silently left at its default.
func TestComposeVariablesAreRead(t *testing.T) {
	root := repoRoot(t)
	known := knownVariables(t, root)
	if len(known) == 0 {
		t.Fatal("no variable names found in .env.example")
	}
	for _, s := range motorpoolServices(t, loadProject(t, root, nil), root) {
		if len(s.Environment) == 0 {
			t.Errorf("service %s sets no environment", s.Name)
		}
		for name := range s.Environment {
			if !known[name] {
				t.Errorf("service %s sets %s, which is not in .env.example", s.Name, name)
			}
		}
	}
}

// Set and commented-out names alike are names the program reads; other lines are not.
func TestKnownVariablesFromEnvExample(t *testing.T) {
	root := t.TempDir()
	env := "# motorpool settings\nHTTP_ADDR=:8080\n# DB_HOST=db\n#LOG_LEVEL=info\n#  INDENTED=no\nlower=no\n\n"
	if err := os.WriteFile(filepath.Join(root, ".env.example"), []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range knownVariables(t, root) {
		names = append(names, n)
	}
	sort.Strings(names)
	if want := []string{"DB_HOST", "HTTP_ADDR", "LOG_LEVEL"}; !slices.Equal(names, want) {
		t.Errorf("knownVariables = %v, want %v", names, want)
	}
}
