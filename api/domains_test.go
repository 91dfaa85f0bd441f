package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/motorpool/motorpool/api"
)

// unknownPath is the detail of the 404 for a path no route takes.
const unknownPath = "No resource lives at this path."

// contractOperation is one operation of openapi.yaml as a request can reach it.
type contractOperation struct {
	method, path, pattern, id string
	domain                    string // x-domain
}

func contractOperations(t *testing.T) []contractOperation {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ops []contractOperation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			d, _ := op.Extensions["x-domain"].(string)
			concrete := strings.NewReplacer("{id}", "1", "{sid}", "x").Replace(path)
			ops = append(ops, contractOperation{method, concrete, method + " " + path, op.OperationID, d})
		}
	}
	return ops
}

// sendRaw makes a request with the bearer token tok ("" for none) and returns the answer whole.
func sendRaw(t *testing.T, base, method, path, tok string) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost || method == http.MethodPut {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(context.Background(), method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	// Not s.HTTP: a hidden operation's 404 is not in its contract, being no answer of it.
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// asUnknown reports whether the answer is the 404 of a path no route takes.
func asUnknown(resp *http.Response, body []byte) bool {
	var p struct{ Detail string }
	return resp.StatusCode == http.StatusNotFound && resp.Header.Get("Content-Type") == "application/problem+json" &&
		json.Unmarshal(body, &p) == nil && p.Detail == unknownPath && resp.Header.Get("Allow") == ""
}

// A process serving one domain (SERVE_DOMAINS) answers every operation of the other as an
// unknown path: 404 problem+json without Allow, logged and counted as unmatched, charged to
// no rule of its own; its own domain's operations and the operational routes are served,
// and the contract it publishes is still the whole one.
func TestServeOneDomain(t *testing.T) {
	ops := contractOperations(t)
	for _, domain := range api.Domains() {
		t.Run(string(domain), func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, backends["embedded"](t), withDomains(domain), withRateLimit(nil))
			var hidden []contractOperation
			for _, op := range ops {
				tok := ""
				if op.method == http.MethodGet {
					tok = s.token // safe to send signed in: reaches the handler past authorization
				}
				resp, body := sendRaw(t, s.URL, op.method, op.path, tok)
				switch {
				case op.domain == string(domain) || op.domain == "all":
					if asUnknown(resp, body) {
						t.Errorf("%s (%s): answered as an unknown path in the %s process", op.pattern, op.domain, domain)
					}
				case !asUnknown(resp, body):
					t.Errorf("%s (%s) in the %s process: %d %s %q, want the unknown path's 404", op.pattern, op.domain, domain,
						resp.StatusCode, resp.Header.Get("Allow"), body)
				default:
					hidden = append(hidden, op)
					if op.method == http.MethodGet {
						if resp, body := sendRaw(t, s.URL, http.MethodHead, op.path, tok); resp.StatusCode != http.StatusNotFound || len(body) > 0 {
							t.Errorf("HEAD %s: %d with %d bytes, want 404 without a body", op.path, resp.StatusCode, len(body))
						}
					}
				}
			}
			if len(hidden) == 0 {
				t.Fatal("no operation of another domain was tried")
			}

			// The one path of a domain under the other's prefix: 405 where it is served, else unknown.
			resp, body := sendRaw(t, s.URL, http.MethodPost, "/users/1/vehicles", s.token)
			if domain == api.DomainVehicles && (resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD") {
				t.Errorf("POST /users/1/vehicles: %d Allow %q, want 405 Allow GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
			}
			if domain == api.DomainUsers && !asUnknown(resp, body) {
				t.Errorf("POST /users/1/vehicles: %d Allow %q, want the unknown path's 404", resp.StatusCode, resp.Header.Get("Allow"))
			}

			for _, path := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/openapi.yaml", "/docs/", "/.well-known/jwks.json"} {
				if resp, body := sendRaw(t, s.URL, http.MethodGet, path, ""); resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
				}
			}
			_, spec := sendRaw(t, s.URL, http.MethodGet, "/openapi.json", "")
			var published struct{ Paths map[string]map[string]any }
			if err := json.Unmarshal(spec, &published); err != nil {
				t.Fatal(err)
			}
			for _, op := range hidden {
				method, path, _ := strings.Cut(op.pattern, " ")
				if published.Paths[path][strings.ToLower(method)] == nil {
					t.Errorf("/openapi.json lacks %s: the published contract must stay whole", op.pattern)
				}
			}

			_, metrics := sendRaw(t, s.URL, http.MethodGet, "/metrics", "")
			if !strings.Contains(string(metrics), `motorpool_http_requests_total{code="404",method="`+hidden[0].method+`",route="unmatched"}`) {
				t.Error("the hidden operations' 404s are not counted as unmatched")
			}
			for _, op := range hidden {
				method, path, _ := strings.Cut(op.pattern, " ")
				for _, series := range []string{`method="` + method + `",route="` + path + `"`, `rule="` + op.id + `"`} {
					if strings.Contains(string(metrics), series) {
						t.Errorf("/metrics has a series with %s, of an operation this process does not serve", series)
					}
				}
			}
			for _, line := range strings.Split(strings.TrimSpace(s.Logs.String()), "\n") {
				var e struct{ Msg, Method, Path, Route string }
				if json.Unmarshal([]byte(line), &e) != nil || e.Msg != "request" {
					continue
				}
				for _, op := range hidden {
					if e.Method == op.method && e.Path == op.path && e.Route != "unmatched" {
						t.Errorf("%s %s logged with route %q, want unmatched", e.Method, e.Path, e.Route)
					}
				}
			}
		})
	}
}

