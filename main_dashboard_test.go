package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
	"github.com/motorpool/motorpool/token"
)

// TestDashboardMetricsExist runs the program on PostgreSQL and Valkey, serves a little of
// everything (a create, a sign-in, cached reads, a 429, an event relayed to the cache
// consumer), and checks that every metric a PromQL expression of the Grafana dashboard names
// is on /metrics; and that every key the program wrote to Valkey is of a family the Valkey
// collector knows.
func TestDashboardMetricsExist(t *testing.T) {
	exprs := dashboardExprs(t, filepath.Join("deploy", "grafana", "motorpool.json"))
	want := map[string]bool{}
	for _, e := range exprs {
		for _, name := range promqlMetricNames(e) {
			want[name] = true
		}
	}
	if len(want) < 20 {
		t.Fatalf("the dashboard names only %d metrics: %v", len(want), want)
	}

	keyFile := filepath.Join(t.TempDir(), "jwt.pem")
	if _, err := token.LoadOrCreateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	vc := valkeytest.Open(t)
	addr := os.Getenv("TEST_VALKEY_ADDR")
	if addr == "" {
		addr = valkeytest.DefaultAddr
	}
	host, port, _ := net.SplitHostPort(addr)
	in := start(t, map[string]string{
		"DATABASE_URL": pgtest.NewDatabase(t), "LOG_FORMAT": "json", "DATA_DIR": t.TempDir(),
		"REDIS_HOST": host, "REDIS_PORT": port, "VALKEY_KEY_PREFIX": vc.KeyPrefix(), "JWT_PRIVATE_KEY_FILE": keyFile,
	})
	defer in.stop(t)

	code, body := post(t, in.url+"/users", `{"email":"ada@example.com","name":"Ada","password":"correct horse battery"}`)
	if code != http.StatusCreated {
		t.Fatalf("create user: %d %s", code, body)
	}
	var u struct{ ID int64 }
	if err := json.Unmarshal([]byte(body), &u); err != nil || u.ID == 0 {
		t.Fatalf("create user: %s", body)
	}
	tok := loginToken(t, in.url, "ada@example.com", "correct horse battery")
	for range 2 { // a miss, then a hit
		if code, body := getWith(t, in.url+"/users/"+strconv.FormatInt(u.ID, 10), tok); code != http.StatusOK {
			t.Fatalf("GET /users/%d: %d %s", u.ID, code, body)
		}
	}
	limited := false
	for range 6 { // POST /users allows 5 per minute per address
		if code, _ := post(t, in.url+"/users", `{}`); code == http.StatusTooManyRequests {
			limited = true
		}
	}
	if !limited {
		t.Error("no 429 from six POST /users")
	}

	// The event of the create reaches the cache consumer within the relay's poll; until then
	// its series may be missing, so look again for a while.
	var have map[string]bool
	var scrape string
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, scrape = get(t, in.url+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		have = exposedNames(scrape)
		if missing(want, have) == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if m := missing(want, have); m != nil {
		t.Errorf("the dashboard names metrics /metrics lacks: %v", m)
	}
	for _, sample := range []string{
		`motorpool_valkey_up 1`,
		`motorpool_valkey_keys_scan_truncated 0`,
		`motorpool_valkey_keys{family="other"} 0`, // every key is of a known family
		`motorpool_build_info{goversion="go`,
	} {
		if !strings.Contains(scrape, sample) {
			t.Errorf("/metrics lacks %s", sample)
		}
	}
	for _, family := range []string{"user", "session", "rate_limit"} {
		if !strings.Contains(scrape, `motorpool_valkey_keys{family="`+family+`"}`) || strings.Contains(scrape, `motorpool_valkey_keys{family="`+family+`"} 0`) {
			t.Errorf("/metrics counts no %s keys", family)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", scrape)
	}
}

func missing(want, have map[string]bool) []string {
	var out []string
	for name := range want {
		if !have[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// dashboardExprs returns every PromQL expression of the dashboard: its panels' targets (rows'
// panels too) and its query variables.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string
		Targets []struct{ Expr string }
		Panels  json.RawMessage
	}
	var d struct {
		Panels     []panel
		Templating struct {
			List []struct {
				Type       string
				Definition string
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var exprs []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q has a target without an expression", p.Title)
				}
				exprs = append(exprs, tg.Expr)
			}
			if len(p.Panels) > 0 {
				var inner []panel
				if err := json.Unmarshal(p.Panels, &inner); err != nil {
					t.Fatal(err)
				}
				walk(inner)
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			// label_values(metric, label) names a metric as an expression would.
			exprs = append(exprs, v.Definition)
		}
	}
	return exprs
}

// exposedNames are the sample names of a text exposition (a histogram's _bucket, _sum and
// _count each).
func exposedNames(exposition string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.Lines(exposition) {
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// promqlKeywords are the words of PromQL that are not metric names where a name may stand:
// aggregations, binary operators and modifiers. Functions are told by the "(" after them.
var promqlKeywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true,
	"limit_ratio": true, "and": true, "or": true, "unless": true, "atan2": true, "bool": true,
	"offset": true, "inf": true, "nan": true,
	// Each takes a parenthesised list of labels, skipped with it.
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// promqlMetricNames returns the metric names a PromQL expression selects, in order, with a
// small tokenizer: strings, label matchers {…}, ranges […], numbers and the label lists of
// by/without/on/ignoring/group_left/group_right are skipped, as are keywords and functions
// (a name followed by "("). It is not a parser; the dashboard's expressions are plain.
func promqlMetricNames(expr string) []string {
	var names []string
	isName := func(c byte, first bool) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
	}
	skipTo := func(i int, open, close byte) int { // i is at open; returns the index after its close
		depth := 0
		for ; i < len(expr); i++ {
			switch c := expr[i]; {
			case c == '"' || c == '\'' || c == '`':
				j := strings.IndexByte(expr[i+1:], c)
				if j < 0 {
					return len(expr)
				}
				i += j + 1
			case c == open:
				depth++
			case c == close:
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(expr)
	}
	nextNonSpace := func(i int) int {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\t' || expr[i] == '\n') {
			i++
		}
		return i
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := strings.IndexByte(expr[i+1:], c)
			if j < 0 {
				return names
			}
			i += j + 2
		case c == '{':
			i = skipTo(i, '{', '}')
		case c == '[':
			i = skipTo(i, '[', ']')
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isName(expr[i], false) || expr[i] == '.') {
				i++ // 0.99, 1e3, 5m
			}
		case c == '$': // a Grafana variable outside a string: $__rate_interval and the like
			i++
			for i < len(expr) && isName(expr[i], false) {
				i++
			}
		case isName(c, true):
			j := i
			for j < len(expr) && isName(expr[j], false) {
				j++
			}
			word, k := expr[i:j], nextNonSpace(j)
			i = j
			switch {
			case word == "by" || word == "without" || word == "on" || word == "ignoring" || word == "group_left" || word == "group_right":
				if k < len(expr) && expr[k] == '(' {
					i = skipTo(k, '(', ')')
				}
			case promqlKeywords[word]:
			case k < len(expr) && expr[k] == '(':
				// A function, or label_values(metric, label): its first argument is a name.
				if word == "label_values" {
					if arg, _, ok := strings.Cut(expr[k+1:], ","); ok && !strings.ContainsAny(arg, "{(") {
						names = append(names, strings.TrimSpace(arg))
					}
					i = skipTo(k, '(', ')')
				}
			default:
				names = append(names, word)
			}
		default:
			i++
		}
	}
	return names
}

func TestPromqlMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (method, route) (rate(motorpool_http_requests_total{instance=~"$instance", code=~"5.."}[$__rate_interval]))`: {"motorpool_http_requests_total"},
		`histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / on (x) group_left (y) b offset 1h > 0.5e3`:             {"a_bucket", "b"},
		`max(x{l="}"}) > bool 1 and y unless z or count_values("v", w)`:                                                      {"x", "y", "z", "w"},
		`label_values(motorpool_build_info, instance)`:                                                                       {"motorpool_build_info"},
	} {
		if diff := cmp.Diff(want, promqlMetricNames(expr)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", expr, diff)
		}
	}
}
