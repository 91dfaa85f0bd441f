package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/breaker"
)

// RateLimitFamily is the key family of the limiter's buckets: rate_limit:<subject>:<operation>.
const RateLimitFamily = "rate_limit"

// RateLimitConfig configures the limiter middleware. The zero value is not usable: start from
// DefaultRateLimitConfig.
type RateLimitConfig struct {
	Store       storage.Limiter // the shared store (Valkey), or the in-process limiter
	Fallback    storage.Limiter // in-process limiter used while Store is unreachable (fail-open)
	Algorithm   storage.Algorithm
	IPMax       int                      // every request, per client IP (RATE_LIMIT_IP_MAX)
	UserMax     int                      // every request, per signed-in user (RATE_LIMIT_USER_MAX)
	DefaultMax  int                      // operations without a rule (RATE_LIMIT_MAX)
	Window      time.Duration            // the global rules' and the default rule's window (RATE_LIMIT_TTL)
	Multipliers map[storage.Role]float64 // scale the rules counted per user; per-IP rules never
	GuestMult   float64                  // per-user rules of callers without a valid token (by address)
	FailClosed  bool                     // RATE_LIMIT_FAIL_MODE=closed: refuse while the store is away
	// Timeout bounds a call to Store.
	Timeout time.Duration
	// AlertThreshold limits of one subject within AlertWindow log one WARN and count a
	// suspicious-activity event.
	AlertThreshold int
	AlertWindow    time.Duration
	// BreakerFailures consecutive store failures send every request to the fallback for
	// BreakerCooldown before the store is tried again.
	BreakerFailures int
	BreakerCooldown time.Duration
}

// DefaultRateLimitConfig returns the plan's defaults (the store still has to be set).
func DefaultRateLimitConfig() RateLimitConfig {
	return RateLimitConfig{
		Algorithm: storage.TokenBucket, IPMax: 100, UserMax: 100, DefaultMax: 10, Window: time.Minute,
		Multipliers: map[storage.Role]float64{storage.RoleAdmin: 10, storage.RoleUser: 1}, GuestMult: 0.5,
		Timeout: 50 * time.Millisecond, AlertThreshold: 50, AlertWindow: 5 * time.Minute,
		BreakerFailures: 3, BreakerCooldown: 2 * time.Second,
	}
}

// rule is one limit: the operation's x-rate-limit, the default, or a global rule.
type rule struct {
	name       string // "getUser", "global"
	limit      int
	window     time.Duration
	perUser    bool // per user (IP for guests); else per IP
	failClosed bool
	// Resolved once at start, as they are used on every request: the name as a structured
	// field string, and the rule's allowed counter.
	quoted  string
	allowed prometheus.Counter
}

// parseRules reads every operation's x-rate-limit; a malformed rule stops the service.
func parseRules(spec *openapi3.T) (map[string]rule, error) {
	rules := map[string]rule{} // by "METHOD /path", the ServeMux pattern the route is under
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			raw, ok := op.Extensions["x-rate-limit"]
			if !ok {
				continue
			}
			m, ok := raw.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s %s: x-rate-limit is not an object", method, path)
			}
			r := rule{name: op.OperationID}
			for k, v := range m {
				switch k {
				case "limit":
					f, ok := v.(float64)
					if !ok || f < 1 || f != math.Trunc(f) || f > 1e9 {
						return nil, fmt.Errorf("%s %s: x-rate-limit limit %v is not a positive whole number", method, path, v)
					}
					r.limit = int(f)
				case "window":
					str, _ := v.(string)
					d, err := time.ParseDuration(str)
					if err != nil || d < time.Second {
						return nil, fmt.Errorf("%s %s: x-rate-limit window %v is not a duration of at least 1s", method, path, v)
					}
					r.window = d
				case "per":
					switch v {
					case "user":
						r.perUser = true
					case "ip":
					default:
						return nil, fmt.Errorf("%s %s: x-rate-limit per %v is not user or ip", method, path, v)
					}
				case "failClosed":
					b, ok := v.(bool)
					if !ok {
						return nil, fmt.Errorf("%s %s: x-rate-limit failClosed %v is not a boolean", method, path, v)
					}
					r.failClosed = b
				default:
					return nil, fmt.Errorf("%s %s: x-rate-limit has an unknown field %q", method, path, k)
				}
			}
			if r.limit == 0 || r.window == 0 {
				return nil, fmt.Errorf("%s %s: x-rate-limit needs limit and window", method, path)
			}
			if _, per := m["per"]; !per {
				return nil, fmt.Errorf("%s %s: x-rate-limit needs per: user or ip", method, path)
			}
			rules[method+" "+path] = r
		}
	}
	return rules, nil
}

