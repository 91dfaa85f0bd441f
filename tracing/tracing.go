// Package tracing is motorpool's OpenTelemetry tracing: the tracer provider that exports spans
// over OTLP/HTTP (Start), a span per PostgreSQL statement (Postgres) and per Valkey round trip
// (Valkey), and the trace context an event carries from the request that wrote it (Event).
//
// Tracing is off unless Start is called: then no provider is installed, OpenTelemetry's
// global provider and propagator are its no-ops, and the instrumentation here starts no span,
// for it traces only calls made within a traced context (a request's server span, an event's
// processing): a background poll such as the relay's starts no trace of its own.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// scope is the instrumentation scope of the spans this package starts.
const scope = "github.com/motorpool/motorpool/tracing"

// Config is where the spans go and which are kept.
type Config struct {
	// URL is the OTLP/HTTP traces endpoint, spans are POSTed there as protobuf (see TracesURL).
	URL         string
	ServiceName string // the resource's service.name
	Version     string // the resource's service.version
	Sampler     sdktrace.Sampler
	// Exporter, when set, takes the spans instead of URL's collector (tests: tracetest).
	Exporter sdktrace.SpanExporter
	Logger   *slog.Logger // export failures are logged here at WARN; discarded when nil
}

// Provider is the installed tracer provider.
type Provider struct{ tp *sdktrace.TracerProvider }

// Start installs a tracer provider as OpenTelemetry's global one, batching spans to cfg's
// exporter, with the W3C trace context (traceparent, tracestate) as the global propagator.
// OpenTelemetry's errors (a failed export) are logged to cfg.Logger. Shutdown flushes the
// provider and leaves the globals no-ops again.
func Start(ctx context.Context, cfg Config) (*Provider, error) {
	exp := cfg.Exporter
	if exp == nil {
		var err error
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.URL))
		if err != nil {
			return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
		}
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(cfg.Version)))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	sampler := cfg.Sampler
	if sampler == nil {
		sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	p := &Provider{tp: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))}
	if cfg.Logger != nil {
		log := cfg.Logger
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "error", err.Error()) }))
	}
	otel.SetTracerProvider(p.tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return p, nil
}

// TracerProvider is the provider Start installed.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// Shutdown exports the spans still buffered, within ctx, stops the provider, and sets the
// global provider and propagator to no-ops. (What Start replaced cannot be put back: the
// defaults delegate, once, to the first provider installed.)
func (p *Provider) Shutdown(ctx context.Context) error {
	err := p.tp.Shutdown(ctx)
	otel.SetTracerProvider(noop.NewTracerProvider())
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	if err != nil {
		return fmt.Errorf("tracing: flush: %w", err)
	}
	return nil
}

// TracesURL is where OTLP/HTTP spans go, by the OpenTelemetry environment's rules: the traces
// endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) as it is when given, else the base endpoint
// (OTEL_EXPORTER_OTLP_ENDPOINT) with v1/traces appended to its path; "" when neither is.
func TracesURL(endpoint, tracesEndpoint string) string {
	if tracesEndpoint != "" {
		return tracesEndpoint
	}
	if endpoint == "" {
		return ""
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint // CheckEndpoint refuses it first
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	return u.String()
}

// CheckEndpoint says why v is no OTLP/HTTP endpoint: an http or https URL with a host.
func CheckEndpoint(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an http:// or https:// URL, such as http://localhost:4318")
	}
	return nil
}

// Samplers are the values of OTEL_TRACES_SAMPLER that Sampler knows, as the OpenTelemetry
// environment specification names them.
var Samplers = []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}

// Sampler is the sampler OTEL_TRACES_SAMPLER names; ratio (OTEL_TRACES_SAMPLER_ARG, from 0 to
// 1) is the share of traces the traceidratio samplers keep, and ignored by the others. The
// parentbased ones follow an incoming traceparent's sampled flag and apply the named rule to
// new traces only.
func Sampler(name string, ratio float64) (sdktrace.Sampler, error) {
	if ratio < 0 || ratio > 1 {
		return nil, errors.New("the ratio must be from 0 to 1")
	}
	switch name {
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("must be one of %s", strings.Join(Samplers, ", "))
}

// ParseRatio reads OTEL_TRACES_SAMPLER_ARG: a probability from 0 to 1.
func ParseRatio(v string) (float64, error) {
	r, err := strconv.ParseFloat(v, 64)
	if err != nil || r < 0 || r > 1 {
		return 0, errors.New("must be a number from 0 to 1, such as 0.25")
	}
	return r, nil
}

// Event is the trace context of ctx's span as an event's traceparent and tracestate, so that
// what is done with the event later joins the trace; empty when ctx is not traced.
func Event(ctx context.Context) (traceparent, tracestate string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "", ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"], c["tracestate"]
}

// traced reports whether ctx is within a span: only then do this package's tracers start one.
func traced(ctx context.Context) bool { return trace.SpanContextFromContext(ctx).IsValid() }

// tracer is tp's tracer for this package's spans; the global provider's when tp is nil, looked
// up at each call so that a provider installed (or replaced) later is used.
func tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(scope)
}
