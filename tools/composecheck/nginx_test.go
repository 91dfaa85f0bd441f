package composecheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// route is one row of the README's routing table: the paths and the domain serving them
// ("" for either process).
type route struct {
	paths  []string
	domain string
}

// readmeRoutes reads the table under "## Running the domains apart" whose header is
// "| method | path | service |".
func readmeRoutes(readme string) []route {
	var routes []route
	section, table := false, false
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			section = strings.TrimSpace(line) == "## Running the domains apart"
			table = false
		case !section:
		case strings.ReplaceAll(line, " ", "") == "|method|path|service|":
			table = true
		case table && strings.HasPrefix(line, "|---"):
		case table && strings.HasPrefix(line, "|"):
			cells := strings.Split(line, "|")
			if len(cells) < 4 {
				continue
			}
			r := route{}
			for _, m := range regexp.MustCompile("`(/[^`]*)`").FindAllStringSubmatch(cells[2], -1) {
				r.paths = append(r.paths, m[1])
			}
			switch svc := strings.TrimSpace(cells[3]); {
			case svc == "users" || svc == "vehicles":
				r.domain = svc
			case strings.HasPrefix(svc, "either"):
			default:
				continue
			}
			routes = append(routes, r)
		default:
			table = false
		}
	}
	return routes
}

// matches is the README's rule: a path matches a row's path when it is that path or continues
// it after a "/", {id} standing for one segment.
func matches(pattern, path string) bool {
	re := regexp.QuoteMeta(pattern)
	re = strings.ReplaceAll(re, regexp.QuoteMeta("{id}"), "[^/]+")
	return regexp.MustCompile("^" + re + "(/|$)").MatchString(path)
}

// readmeRoute is the first row matching path, as the README's ingress picks it.
func readmeRoute(routes []route, path string) (route, bool) {
	for _, r := range routes {
		for _, p := range r.paths {
			if matches(p, path) {
				return r, true
			}
		}
	}
	return route{}, false
}

// location is one location block of the nginx server.
type location struct {
	modifier, pattern string // modifier: "", "=", "^~", "~" or "~*"
	upstream          string // the proxy_pass target's name, "" if none
}

func (l location) String() string {
	return strings.TrimSpace("location " + l.modifier + " " + l.pattern)
}

// nginxConfig is what the routing check needs of nginx.conf: its locations in order and the
// hosts of each upstream.
type nginxConfig struct {
	locations []location
	upstreams map[string][]string
}

var (
	comment      = regexp.MustCompile(`(?m)#.*$`)
	locationHead = regexp.MustCompile(`\blocation\s+(=|\^~|~\*|~)?\s*(\S+)\s*\{`)
	upstreamHead = regexp.MustCompile(`\bupstream\s+(\S+)\s*\{`)
	proxyPass    = regexp.MustCompile(`\bproxy_pass\s+https?://([^/;\s]+)`)
	serverLine   = regexp.MustCompile(`\bserver\s+([^:;\s]+)(:\d+)?[^;]*;`)
)

// block returns the text between the brace that ends at open and its match.
func block(text string, open int) (string, error) {
	depth := 0
	for i := open; i < len(text); i++ {
		switch text[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return text[open+1 : i], nil
			}
		}
	}
	return "", fmt.Errorf("unbalanced braces after offset %d", open)
}

func parseNginx(conf string) (nginxConfig, error) {
	conf = comment.ReplaceAllString(conf, "")
	c := nginxConfig{upstreams: map[string][]string{}}
	for _, m := range upstreamHead.FindAllStringSubmatchIndex(conf, -1) {
		body, err := block(conf, m[1]-1)
		if err != nil {
			return c, err
		}
		name := conf[m[2]:m[3]]
		for _, s := range serverLine.FindAllStringSubmatch(body, -1) {
			c.upstreams[name] = append(c.upstreams[name], s[1])
		}
	}
	for _, m := range locationHead.FindAllStringSubmatchIndex(conf, -1) {
		body, err := block(conf, m[1]-1)
		if err != nil {
			return c, err
		}
		l := location{pattern: conf[m[4]:m[5]]}
		if m[2] >= 0 {
			l.modifier = conf[m[2]:m[3]]
		}
		if p := proxyPass.FindStringSubmatch(body); p != nil {
			l.upstream = p[1]
		}
		c.locations = append(c.locations, l)
	}
	return c, nil
}

// match is the location nginx picks for path: an exact match; else the longest prefix if it
// is ^~; else the first regular expression that matches, in order; else the longest prefix.
func (c nginxConfig) match(path string) (location, bool) {
	var longest location
	found := false
	for _, l := range c.locations {
		switch l.modifier {
		case "=":
			if path == l.pattern {
				return l, true
			}
		case "", "^~":
			if strings.HasPrefix(path, l.pattern) && (!found || len(l.pattern) > len(longest.pattern)) {
				longest, found = l, true
			}
		}
	}
	if found && longest.modifier == "^~" {
		return longest, true
	}
	for _, l := range c.locations {
		if l.modifier != "~" && l.modifier != "~*" {
			continue
		}
		expr := l.pattern
		if l.modifier == "~*" {
			expr = "(?i)" + expr
		}
		if regexp.MustCompile(expr).MatchString(path) {
			return l, true
		}
	}
	return longest, found
}