// rateLimiter is the middleware's state.
type rateLimiter struct {
	cfg      RateLimitConfig
	rules    map[string]rule  // by route pattern: x-rate-limit, or the default rule
	globalIP rule             // every request, per IP
	globalU  rule             // every signed-in request, per user
	exempt   map[string]bool  // route patterns never limited
	breaker  *breaker.Breaker // sends calls to the fallback while the store is away
	log      *slog.Logger
	alerts   *alerts
	allowed  *prometheus.CounterVec
	limited  *prometheus.CounterVec
	errors   *prometheus.CounterVec
	fallback *prometheus.CounterVec
	suspects prometheus.Counter
	logEvery sampler
}

// subject is whom a rule counts: "ip:{addr}" or "user:{id}".
func ipSubject(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err == nil && a.Is6() && !a.Is4In6() {
		// An IPv6 client controls its whole /64: count them together.
		p, _ := a.Prefix(64)
		return "ip:{" + p.String() + "}"
	}
	return "ip:{" + ip + "}"
}

func (l *rateLimiter) multiplier(c auth.Caller, ok bool) float64 {
	if !ok {
		return l.cfg.GuestMult
	}
	if m, found := l.cfg.Multipliers[c.Role]; found {
		return m
	}
	return 1
}

// scale is limit × mult rounded down, at least 1. A product within float64 error of a whole
// number is that number: 100 × 0.29 is 28.999999999999996 in float64, and means 29.
func scale(limit int, mult float64) int {
	p := float64(limit) * mult
	if n := math.Round(p); math.Abs(p-n) <= 1e-9*math.Max(1, n) {
		p = n
	}
	return max(1, int(math.Floor(p)))
}

type check struct {
	rule rule
	req  storage.LimitRequest
}

// checks lists the buckets a request counts against: the global IP rule, the global user rule
// when signed in, and the operation's rule. Rules counted per IP hold the spec's numbers for
// everyone, since one address may carry callers of every role; the role's multiplier scales
// the rules counted per user, and a guest's per-user rules (counted by address) get the
// guest's.
func (l *rateLimiter) checks(ip string, c auth.Caller, signedIn bool, pattern string) []check {
	mult := l.multiplier(c, signedIn)
	ip = ipSubject(ip)
	user := ""
	if signedIn {
		user = "user:{" + strconv.FormatInt(c.UserID, 10) + "}"
	}
	mk := func(ru rule, subject, op string) check {
		if ru.perUser {
			ru.limit = scale(ru.limit, mult)
		}
		return check{rule: ru, req: storage.LimitRequest{Key: RateLimitFamily + ":" + subject + ":" + op, Limit: ru.limit, Window: ru.window, Algorithm: l.cfg.Algorithm}}
	}
	out := make([]check, 0, 3)
	out = append(out, mk(l.globalIP, ip, "global"))
	if signedIn {
		out = append(out, mk(l.globalU, user, "global"))
	}
	ru, ok := l.rules[pattern]
	if !ok { // no operation: an unknown path; the global rules are enough
		return out
	}
	subject := ip
	if ru.perUser && signedIn {
		subject = user
	}
	return append(out, mk(ru, subject, ru.name))
}

