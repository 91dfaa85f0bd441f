// Package api is motorpool's HTTP edge: it routes requests to the generated strict server,
// validates them against openapi.yaml first, answers every error as problem+json, and serves
// the spec, Swagger UI, and Prometheus metrics.
package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/motorpool/motorpool/gen"
	"github.com/motorpool/motorpool/storage"
)

// MaxBodyBytes is the largest request body accepted (1 MiB).
const MaxBodyBytes = 1 << 20

// Config holds what NewHandler needs besides the API implementation.
type Config struct {
	Logger         *slog.Logger             // access and error log; discarded when nil
	PoolStats      func() storage.PoolStats // the database pool's figures for /metrics; optional
	Auth           Authenticator            // turns bearer tokens into callers
	TrustedProxies []netip.Prefix           // peers whose X-Forwarded-For is believed
	Metrics        *Metrics                 // the registry to serve; NewMetrics(PoolStats) when nil
	RateLimit      *RateLimitConfig         // nil: no rate limiting (RATE_LIMIT_ENABLED=false)
	// Domains are the domains whose operations are served (SERVE_DOMAINS); nil: all of them.
	// The operational routes (health, metrics, the contract, docs, JWKS) are always served.
	Domains []Domain
	// Now is the clock for the served spec's VehicleYear maximum (next year); time.Now when nil.
	Now func() time.Time
	// CORSAllowedOrigins are the origins whose browser scripts may call the API
	// (CORS_ALLOWED_ORIGINS, read with ParseCORSOrigins): scheme://host[:port] each, answered
	// with credentials allowed, or the lone "*" for any origin, without credentials. None: no
	// CORS header on any response, so browsers keep scripts to the service's own origin.
	CORSAllowedOrigins []string
	// Tracing says requests arrive in OpenTelemetry server spans (otelhttp, in main): each is
	// named after its route (SpanName) and given http.route. False: no span is touched.
	Tracing bool
}

// NewHandler returns the whole HTTP surface of the service. This is the one route table.
func NewHandler(si gen.StrictServerInterface, cfg Config) (http.Handler, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	spec, err := LoadSpec()
	if err != nil {
		return nil, err
	}
	if err := checkAuthzRules(spec); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if cfg.Auth == nil {
		return nil, errors.New("api: Config.Auth is required")
	}
	origins, err := checkCORSOrigins(cfg.CORSAllowedOrigins)
	if err != nil {
		return nil, fmt.Errorf("api: Config.CORSAllowedOrigins: %w", err)
	}
	hidden, err := hiddenOperations(spec, cfg.Domains)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	// The operations served, and nothing of the others: their routes, rate-limit rules and
	// metric series do not exist here, as for any unknown path.
	served := withoutOperations(spec, hidden)
	router, err := gorillamux.NewRouter(served)
	if err != nil {
		return nil, fmt.Errorf("build router: %w", err)
	}
	contract, err := newServedSpec(gen.Spec, cfg.Now)
	if err != nil {
		return nil, err
	}
	specJSON, specYAML := contract.handlers()
	m := cfg.Metrics
	if m == nil {
		m = newMetrics(cfg.PoolStats)
	}

	ops := operations(served)
	var rl *rateLimiter
	if cfg.RateLimit != nil {
		rl, err = newRateLimiter(*cfg.RateLimit, served, m.reg, log)
		if err != nil {
			return nil, err
		}
	}
	adm, body := admit(cfg.Auth, cfg.TrustedProxies, rl), limitBody(MaxBodyBytes)
	// Every route gets the whole stack, built for it here: the route is known from the one
	// match the mux makes, before anything may refuse the request, so the access log and the
	// metrics name it whichever layer answers (the limiter's 429, the body limit's 413).
	// Hidden operations get no route: their requests reach the catch-all, as unknown paths do.
	mux := newRouteMux(ops, hidden, func(pattern string, op *operation, h http.Handler) http.Handler {
		return onRoute(pattern, op, nameSpan(cfg.Tracing, adm(body(validate(op, h)))))
	})
	strict := gen.NewStrictHandlerWithOptions(si, nil, gen.StrictHTTPServerOptions{
		RequestErrorHandlerFunc:  bodyError,
		ResponseErrorHandlerFunc: internalError,
	})
	gen.HandlerWithOptions(strict, gen.StdHTTPServerOptions{
		BaseRouter:       mux,
		ErrorHandlerFunc: paramError, // the validator refuses what binding would, first
	})
	mux.Handle("GET /openapi.json", specJSON)
	mux.Handle("GET /openapi.yaml", specYAML)
	mux.Handle("GET /docs", noFraming(http.RedirectHandler("/docs/", http.StatusMovedPermanently)))
	mux.Handle("GET /docs/", docsHandler())
	mux.Handle("GET /metrics", m.handler)
	mux.Handle("/", unmatched(router))
	if err := mux.complete(); err != nil {
		return nil, err
	}
	// CORS wraps the route table, inside observe: preflights are logged and measured but
	// answered before admission, so they are neither authenticated nor counted.
	return observe(log, m)(withCORS(origins, ops, mux)), nil
}
