package tracing

import (
	"context"
	"time"

	valkeygo "github.com/valkey-io/valkey-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// valkeySystem is db.system.name for Valkey, which the conventions do not list yet.
var valkeySystem = semconv.DBSystemNameKey.String("valkey")

// cacheHit says a DoCache read was answered from the client-side cache, without a round trip;
// cacheHits counts such answers in a DoMultiCache.
const (
	cacheHit  = attribute.Key("valkey.client_cache.hit")
	cacheHits = attribute.Key("valkey.client_cache.hits")
)

// Valkey returns a wrapper for valkey.Config.Wrap on tp (the global provider when nil): a client
// span for each Do, DoMulti (one span per pipeline), DoCache and DoMultiCache made within a
// traced context, named after the command ("GET", "EVALSHA") or "PIPELINE". Keys and arguments
// are not recorded (keys name users and sessions). Streams, pub/sub and dedicated connections
// go through untraced; motorpool's requests use none of them.
func Valkey(tp trace.TracerProvider) func(valkeygo.Client) valkeygo.Client {
	return func(c valkeygo.Client) valkeygo.Client { return &valkeyClient{Client: c, tp: tp} }
}

type valkeyClient struct {
	valkeygo.Client
	tp trace.TracerProvider
}

func (c *valkeyClient) start(ctx context.Context, name string, batch int) trace.Span {
	attrs := []attribute.KeyValue{valkeySystem, semconv.DBOperationName(name)}
	if batch > 1 {
		attrs = append(attrs, semconv.DBOperationBatchSize(batch))
	}
	_, span := tracer(c.tp).Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return span
}

// end ends span with the first error among results; a nil reply (a missing key) is none.
func end(span trace.Span, results ...valkeygo.ValkeyResult) {
	for _, r := range results {
		if err := r.Error(); err != nil && !valkeygo.IsValkeyNil(err) {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			break
		}
	}
	span.End()
}

func commandName(args []string) string {
	if len(args) == 0 {
		return "COMMAND"
	}
	return args[0]
}

func pipelineName(n int, first []string) string {
	if n == 1 {
		return commandName(first)
	}
	return "PIPELINE"
}

func (c *valkeyClient) Do(ctx context.Context, cmd valkeygo.Completed) valkeygo.ValkeyResult {
	if !traced(ctx) {
		return c.Client.Do(ctx, cmd)
	}
	span := c.start(ctx, commandName(cmd.Commands()), 1)
	r := c.Client.Do(ctx, cmd)
	end(span, r)
	return r
}

func (c *valkeyClient) DoMulti(ctx context.Context, multi ...valkeygo.Completed) []valkeygo.ValkeyResult {
	if !traced(ctx) || len(multi) == 0 {
		return c.Client.DoMulti(ctx, multi...)
	}
	span := c.start(ctx, pipelineName(len(multi), multi[0].Commands()), len(multi))
	rs := c.Client.DoMulti(ctx, multi...)
	end(span, rs...)
	return rs
}

func (c *valkeyClient) DoCache(ctx context.Context, cmd valkeygo.Cacheable, ttl time.Duration) valkeygo.ValkeyResult {
	if !traced(ctx) {
		return c.Client.DoCache(ctx, cmd, ttl)
	}
	span := c.start(ctx, commandName(cmd.Commands()), 1)
	r := c.Client.DoCache(ctx, cmd, ttl)
	span.SetAttributes(cacheHit.Bool(r.IsCacheHit()))
	end(span, r)
	return r
}

func (c *valkeyClient) DoMultiCache(ctx context.Context, multi ...valkeygo.CacheableTTL) []valkeygo.ValkeyResult {
	if !traced(ctx) || len(multi) == 0 {
		return c.Client.DoMultiCache(ctx, multi...)
	}
	span := c.start(ctx, pipelineName(len(multi), multi[0].Cmd.Commands()), len(multi))
	rs := c.Client.DoMultiCache(ctx, multi...)
	hits := 0
	for _, r := range rs {
		if r.IsCacheHit() {
			hits++
		}
	}
	span.SetAttributes(cacheHits.Int(hits))
	end(span, rs...)
	return rs
}