// limitRequests are the checks' bucket requests.
func limitRequests(checks []check) []storage.LimitRequest {
	reqs := make([]storage.LimitRequest, len(checks))
	for i, c := range checks {
		reqs[i] = c.req
	}
	return reqs
}

// decide is the admission's limit step: the buckets the request counts against, as the caller
// identification decided (signed in with the session's role, or a guest by address), charged
// in one call to the store, or to the fallback while the store is away.
func (l *rateLimiter) decide(ctx context.Context, a admission, pattern string) limitDecision {
	if l.exempt[pattern] || a.signedIn && a.caller.Role == auth.RoleService {
		return limitDecision{exempt: true}
	}
	d := limitDecision{checks: l.checks(a.client.IP, a.caller, a.signedIn, pattern)}
	d.results, d.err = l.allow(ctx, d.checks)
	return d
}

// apply acts on the limit step's decision: the rate-limit headers, and 429 or 503 when it
// refuses or could not decide. It reports whether the request goes on.
func (l *rateLimiter) apply(w http.ResponseWriter, r *http.Request, d limitDecision) bool {
	if d.exempt {
		return true
	}
	if d.err != nil {
		stateOf(r).err = d.err
		writeUnavailable(w, "The rate limiter cannot decide now; try again shortly.")
		return false
	}
	l.headers(w, d.checks, d.results)
	// When several rules refuse, the longest wait is the one that makes all of them allow.
	denied := -1
	for i, res := range d.results {
		if !res.Allowed && (denied < 0 || res.RetryAfter > d.results[denied].RetryAfter) {
			denied = i
		}
	}
	if denied >= 0 {
		l.deny(w, r, d.checks[denied], d.results[denied])
		return false
	}
	for _, c := range d.checks {
		c.rule.allowed.Inc()
	}
	return true
}

// errLimiterDown: the store is unreachable and the policy (or a fail-closed rule) refuses.
var errLimiterDown = errors.New("rate limiter store unreachable")

// allow asks the store, or the in-process fallback while the store is away.
func (l *rateLimiter) allow(ctx context.Context, checks []check) ([]storage.LimitResult, error) {
	if l.breaker.Allow() {
		cctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
		res, err := l.cfg.Store.Allow(cctx, limitRequests(checks))
		cancel()
		// A caller that went away says nothing about the store.
		if ctx.Err() == nil {
			l.breaker.Record(err)
		}
		if err == nil {
			return res, nil
		}
		l.storeFailed(checks, err)
	}
	return l.fallbackAllow(ctx, checks)
}

// storeFailed counts and logs a store call that failed.
func (l *rateLimiter) storeFailed(checks []check, err error) {
	for _, c := range checks {
		l.errors.WithLabelValues(c.rule.name).Inc()
	}
	l.log.Warn("rate limiter store failed", "error", err.Error())
}

// fallbackAllow decides while the store is away: refuse (fail-closed, or a rule that always
// fails closed) or ask the in-process fallback.
func (l *rateLimiter) fallbackAllow(ctx context.Context, checks []check) ([]storage.LimitResult, error) {
	failClosed := l.cfg.FailClosed
	for _, c := range checks {
		failClosed = failClosed || c.rule.failClosed
	}
	if failClosed || l.cfg.Fallback == nil {
		return nil, errLimiterDown
	}
	for _, c := range checks {
		l.fallback.WithLabelValues(c.rule.name).Inc()
	}
	return l.cfg.Fallback.Allow(ctx, limitRequests(checks))
}

