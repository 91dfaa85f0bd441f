package relay_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/motorpool/motorpool/broker"
	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/relay"
	"github.com/motorpool/motorpool/tracing/tracingtest"
)

// An event written in a traced request is relayed with its trace context; in process, its
// consumer runs in a span that is the request's child. An untraced event's message has none.
func TestLocalContinuesTheEventsTrace(t *testing.T) {
	tp, exp := tracingtest.Install(t)

	out := &outbox{}
	plain := out.add(t, events.UserDeleted, 1)
	if m, err := relay.Message(plain); err != nil || m.Headers != nil {
		t.Errorf("an untraced event's message: %+v, %v; want no headers", m, err)
	}
	_, req := tp.Tracer("test").Start(context.Background(), "DELETE /users/{id}")
	req.End()
	traced := out.add(t, events.UserDeleted, 2)
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpan(context.Background(), req), c)
	traced.TraceParent = c["traceparent"]
	out.evs[1] = traced

	l := relay.NewLocal(nil)
	var in trace.SpanContext
	if err := l.Subscribe(broker.Subscription{Queue: "q", Keys: []string{"#"}, MaxDeliveries: 1}, func(ctx context.Context, d broker.Delivery) error {
		if d.ID == traced.ID {
			in = trace.SpanContextFromContext(ctx)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := relay.New(out, l, relay.Config{}, nil).Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if in.TraceID() != req.SpanContext().TraceID() {
		t.Fatalf("the consumer ran in trace %s, want the request's %s", in.TraceID(), req.SpanContext().TraceID())
	}
	found := false
	for _, s := range exp.GetSpans() {
		if s.SpanContext.SpanID() == in.SpanID() {
			found = s.Name == "process q" && s.Parent.SpanID() == req.SpanContext().SpanID()
		}
	}
	if !found {
		t.Errorf("no span \"process q\" that is the request's child among %d spans", len(exp.GetSpans()))
	}
}
