package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// result is one measurement of one scenario.
type result struct {
	Requests int
	RPS      float64
	P50, P99 time.Duration
	Errors   int    // answers other than 2xx, and requests that got no answer
	Hits     int    // answers with X-Cache: hit (-1: not counted, as with wrk)
	Example  string // the first error seen, to say why a run is invalid
}

// load is what one scenario is asked: GET base+path, path and token picked at random per request.
type load struct {
	base    string
	paths   []string
	headers []http.Header // one per token; none for the floor
}

func newLoad(base string, pop population) load {
	l := load{base: base}
	for _, id := range pop.vehicles {
		l.paths = append(l.paths, "/vehicles/"+strconv.FormatInt(id, 10))
	}
	for _, t := range pop.tokens {
		l.headers = append(l.headers, http.Header{"Authorization": {"Bearer " + t}})
	}
	return l
}

// generator measures one load for d with conns connections; every run ends by itself after d.
type generator interface {
	// warm runs the load for d without measuring; measure runs it and reports.
	warm(ctx context.Context, l load, d time.Duration) error
	measure(ctx context.Context, l load, d time.Duration) (result, error)
}

// vegetaGen drives the load in process with vegeta's library: conns workers, each with its own
// keep-alive connection, sending the next request as soon as the previous answer is read.
type vegetaGen struct {
	conns  int
	client *http.Client // kept from warm to measure so the connections are warm too
}

func newVegeta(conns int) *vegetaGen {
	return &vegetaGen{conns: conns}
}

func (g *vegetaGen) warm(ctx context.Context, l load, d time.Duration) error {
	if g.client != nil {
		g.client.CloseIdleConnections()
	}
	g.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: g.conns, MaxConnsPerHost: g.conns, IdleConnTimeout: time.Minute,
	}}
	_, err := g.run(ctx, l, d)
	return err
}

func (g *vegetaGen) measure(ctx context.Context, l load, d time.Duration) (result, error) {
	if g.client == nil {
		if err := g.warm(ctx, l, 0); err != nil {
			return result{}, err
		}
	}
	defer g.client.CloseIdleConnections()
	return g.run(ctx, l, d)
}

func (g *vegetaGen) run(ctx context.Context, l load, d time.Duration) (result, error) {
	if d <= 0 {
		return result{Hits: -1}, nil
	}
	targeter := func(t *vegeta.Target) error {
		t.Method, t.URL, t.Header = http.MethodGet, l.base+l.paths[rand.IntN(len(l.paths))], nil
		if len(l.headers) > 0 {
			t.Header = l.headers[rand.IntN(len(l.headers))]
		}
		return nil
	}
	n := uint64(g.conns)
	atk := vegeta.NewAttacker(vegeta.Client(g.client), vegeta.Workers(n), vegeta.MaxWorkers(n))
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	var m vegeta.Metrics
	var example string
	hits := 0
	for r := range atk.Attack(targeter, vegeta.Rate{}, d, "load") { // Rate{}: as fast as answered
		m.Add(r)
		if r.Headers.Get("X-Cache") == "hit" {
			hits++
		}
		if (r.Code < 200 || r.Code > 299) && example == "" {
			example = fmt.Sprintf("%d %s %.200s", r.Code, r.Error, r.Body)
		}
	}
	m.Close()
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	res := result{Requests: int(m.Requests), P50: m.Latencies.P50, P99: m.Latencies.P99, Example: example, Hits: hits}
	if s := (m.Duration + m.Wait).Seconds(); s > 0 {
		res.RPS = float64(m.Requests) / s
	}
	res.Errors = res.Requests
	for code, k := range m.StatusCodes {
		if c, _ := strconv.Atoi(code); c >= 200 && c <= 299 {
			res.Errors -= k
		}
	}
	return res, nil
}

// wrkGen runs wrk (one thread, conns connections) with a Lua script that picks a token and a
// path per request from files, for tokens too many for the environment.
type wrkGen struct {
	bin, dir string
	conns    int
}

const wrkScript = `
local tokens, paths = {}, {}
init = function(args)
  for l in io.lines(os.getenv("LOADTEST_TOKENS")) do tokens[#tokens + 1] = l end
  for l in io.lines(os.getenv("LOADTEST_PATHS")) do paths[#paths + 1] = l end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end
request = function()
  local h = {}
  if #tokens > 0 then h["Authorization"] = "Bearer " .. tokens[math.random(#tokens)] end
  return wrk.format("GET", paths[math.random(#paths)], h)
end
done = function(s, lat, req)
  local e = s.errors
  io.write(string.format("RESULT requests=%d us=%d p50=%d p99=%d status=%d socket=%d\n", s.requests,
    s.duration, lat:percentile(50), lat:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
`

var wrkResult = regexp.MustCompile(`RESULT requests=(\d+) us=(\d+) p50=(\d+) p99=(\d+) status=(\d+) socket=(\d+)`)

func (g *wrkGen) warm(ctx context.Context, l load, d time.Duration) error {
	_, err := g.measure(ctx, l, d)
	return err
}

func (g *wrkGen) measure(ctx context.Context, l load, d time.Duration) (result, error) {
	if d <= 0 {
		return result{}, nil
	}
	files := map[string][]string{"LOADTEST_PATHS": l.paths}
	var toks []string
	for _, h := range l.headers {
		toks = append(toks, strings.TrimPrefix(h.Get("Authorization"), "Bearer "))
	}
	files["LOADTEST_TOKENS"] = toks
	env := os.Environ()
	for k, lines := range files {
		p := filepath.Join(g.dir, strings.ToLower(k)+".txt")
		body := strings.Join(lines, "\n")
		if body != "" {
			body += "\n"
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			return result{}, err
		}
		env = append(env, k+"="+p)
	}
	script := filepath.Join(g.dir, "load.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o600); err != nil {
		return result{}, err
	}
	secs := max(1, int((d+time.Second-1)/time.Second))
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, "-t1", fmt.Sprintf("-c%d", g.conns), fmt.Sprintf("-d%ds", secs),
		"--timeout", "10s", "-s", script, l.base)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	m := wrkResult.FindStringSubmatch(string(out))
	if m == nil {
		return result{}, fmt.Errorf("wrk printed no result:\n%s", out)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	res := result{Requests: n(1), Hits: -1, P50: time.Duration(n(3)) * time.Microsecond,
		P99: time.Duration(n(4)) * time.Microsecond, Errors: n(5) + n(6)}
	if us := n(2); us > 0 {
		res.RPS = float64(res.Requests) / (float64(us) / 1e6)
	}
	if res.Errors > 0 {
		res.Example = fmt.Sprintf("wrk: %d answers over 399, %d socket errors", n(5), n(6))
	}
	return res, nil
}
