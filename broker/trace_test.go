package broker_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/tracing/tracingtest"
)

// A message published with a request's trace context (as the relay publishes an event some
// time after the request) is published in a span of that trace, carries the publish span in
// its traceparent header, and is handled in a consumer span that is the publish span's child.
func TestTraceContextCrossesTheBroker(t *testing.T) {
	tp, exp := tracingtest.Install(t)
	cfg, name := setUp(t)
	sub := broker.Subscription{Queue: name + ".q", Keys: []string{"USER_DELETED"}, MaxDeliveries: 3}
	declare(t, cfg, sub)
	_, req := tp.Tracer("test").Start(context.Background(), "DELETE /users/{id}")
	req.End()
	origin := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpan(context.Background(), req), origin)

	type handled struct {
		d  broker.Delivery
		sc trace.SpanContext
	}
	got := make(chan handled, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- broker.Consume(ctx, cfg, sub, func(ctx context.Context, d broker.Delivery) error {
			got <- handled{d, trace.SpanContextFromContext(ctx)}
			return nil
		}, nil)
	}()
	defer func() { cancel(); <-done }()

	m := msgs("traced", 1, "USER_DELETED")[0]
	m.Headers = origin
	p := broker.NewPublisher(cfg)
	defer p.Close()
	if err := p.Publish(context.Background(), []broker.Message{m}); err != nil {
		t.Fatal(err)
	}
	var h handled
	select {
	case h = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s")
	}
	traceID := req.SpanContext().TraceID()
	if h.sc.TraceID() != traceID {
		t.Errorf("the handler runs in trace %s, want the request's %s", h.sc.TraceID(), traceID)
	}
	spans := map[string]tracetest.SpanStub{}
	waitFor(t, "the process span to end", func() bool { // it ends once the handler returned
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID() == traceID {
				spans[s.Name] = s
			}
		}
		_, ok := spans["process "+sub.Queue]
		return ok
	})
	pub, proc := spans["publish "+cfg.Exchange], spans["process "+sub.Queue]
	switch {
	case pub.SpanKind != trace.SpanKindProducer || pub.Parent.SpanID() != req.SpanContext().SpanID():
		t.Errorf("publish span %+v: want a producer span, the request's child", pub)
	case proc.SpanKind != trace.SpanKindConsumer || proc.Parent.SpanID() != pub.SpanContext.SpanID() || proc.SpanContext.SpanID() != h.sc.SpanID():
		t.Errorf("process span %+v: want the consumer span the handler ran in, the publish span's child", proc)
	case h.d.Headers["traceparent"] != "00-"+traceID.String()+"-"+pub.SpanContext.SpanID().String()+"-01":
		t.Errorf("delivered headers %v: want the publish span's traceparent", h.d.Headers)
	}
}
