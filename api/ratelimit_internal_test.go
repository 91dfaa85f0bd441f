package api

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
)

// specWithRule is a one-operation document whose x-rate-limit is raw (YAML flow style), read
// by the same loader as openapi.yaml so that the extension's values have the loader's types.
func specWithRule(t *testing.T, raw string) *openapi3.T {
	t.Helper()
	doc := fmt.Sprintf(`openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /things/{id}:
    get:
      operationId: getThing
      x-rate-limit: %s
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer}}
      responses:
        '200': {description: ok}
`, raw)
	spec, err := openapi3.NewLoader().LoadFromData([]byte(doc))
	if err != nil {
		t.Fatalf("load %s: %v", raw, err)
	}
	return spec
}

// A malformed x-rate-limit stops the service at start (parseRules fails), naming the operation;
// a well-formed one is read field by field.
func TestRateLimitParseRules(t *testing.T) {
	bad := map[string]string{
		"not an object":       `"60/min"`,
		"a list":              `[60, 1m, user]`,
		"missing limit":       `{window: 1m, per: user}`,
		"missing window":      `{limit: 5, per: user}`,
		"missing per":         `{limit: 5, window: 1m}`,
		"empty":               `{}`,
		"limit 0":             `{limit: 0, window: 1m, per: user}`,
		"negative limit":      `{limit: -3, window: 1m, per: user}`,
		"fractional limit":    `{limit: 2.5, window: 1m, per: user}`,
		"limit as a string":   `{limit: "10", window: 1m, per: user}`,
		"huge limit":          `{limit: 1e12, window: 1m, per: user}`,
		"window not duration": `{limit: 5, window: soon, per: user}`,
		"window as a number":  `{limit: 5, window: 60, per: user}`,
		"window under 1s":     `{limit: 5, window: 500ms, per: user}`,
		"negative window":     `{limit: 5, window: -1m, per: user}`,
		"per foo":             `{limit: 5, window: 1m, per: foo}`,
		"per empty":           `{limit: 5, window: 1m, per: ""}`,
		"per upper case":      `{limit: 5, window: 1m, per: USER}`,
		"unknown field":       `{limit: 5, window: 1m, per: user, burst: 10}`,
		"failClosed a string": `{limit: 5, window: 1m, per: ip, failClosed: "yes"}`,
		"failClosed a number": `{limit: 5, window: 1m, per: ip, failClosed: 1}`,
	}
	for name, raw := range bad {
		t.Run(name, func(t *testing.T) {
			rules, err := parseRules(specWithRule(t, raw))
			if err == nil {
				t.Fatalf("parseRules accepted x-rate-limit %s: %+v", raw, rules)
			}
			if !strings.Contains(err.Error(), "/things/{id}") {
				t.Errorf("error %q does not name the operation", err)
			}
		})
	}

	good := map[string]rule{
		`{limit: 5, window: 1m, per: ip}`:                      {name: "getThing", limit: 5, window: time.Minute},
		`{limit: 60, window: 1m, per: user}`:                   {name: "getThing", limit: 60, window: time.Minute, perUser: true},
		`{limit: 1, window: 1s, per: ip, failClosed: true}`:    {name: "getThing", limit: 1, window: time.Second, failClosed: true},
		`{limit: 7, window: 2h, per: user, failClosed: false}`: {name: "getThing", limit: 7, window: 2 * time.Hour, perUser: true},
	}
	for raw, want := range good {
		t.Run(raw, func(t *testing.T) {
			rules, err := parseRules(specWithRule(t, raw))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]rule{"GET /things/{id}": want}, rules, cmp.AllowUnexported(rule{})); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

// The embedded openapi.yaml carries the plan's table, keyed by the ServeMux pattern the
// middleware looks the request up by.
func TestRateLimitSpecRules(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := parseRules(spec)
	if err != nil {
		t.Fatal(err)
	}
	r := func(name string, limit int, perUser, failClosed bool) rule {
		return rule{name: name, limit: limit, window: time.Minute, perUser: perUser, failClosed: failClosed}
	}
	want := map[string]rule{
		"POST /users":               r("createUser", 5, false, false),
		"GET /users":                r("listUsers", 30, true, false),
		"GET /users/{id}":           r("getUser", 60, true, false),
		"PUT /users/{id}":           r("updateUser", 10, true, false),
		"DELETE /users/{id}":        r("deleteUser", 3, true, false),
		"GET /vehicles":             r("listVehicles", 30, true, false),
		"GET /vehicles/{id}":        r("getVehicle", 60, true, false),
		"POST /vehicles":            r("createVehicle", 10, true, false),
		"PUT /vehicles/{id}":        r("updateVehicle", 10, true, false),
		"DELETE /vehicles/{id}":     r("deleteVehicle", 5, true, false),
		"POST /auth/login":          r("login", 10, false, true),
		"POST /auth/password-reset": r("requestPasswordReset", 5, false, true),
	}
	if diff := cmp.Diff(want, rules, cmp.AllowUnexported(rule{})); diff != "" {
		t.Errorf("rules from openapi.yaml (-want +got):\n%s", diff)
	}
}

// scale multiplies a limit by a role's multiplier and rounds down, never below 1, and without
// losing a request to floating-point error (100 × 0.29 is 28.999999999999996 in float64).
func TestRateLimitScale(t *testing.T) {
	cases := []struct {
		limit int
		mult  float64
		want  int
	}{
		{5, 0.5, 2}, // createUser for a guest: floor(2.5)
		{4, 0.5, 2},
		{1, 0.5, 1}, // never 0: the limiter refuses a limit below 1
		{3, 0.1, 1},
		{60, 10, 600},
		{100, 1, 100},
		{10, 0.7, 7},
		{100, 0.29, 29},
		{100, 0.57, 57},
		{1000, 0.01, 10},
		{3, 1.0 / 3, 1},
		{7, 1.5, 10},
		{1e9, 1000, 1e12},
	}
	for _, c := range cases {
		if got := scale(c.limit, c.mult); got != c.want {
			t.Errorf("scale(%d, %v) = %d, want %d", c.limit, c.mult, got, c.want)
		}
	}
}

// An IPv6 client controls its /64, so it counts as one subject; IPv4 addresses count alone.
func TestRateLimitIPSubject(t *testing.T) {
	cases := map[string]string{
		"203.0.113.7":                      "ip:{203.0.113.7}",
		"203.0.113.8":                      "ip:{203.0.113.8}",
		"2001:db8::1":                      "ip:{2001:db8::/64}",
		"2001:db8::2":                      "ip:{2001:db8::/64}",
		"2001:db8:0:0:ffff:ffff:ffff:ffff": "ip:{2001:db8::/64}",
		"2001:db8:0:1::1":                  "ip:{2001:db8:0:1::/64}",
		"2001:db8:1::1":                    "ip:{2001:db8:1::/64}",
		"::1":                              "ip:{::/64}",
	}
	for ip, want := range cases {
		if got := ipSubject(ip); got != want {
			t.Errorf("ipSubject(%s) = %s, want %s", ip, got, want)
		}
	}
	if a, b := ipSubject("fe80::1%eth0"), ipSubject("fe80::2%eth1"); a != b || a != "ip:{fe80::/64}" {
		t.Errorf("zoned addresses of one /64: %s and %s, want both ip:{fe80::/64}", a, b)
	}
	if a, b := ipSubject("2001:db8::1"), ipSubject("2001:db9::1"); a == b {
		t.Errorf("different /64s share the subject %s", a)
	}
}

// alerts reports a subject once when it is limited more than the threshold within the window,
// and again only after the window has passed.
func TestRateLimitAlerts(t *testing.T) {
	a := &alerts{threshold: 3, window: time.Hour, seen: map[string]*alertEntry{}}
	var got []bool
	for range 6 {
		got = append(got, a.limited("ip:{203.0.113.7}"))
	}
	if diff := cmp.Diff([]bool{false, false, false, true, false, false}, got); diff != "" {
		t.Errorf("alerts for one subject (-want +got):\n%s", diff)
	}
	if a.limited("ip:{203.0.113.8}") {
		t.Error("another subject was reported on its first limit")
	}
	short := &alerts{threshold: 1, window: 50 * time.Millisecond, seen: map[string]*alertEntry{}}
	short.limited("s")
	if !short.limited("s") {
		t.Fatal("threshold 1: the second limit was not reported")
	}
	time.Sleep(60 * time.Millisecond)
	short.limited("s")
	if !short.limited("s") {
		t.Error("after the window the subject was not reported again")
	}
}

// The suspicious-activity threshold counts a subject's refusals whichever bucket refused.
func TestRateLimitKeySubject(t *testing.T) {
	for key, want := range map[string]string{
		"rate_limit:ip:{203.0.113.7}:getUser":      "ip:{203.0.113.7}",
		"rate_limit:ip:{203.0.113.7}:global":       "ip:{203.0.113.7}",
		"rate_limit:ip:{2001:db8::/64}:createUser": "ip:{2001:db8::/64}",
		"rate_limit:user:{42}:global":              "user:{42}",
		"rate_limit:user:{42}:deleteVehicle":       "user:{42}",
	} {
		if got := keySubject(key); got != want {
			t.Errorf("keySubject(%s) = %s, want %s", key, got, want)
		}
	}
}
