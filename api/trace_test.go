package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/tracing/tracingtest"
)

// With Config.Tracing, the server span a request arrives in is named after the route the
// table matched, before anything may refuse it (here authentication), and has http.route;
// a request no route takes keeps the name it came with.
func TestServerSpanNamedAfterTheRoute(t *testing.T) {
	s := newTestServer(t, backends["embedded"](t), withTracing())
	tp, exp := tracingtest.Recorder(t)
	in := func(path, tok string, want int) tracetest.SpanStub {
		t.Helper()
		exp.Reset()
		r := httptest.NewRequest("GET", path, nil)
		if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		ctx, span := tp.Tracer("test").Start(context.Background(), api.SpanName(r))
		rec := httptest.NewRecorder()
		s.Handler.ServeHTTP(rec, r.WithContext(ctx))
		span.End()
		if rec.Code != want {
			t.Fatalf("GET %s: %d, want %d", path, rec.Code, want)
		}
		return exp.GetSpans()[0]
	}
	route := func(sp tracetest.SpanStub) string {
		for _, kv := range sp.Attributes {
			if kv.Key == "http.route" {
				return kv.Value.AsString()
			}
		}
		return ""
	}
	path := fmt.Sprintf("/users/%d", s.Admin.Id)
	for _, c := range []struct {
		path, tok  string
		code       int
		name, rout string
	}{
		{path, s.token, http.StatusOK, "GET /users/{id}", "/users/{id}"},
		{path, "", http.StatusUnauthorized, "GET /users/{id}", "/users/{id}"},
		{"/nowhere", "", http.StatusNotFound, "GET", ""},
	} {
		if sp := in(c.path, c.tok, c.code); sp.Name != c.name || route(sp) != c.rout {
			t.Errorf("GET %s: span %q with http.route %q, want %q and %q", c.path, sp.Name, route(sp), c.name, c.rout)
		}
	}
}
