package main

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpCollector is an OpenTelemetry collector's OTLP/HTTP traces endpoint, in memory: what
// the real exporter sends is what the tests read.
type otlpCollector struct {
	url   string
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newOTLPCollector(t *testing.T) *otlpCollector {
	t.Helper()
	c := &otlpCollector{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req coltracepb.ExportTraceServiceRequest
		b, err := io.ReadAll(r.Body)
		if err == nil {
			err = proto.Unmarshal(b, &req)
		}
		if r.URL.Path != "/v1/traces" || err != nil {
			t.Errorf("collector: %s %s: %v", r.Method, r.URL.Path, err)
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		c.mu.Unlock()
		resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

// trace is the spans received of the trace traceID (hex), by name.
func (c *otlpCollector) trace(traceID string) map[string]*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range c.spans {
		if hex.EncodeToString(s.TraceId) == traceID {
			out[s.Name] = s
		}
	}
	return out
}

func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

func childOf(s, parent *tracepb.Span) bool {
	return s != nil && parent != nil && string(s.ParentSpanId) == string(parent.SpanId)
}

// TestRunTracing: with OTEL_EXPORTER_OTLP_ENDPOINT, a registration carrying a traceparent is
// one trace, sent to the collector by the shutdown's flush at the latest: the server span (the
// caller's child, named after its route), its PostgreSQL statements and Valkey round trips,
// and, through the outbox and RabbitMQ, the USER_CREATED's publish and the cache consumer's
// processing of it. Probes make no spans. Not parallel: the tracer provider is global.
func TestRunTracing(t *testing.T) {
	col := newOTLPCollector(t)
	s := newInvalSetup(t, true)
	env := s.instanceEnv(t, false)
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = col.url
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := startWith(t, ctx, env)
	if !strings.Contains(in.out.String(), `"tracing":"otlp/http `+col.url+`/v1/traces`) {
		t.Errorf("the start line does not say where spans go:\n%s", in.out)
	}

	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest("POST", in.url+"/users", strings.NewReader(`{"email":"traced@example.com","name":"T","password":"correct horse battery"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d", resp.StatusCode)
	}
	cacheQueue := s.brokerCfg.Exchange + ".users-vehicles.cache"
	handled := regexp.MustCompile(`(?m)^motorpool_consumer_deliveries_total\{[^}]*queue="` + regexp.QuoteMeta(cacheQueue) + `"[^}]*\} [1-9]`)
	eventually(t, "the cache consumer to handle the USER_CREATED", func() bool {
		_, body := get(t, in.url+"/metrics")
		return handled.MatchString(body)
	})
	cancel()
	in.wait(t)

	spans := col.trace(traceID)
	server := spans["POST /users"]
	switch {
	case server == nil:
		t.Fatalf("no span POST /users in the trace; got %v", keys(spans))
	case hex.EncodeToString(server.ParentSpanId) != callerSpan || server.Kind != tracepb.Span_SPAN_KIND_SERVER || attr(server, "http.route") != "/users":
		t.Errorf("server span %v: want a server span, the caller's child, with http.route /users", server)
	}
	if sql := spans["CreateUser"]; !childOf(sql, server) || attr(sql, "db.system.name") != "postgresql" {
		t.Errorf("SQL span CreateUser %v: want a PostgreSQL span, the server span's child; got %v", sql, keys(spans))
	}
	valkeySpans := 0
	for _, sp := range spans {
		if attr(sp, "db.system.name") == "valkey" {
			valkeySpans++
		}
	}
	if valkeySpans == 0 {
		t.Errorf("no Valkey span in the trace; got %v", keys(spans))
	}
	pub, proc := spans["publish "+s.brokerCfg.Exchange], spans["process "+cacheQueue]
	if pub == nil || pub.Kind != tracepb.Span_SPAN_KIND_PRODUCER || !childOf(proc, pub) || proc.Kind != tracepb.Span_SPAN_KIND_CONSUMER {
		t.Errorf("publish %v, process %v: want the event's publish in the request's trace, and its processing the publish's child; got %v", pub, proc, keys(spans))
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, sp := range col.spans {
		if strings.Contains(sp.Name, "/healthz") || strings.Contains(sp.Name, "/metrics") {
			t.Errorf("span %s: probes and scrapes are not traced", sp.Name)
		}
	}
}

func keys(m map[string]*tracepb.Span) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRunTracingOff: without an endpoint no tracer provider is installed (the global one stays
// OpenTelemetry's no-op), nor a propagator, and a request with a traceparent is served as any.
func TestRunTracingOff(t *testing.T) {
	dir := t.TempDir()
	in := start(t, map[string]string{"DATA_DIR": dir, "SQLITE_PATH": filepath.Join(dir, "m.db")})
	defer in.stop(t)
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		t.Error("a tracer provider is installed with tracing off")
	}
	if f := otel.GetTextMapPropagator().Fields(); len(f) != 0 {
		t.Errorf("a propagator of %v is installed with tracing off", f)
	}
	if !strings.Contains(in.out.String(), `"tracing":"off"`) {
		t.Errorf("the start line does not say tracing is off:\n%s", in.out)
	}
	req, _ := http.NewRequest("GET", in.url+"/healthz", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("traceparent") != "" {
		t.Errorf("GET /healthz with a traceparent: %d %v", resp.StatusCode, resp.Header)
	}
}