// headers describes the bucket with the least remaining (X-RateLimit-*, RateLimit) and every
// policy (RateLimit-Policy).
func (l *rateLimiter) headers(w http.ResponseWriter, checks []check, results []storage.LimitResult) {
	least := 0
	for i, res := range results {
		cur := results[least]
		if res.Remaining < cur.Remaining || !res.Allowed && cur.Allowed ||
			// Of two refusals, the longer wait, the one the 429 reports.
			!res.Allowed && !cur.Allowed && res.Remaining == cur.Remaining && res.RetryAfter > cur.RetryAfter {
			least = i
		}
	}
	res := results[least]
	reset := int64(math.Ceil(res.Reset.Seconds()))
	// The Unix second at or after the moment the bucket is full: adding the rounded-up delay
	// to the rounded-down current second could name a second up to 1 s early.
	full := time.Now().Add(res.Reset)
	fullUnix := full.Unix()
	if full.Nanosecond() > 0 {
		fullUnix++
	}
	// Set directly under the canonical names (what Header.Set would make of them), sparing the
	// conversion on every request.
	h := w.Header()
	vals := make([]string, 5) // one allocation for the five fields' values
	set := func(i int, name, v string) {
		vals[i] = v
		h[name] = vals[i : i+1 : i+1]
	}
	set(0, "X-Ratelimit-Limit", strconv.Itoa(res.Limit))
	set(1, "X-Ratelimit-Remaining", strconv.Itoa(max(res.Remaining, 0)))
	set(2, "X-Ratelimit-Reset", strconv.FormatInt(fullUnix, 10))
	// Built by hand: this runs on every request, and fmt's reflection showed in profiles.
	b := make([]byte, 0, 64*len(checks))
	for i, c := range checks {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, c.rule.quoted...)
		b = append(b, ";q="...)
		b = strconv.AppendInt(b, int64(c.rule.limit), 10)
		b = append(b, ";w="...)
		// Whole seconds, rounded up: a client pacing itself by w never goes faster than allowed.
		b = strconv.AppendInt(b, int64((c.rule.window+time.Second-1)/time.Second), 10)
	}
	set(3, "Ratelimit-Policy", string(b))
	b = append(b[:0], checks[least].rule.quoted...)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, int64(max(res.Remaining, 0)), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, reset, 10)
	set(4, "Ratelimit", string(b))
}

func policyName(r rule) string { return strings.ReplaceAll(r.name, " ", "-") }

// deny answers 429. Retry-After is rounded up, so a client that waits exactly that long
// succeeds.
func (l *rateLimiter) deny(w http.ResponseWriter, r *http.Request, c check, res storage.LimitResult) {
	retry := int64(math.Ceil(res.RetryAfter.Seconds()))
	if retry < 1 {
		retry = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(retry, 10))
	l.limited.WithLabelValues(c.rule.name).Inc()
	subject := c.req.Key
	if l.logEvery.ok(c.rule.name) {
		l.log.Info("rate limited", "rule", c.rule.name, "key", subject, "retry_after_s", retry, "request_id", stateOf(r).id)
	}
	// Suspicion is per subject (an address or a user), whichever of its buckets refused.
	if who := keySubject(subject); l.alerts.limited(who) {
		l.suspects.Inc()
		l.log.Warn("suspicious activity: subject rate limited repeatedly", "subject", who, "key", subject,
			"threshold", l.cfg.AlertThreshold, "window", l.cfg.AlertWindow.String())
	}
	per := "IP" // a guest's per-user rules count its address
	if strings.HasPrefix(subject, "rate_limit:user:") {
		per = "user"
	}
	writeProblem(w, newProblem(http.StatusTooManyRequests, fmt.Sprintf(
		"Rate limit %q exceeded: %d requests per %s per %s. Retry in %d s.", c.rule.name, c.rule.limit, c.rule.window, per, retry)))
}

// keySubject is the subject part of a bucket key: "ip:{203.0.113.7}" of
// "rate_limit:ip:{203.0.113.7}:getUser".
func keySubject(key string) string {
	s := strings.TrimPrefix(key, "rate_limit:")
	if i := strings.LastIndexByte(s, '}'); i >= 0 {
		return s[:i+1]
	}
	return s
}

