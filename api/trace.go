package api

import (
	"net/http"
	"strings"

	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// SpanName is the name of a request's server span, as OpenTelemetry's HTTP conventions have it:
// its method and route, "GET /users/{id}", once the route table matched it (r.Pattern), or its
// method alone before, and when no route took it.
func SpanName(r *http.Request) string {
	if route := routeOf(r.Pattern); route != "" {
		return r.Method + " " + route
	}
	return r.Method
}

// routeOf is the path of a ServeMux pattern, "/users/{id}" of "GET /users/{id}"; "" for the
// catch-all ("/"), which no operation is.
func routeOf(pattern string) string {
	_, route, ok := strings.Cut(pattern, " ")
	if !ok {
		return ""
	}
	return route
}

// nameSpan names the request's server span (which the caller of the handler started: otelhttp
// in main) after its route and sets http.route, as soon as the route table has matched it, so
// that whichever layer answers (the limiter, the validator, the operation) the span says which
// route it was. Off (Config.Tracing false), it returns next unchanged.
func nameSpan(on bool, next http.Handler) http.Handler {
	if !on {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			span.SetName(SpanName(r))
			if route := routeOf(r.Pattern); route != "" {
				span.SetAttributes(semconv.HTTPRoute(route))
			}
		}
		next.ServeHTTP(w, r)
	})
}