// Every operation of the contract belongs to exactly one domain, users or vehicles, or is an
// operational one every process serves; so no route is lost when the domains run apart.
func TestEveryOperationHasOneDomain(t *testing.T) {
	ops := contractOperations(t)
	got := map[string][]string{}
	for _, op := range ops {
		got[op.domain] = append(got[op.domain], op.pattern)
	}
	for d := range got {
		if d != "all" && !slices.Contains(api.Domains(), api.Domain(d)) {
			t.Errorf("operations %v have x-domain %q, not users, vehicles or all", got[d], d)
		}
	}
	all := got["all"]
	slices.Sort(all)
	if want := []string{"GET /.well-known/jwks.json", "GET /healthz", "GET /readyz"}; !slices.Equal(all, want) {
		t.Errorf("operations every process serves: %v, want %v", all, want)
	}
	if !slices.Contains(got["vehicles"], "GET /users/{id}/vehicles") {
		t.Errorf("GET /users/{id}/vehicles is not in the vehicles domain: %v", got["vehicles"])
	}
	for _, d := range api.Domains() {
		if len(got[string(d)]) == 0 {
			t.Errorf("the %s domain has no operation", d)
		}
	}
}

// SERVE_DOMAINS is a comma-separated list, case-insensitive and trimmed, read in one order
// whatever the order given; anything else is refused.
func TestParseDomains(t *testing.T) {
	for in, want := range map[string][]api.Domain{
		"users,vehicles":        {api.DomainUsers, api.DomainVehicles},
		" Vehicles , USERS ":    {api.DomainUsers, api.DomainVehicles},
		"vehicles":              {api.DomainVehicles},
		"users,users":           {api.DomainUsers},
		"users,\tvehicles\n":    {api.DomainUsers, api.DomainVehicles},
		"VEHICLES,vehicles,Use": nil,
	} {
		got, err := api.ParseDomains(in)
		if want == nil {
			if err == nil {
				t.Errorf("ParseDomains(%q) = %v, want an error", in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseDomains(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", " ", ",", "users,", ",vehicles", "users,,vehicles", "all", "cars"} {
		if got, err := api.ParseDomains(in); err == nil {
			t.Errorf("ParseDomains(%q) = %v, want an error", in, got)
		}
	}
}

// ingressRule is one row of the README's routing table.
type ingressRule struct {
	methods []string // nil: any
	paths   []*regexp.Regexp
	service string
}

// readmeRoutes reads the routing table of the README's "Running the domains apart".
func readmeRoutes(t *testing.T) []ingressRule {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Running the domains apart\n")
	if !ok {
		t.Fatal(`README.md has no section "Running the domains apart"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, table, ok := strings.Cut(section, "| method | path | service |\n|---|---|---|\n")
	if !ok {
		t.Fatal("the section has no method | path | service table")
	}
	ticked := regexp.MustCompile("`([^`]+)`")
	var rules []ingressRule
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			break
		}
		var r ingressRule
		for _, m := range ticked.FindAllStringSubmatch(cells[0], -1) {
			r.methods = append(r.methods, m[1])
		}
		for _, m := range ticked.FindAllStringSubmatch(cells[1], -1) {
			// The row's path, or the path continued after a slash; {name} is one segment.
			re := regexp.QuoteMeta(m[1])
			re = regexp.MustCompile(`\\\{[a-z]+\\\}`).ReplaceAllString(re, `[^/]+`)
			r.paths = append(r.paths, regexp.MustCompile("^"+re+"(/.*)?$"))
		}
		r.service = strings.Fields(cells[2])[0]
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		t.Fatal("the routing table has no rows")
	}
	return rules
}

// route is the service the first matching rule names, or "".
func route(rules []ingressRule, method, path string) string {
	for _, r := range rules {
		if r.methods != nil && !slices.Contains(r.methods, method) {
			continue
		}
		for _, re := range r.paths {
			if re.MatchString(path) {
				return r.service
			}
		}
	}
	return ""
}

// The README's routing table, as an ingress would apply it, sends every operation of the
// contract to a process of its domain, and the operational routes to either.
func TestReadmeRoutingTable(t *testing.T) {
	rules := readmeRoutes(t)
	for _, op := range contractOperations(t) {
		want := op.domain
		if want == "all" {
			want = "either"
		}
		methods := []string{op.method}
		if op.method == http.MethodGet {
			methods = append(methods, http.MethodHead)
		}
		for _, m := range methods {
			if got := route(rules, m, op.path); got != want {
				t.Errorf("%s %s (%s) is routed to %q, want %q", m, op.path, op.pattern, got, want)
			}
		}
	}
	for _, path := range []string{"/metrics", "/openapi.json", "/openapi.yaml", "/docs", "/docs/", "/docs/index.css"} {
		if got := route(rules, http.MethodGet, path); got != "either" {
			t.Errorf("GET %s is routed to %q, want either", path, got)
		}
	}
}
