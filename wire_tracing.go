package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/tracing"
)

// startTracing installs OpenTelemetry's tracer provider, exporting to the configured OTLP
// endpoint, when there is one; without, it installs nothing (the global provider stays the
// no-op) and returns a nil provider. stop flushes the spans still buffered, waiting up to
// SHUTDOWN_TIMEOUT, and uninstalls the provider.
func startTracing(ctx context.Context, cfg config, log *slog.Logger) (p *tracing.Provider, stop func(), err error) {
	if !cfg.Tracing.on() {
		return nil, func() {}, nil
	}
	p, err = tracing.Start(ctx, tracing.Config{
		URL: cfg.Tracing.url(), ServiceName: cfg.Tracing.ServiceName, Version: buildVersion(),
		Sampler: cfg.Tracing.sampler(), Logger: log,
	})
	if err != nil {
		return nil, nil, err
	}
	return p, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		if err := p.Shutdown(sctx); err != nil {
			log.Warn("spans lost at shutdown", "error", err.Error())
		}
	}, nil
}

// untraced are the paths whose requests get no span: the scrapes and probes, every few
// seconds, would outnumber the requests worth a trace.
var untraced = map[string]bool{"/metrics": true, "/healthz": true, "/readyz": true}

// traced wraps h in a server span per request (otelhttp): a child of the request's
// traceparent when it has one, named after its route by the api package once matched. With
// tracing off (p nil) it returns h unchanged.
func traced(p *tracing.Provider, h http.Handler) http.Handler {
	if p == nil {
		return h
	}
	return otelhttp.NewHandler(h, "http",
		otelhttp.WithTracerProvider(p.TracerProvider()),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return api.SpanName(r) }),
		otelhttp.WithFilter(func(r *http.Request) bool { return !untraced[r.URL.Path] }))
}

// pgTracer is the PostgreSQL pools' statement tracer: a span per statement of a traced call,
// on the global provider that startTracing installs; nil with tracing off.
func pgTracer(cfg config) pgx.QueryTracer {
	if !cfg.Tracing.on() {
		return nil
	}
	return tracing.NewPostgres(nil)
}
