package tracing_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/motorpool/motorpool/events"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/postgres"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
	"github.com/motorpool/motorpool/tracing"
	"github.com/motorpool/motorpool/tracing/tracingtest"
)

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func TestTracesURL(t *testing.T) {
	for _, c := range []struct{ endpoint, traces, want string }{
		{"", "", ""},
		{"http://collector:4318", "", "http://collector:4318/v1/traces"},
		{"http://collector:4318/", "", "http://collector:4318/v1/traces"},
		{"https://otel.example.com/base", "", "https://otel.example.com/base/v1/traces"},
		{"http://collector:4318", "http://other:4318/custom", "http://other:4318/custom"},
		{"", "http://other:4318/custom", "http://other:4318/custom"},
	} {
		if got := tracing.TracesURL(c.endpoint, c.traces); got != c.want {
			t.Errorf("TracesURL(%q, %q) = %q, want %q", c.endpoint, c.traces, got, c.want)
		}
	}
	for _, bad := range []string{"collector:4318", "grpc://collector:4317", "http://", "::"} {
		if tracing.CheckEndpoint(bad) == nil {
			t.Errorf("CheckEndpoint(%q) accepted it", bad)
		}
	}
}

// Every sampler of the OpenTelemetry environment's list that the SDK has is known, by its name.
func TestSampler(t *testing.T) {
	for _, name := range tracing.Samplers {
		s, err := tracing.Sampler(name, 0.25)
		if err != nil {
			t.Errorf("Sampler(%q): %v", name, err)
			continue
		}
		if d := s.Description(); strings.Contains(name, "ratio") && !strings.Contains(d, "0.25") {
			t.Errorf("Sampler(%q) = %s, want the ratio 0.25", name, d)
		}
	}
	if _, err := tracing.Sampler("jaeger_remote", 1); err == nil {
		t.Error("Sampler(jaeger_remote) succeeded; the SDK has none")
	}
	for _, v := range []string{"-0.1", "1.5", "half"} {
		if _, err := tracing.ParseRatio(v); err == nil {
			t.Errorf("ParseRatio(%q) succeeded", v)
		}
	}
}

func TestEvent(t *testing.T) {
	if p, s := tracing.Event(context.Background()); p != "" || s != "" {
		t.Errorf("Event outside a span = %q, %q; want nothing", p, s)
	}
	tp, _ := tracingtest.Recorder(t)
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	defer span.End()
	p, _ := tracing.Event(ctx)
	if want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"; p != want {
		t.Errorf("Event = %q, want %q", p, want)
	}
}

// A write within a span: a span per statement, children of it, named after sqlc's queries, and
// its outbox event carries the span's trace context. Outside a span: no span at all.
func TestPostgresSpans(t *testing.T) {
	tp, exp := tracingtest.Recorder(t)
	ctx := context.Background()
	s, err := postgres.Open(ctx, postgres.Config{URL: pgtest.NewDatabase(t), Tracer: tracing.NewPostgres(tp)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, storage.NewUser{Email: "untraced@example.com", Name: "U", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans of untraced calls (%v), want none", n, names(exp.GetSpans()))
	}
	rctx, req := tp.Tracer("test").Start(ctx, "request")
	if _, err := s.CreateUser(rctx, storage.NewUser{Email: "traced@example.com", Name: "T", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	req.End()
	spans := exp.GetSpans()
	for _, want := range []string{"BEGIN", "CreateUser", "InsertOutbox", "COMMIT"} {
		if !slices.Contains(names(spans), want) {
			t.Errorf("spans %v lack %s", names(spans), want)
		}
	}
	for _, sp := range spans {
		if sp.Name == "request" {
			continue
		}
		if sp.Parent.SpanID() != req.SpanContext().SpanID() || sp.SpanKind != trace.SpanKindClient {
			t.Errorf("span %s: parent %s kind %s, want a client span child of the request", sp.Name, sp.Parent.SpanID(), sp.SpanKind)
		}
	}
	var got []events.Event
	if _, err := s.Relay(ctx, 10, func(_ context.Context, evs []events.Event) error { got = evs; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].TraceParent != "" || !strings.Contains(got[1].TraceParent, req.SpanContext().TraceID().String()) {
		t.Errorf("outbox events %+v: want the untraced write's without a traceparent, the traced one's with the request's", got)
	}
}

// A round trip within a span is a span, a pipeline one span; outside a span, none.
func TestValkeySpans(t *testing.T) {
	tp, exp := tracingtest.Recorder(t)
	c := valkeytest.Open(t)
	vk := tracing.Valkey(tp)(c.Valkey())
	ctx := context.Background()
	if err := vk.Do(ctx, vk.B().Get().Key(c.Key("k")).Build()).Error(); err == nil {
		t.Fatal("GET of a missing key succeeded")
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans of untraced calls, want none", n)
	}
	rctx, req := tp.Tracer("test").Start(ctx, "request")
	_ = vk.Do(rctx, vk.B().Get().Key(c.Key("k")).Build())
	_ = vk.DoMulti(rctx, vk.B().Set().Key(c.Key("k")).Value("v").Build(), vk.B().Get().Key(c.Key("k")).Build())
	_ = vk.DoCache(rctx, vk.B().Get().Key(c.Key("k")).Cache(), 0)
	req.End()
	spans := exp.GetSpans()
	if got, want := names(spans), []string{"GET", "PIPELINE", "GET", "request"}; !slices.Equal(got, want) {
		t.Fatalf("spans %v, want %v", got, want)
	}
	for _, sp := range spans[:3] {
		if sp.Parent.SpanID() != req.SpanContext().SpanID() || sp.Status.Code != 0 {
			t.Errorf("span %s: parent %s status %v; want a child of the request, no error (a missing key is none)", sp.Name, sp.Parent.SpanID(), sp.Status)
		}
	}
}

// What a write pays for its events' trace context with tracing off: one context lookup.
func BenchmarkEventUntraced(b *testing.B) {
	ctx := context.Background()
	for range 12 { // about as deep as a request's context is by the time it writes
		ctx = context.WithValue(ctx, new(int), 0)
	}
	b.ReportAllocs()
	for b.Loop() {
		if p, _ := tracing.Event(ctx); p != "" {
			b.Fatal(p)
		}
	}
}