// sampler lets one log line per rule through each second.
type sampler struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (s *sampler) ok(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.last == nil {
		s.last = map[string]time.Time{}
	}
	if now.Sub(s.last[key]) < time.Second {
		return false
	}
	s.last[key] = now
	if len(s.last) > 10000 {
		clear(s.last)
	}
	return true
}

// alerts counts limits per subject in a window and reports the one that crosses the threshold.
type alerts struct {
	mu        sync.Mutex
	threshold int
	window    time.Duration
	seen      map[string]*alertEntry
}

type alertEntry struct {
	start   time.Time
	n       int
	alerted bool
}

func (a *alerts) limited(subject string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	e := a.seen[subject]
	if e == nil || now.Sub(e.start) > a.window {
		if len(a.seen) > 100000 {
			for k, v := range a.seen {
				if now.Sub(v.start) > a.window {
					delete(a.seen, k)
				}
			}
		}
		e = &alertEntry{start: now}
		a.seen[subject] = e
	}
	e.n++
	if e.n > a.threshold && !e.alerted {
		e.alerted = true
		return true
	}
	return false
}

// newRateLimiter prepares the middleware for spec's operations.
func newRateLimiter(cfg RateLimitConfig, spec *openapi3.T, reg prometheus.Registerer, log *slog.Logger) (*rateLimiter, error) {
	if cfg.Store == nil {
		return nil, errors.New("rate limit: no store")
	}
	rules, err := parseRules(spec)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	l := &rateLimiter{cfg: cfg, rules: rules, log: log,
		breaker: breaker.New(cfg.BreakerFailures, cfg.BreakerCooldown, nil),
		alerts:  &alerts{threshold: cfg.AlertThreshold, window: cfg.AlertWindow, seen: map[string]*alertEntry{}},
		exempt: map[string]bool{
			"GET /healthz": true, "GET /readyz": true, "GET /.well-known/jwks.json": true, "GET /metrics": true,
			"GET /docs": true, "GET /docs/": true, "GET /openapi.json": true, "GET /openapi.yaml": true,
		}}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if pattern := method + " " + path; rules[pattern].name == "" {
				rules[pattern] = rule{name: op.OperationID, limit: cfg.DefaultMax, window: cfg.Window, perUser: true}
			}
		}
	}
	vec := func(name, help string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"rule"})
		reg.MustRegister(v)
		return v
	}
	l.allowed = vec("motorpool_ratelimit_allowed_total", "Requests a rate-limit rule let through.")
	l.limited = vec("motorpool_ratelimit_limited_total", "Requests a rate-limit rule refused (429).")
	l.errors = vec("motorpool_ratelimit_store_errors_total", "Rate-limit store calls that failed, by rule.")
	l.fallback = vec("motorpool_ratelimit_fallback_total", "Rate-limit decisions made by the in-process fallback while the store was away.")
	l.suspects = prometheus.NewCounter(prometheus.CounterOpts{Name: "motorpool_ratelimit_suspicious_total",
		Help: "Subjects limited more than the alert threshold within the alert window."})
	reg.MustRegister(l.suspects)
	resolve := func(r rule) rule {
		r.quoted = strconv.Quote(policyName(r))
		r.allowed = l.allowed.WithLabelValues(r.name)
		// Every rule's series exist from the start, at 0, so that rate() and dashboards see a
		// rule's first refusal or store error as an increase rather than a new series.
		l.limited.WithLabelValues(r.name)
		l.errors.WithLabelValues(r.name)
		l.fallback.WithLabelValues(r.name)
		return r
	}
	for pattern, r := range rules {
		rules[pattern] = resolve(r)
	}
	l.globalIP = resolve(rule{name: "global per IP", limit: cfg.IPMax, window: cfg.Window})
	l.globalU = resolve(rule{name: "global per user", limit: cfg.UserMax, window: cfg.Window, perUser: true})
	return l, nil
}