// nginxConfigFile is the host file the compose file mounts as nginx's configuration.
func nginxConfigFile(t *testing.T, p *types.Project) string {
	t.Helper()
	s, err := p.GetService("nginx")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && strings.HasPrefix(v.Target, "/etc/nginx/") && strings.HasSuffix(v.Source, ".conf") {
			return v.Source
		}
	}
	t.Fatal("the nginx service mounts no configuration file under /etc/nginx/")
	return ""
}

// Every path of the README's routing table (and a path continuing it) reaches, through nginx,
// only processes that serve its domain, and a path merely starting with the same letters is
// not routed by the same location.
func TestNginxRoutesFollowReadme(t *testing.T) {
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	routes := readmeRoutes(string(readme))
	if len(routes) < 5 {
		t.Fatalf("README's routing table: %d rows read, want at least 5", len(routes))
	}
	p := loadProject(t, root, nil)
	confFile := nginxConfigFile(t, p)
	b, err := os.ReadFile(confFile)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := parseNginx(string(b))
	if err != nil {
		t.Fatalf("%s: %v", confFile, err)
	}
	domains := map[string][]string{} // compose service → the domains it serves
	for _, s := range motorpoolServices(t, p, root) {
		d := envValue(s, "SERVE_DOMAINS")
		if d == "" {
			d = "users,vehicles"
		}
		domains[s.Name] = strings.Split(d, ",")
	}

	for _, r := range routes {
		for _, pattern := range r.paths {
			path := strings.ReplaceAll(pattern, "{id}", "42")
			for _, sample := range []string{path, path + "/1"} {
				want, _ := readmeRoute(routes, sample)
				loc, ok := conf.match(sample)
				if !ok {
					t.Errorf("%s: no nginx location matches", sample)
					continue
				}
				hosts := conf.upstreams[loc.upstream]
				if len(hosts) == 0 {
					t.Errorf("%s: routed by %s to %q, which is no upstream of motorpool processes", sample, loc, loc.upstream)
					continue
				}
				for _, h := range hosts {
					served, ok := domains[h]
					if !ok {
						t.Errorf("%s: upstream %s has %s, which is no motorpool service", sample, loc.upstream, h)
					} else if want.domain != "" && !contains(served, want.domain) {
						t.Errorf("%s: the README routes it to %s, nginx (%s) to %s, which serves %v", sample, want.domain, loc, h, served)
					}
				}
			}
			near, _ := conf.match(path + "x")
			if at, _ := conf.match(path); near == at {
				t.Errorf("%sx is routed by %s, as %s is: the location does not end at a segment", path, at, path)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

func TestNginxMatch(t *testing.T) {
	conf, err := parseNginx(`http { upstream a { server x:1; server y:2 weight=2; }
		server {
			location = /exact { proxy_pass http://a; }
			location ^~ /static { proxy_pass http://s; }
			location / { proxy_pass http://root; } # location ~ ^/commented
			location ~ ^/static/re { proxy_pass http://never; }
			location ~* ^/API(/|$) { limit_except GET { deny all; } proxy_pass http://api/; }
		} }`)
	if err != nil {
		t.Fatal(err)
	}
	if got := conf.upstreams["a"]; strings.Join(got, ",") != "x,y" {
		t.Errorf("upstream a: %v", got)
	}
	for path, want := range map[string]string{
		"/exact": "a", "/exact/no": "root", "/static/re": "s", "/api/v": "api", "/apix": "root", "/": "root",
	} {
		if l, _ := conf.match(path); l.upstream != want {
			t.Errorf("match(%q) = %s → %q, want %q", path, l, l.upstream, want)
		}
	}
}

func TestReadmeRoutes(t *testing.T) {
	routes := readmeRoutes("## Running the domains apart\n\n| method | path | service |\n|---|---|---|\n" +
		"| any | `/users/{id}/vehicles` | vehicles |\n| any | `/users` | users |\n" +
		"| `GET` | `/healthz`, `/docs` | either (directly) |\n\n| setting | users |\n|---|---|\n| `X` | `/nope` |\n## Next\n")
	if len(routes) != 3 || routes[2].domain != "" || len(routes[2].paths) != 2 {
		t.Fatalf("readmeRoutes = %+v", routes)
	}
	if r, _ := readmeRoute(routes, "/users/7/vehicles/x"); r.domain != "vehicles" {
		t.Errorf("/users/7/vehicles/x: %+v, want the vehicles row (the first that matches)", r)
	}
	if r, _ := readmeRoute(routes, "/users/7"); r.domain != "users" {
		t.Errorf("/users/7: %+v", r)
	}
	if _, ok := readmeRoute(routes, "/usersx"); ok {
		t.Error("/usersx matched a row")
	}
}
