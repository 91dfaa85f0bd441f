package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/motorpool/motorpool/client"
	"github.com/motorpool/motorpool/storage"
)

func TestServedSpecAndDocs(t *testing.T) {
	s := newTestServer(t, backends["embedded"](t))
	file, err := openapi3.NewLoader().LoadFromFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/openapi.json", "/openapi.yaml"} {
		resp, body := s.do(t, "GET", path, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		served, err := openapi3.NewLoader().LoadFromData(body)
		if err != nil {
			t.Fatalf("%s does not load as OpenAPI: %v", path, err)
		}
		if err := served.Validate(context.Background()); err != nil {
			t.Errorf("%s is not valid: %v", path, err)
		}
		for p := range file.Paths.Map() {
			if served.Paths.Find(p) == nil {
				t.Errorf("%s lacks path %s", path, p)
			}
		}
		if served.Info.Title != file.Info.Title || len(served.Components.Schemas) != len(file.Components.Schemas) {
			t.Errorf("%s differs from openapi.yaml", path)
		}
	}

	resp, body := s.do(t, "GET", "/docs", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "swagger-ui") || !strings.Contains(string(body), "/openapi.json") {
		t.Fatalf("/docs: %d %.300s", resp.StatusCode, body)
	}
	// The UI's assets come from the binary, not a CDN.
	if strings.Contains(string(body), "cdn") || strings.Contains(string(body), "unpkg") {
		t.Errorf("Swagger UI page loads assets from the internet:\n%s", body)
	}
	for _, asset := range []string{"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"} {
		resp, body := s.do(t, "GET", asset, "", nil)
		if resp.StatusCode != http.StatusOK || len(body) < 1000 {
			t.Errorf("%s: %d, %d bytes", asset, resp.StatusCode, len(body))
		}
	}
}

func TestMetrics(t *testing.T) {
	s := newTestServer(t, backends["embedded"](t))
	u := mustUser(t, s, "ada@example.com")
	if r, _ := s.Client.GetUserWithResponse(context.Background(), u.Id, nil); r.StatusCode() != 200 {
		t.Fatal(r.StatusCode())
	}
	s.do(t, "GET", "/users/0", "", nil)
	_, body := s.do(t, "GET", "/metrics", "", nil)
	for _, want := range []string{
		`motorpool_http_requests_total{code="200",method="GET",route="/users/{id}"} 1`,
		`motorpool_http_requests_total{code="400",method="GET",route="/users/{id}"} 1`,
		`motorpool_http_requests_total{code="201",method="POST",route="/users"} 1`,
		`motorpool_http_request_duration_seconds_bucket{code="200",method="GET",route="/users/{id}",le="+Inf"} 1`,
		`motorpool_db_pool_max_connections`,
		`motorpool_db_pool_in_use_connections`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestHealth(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		b := newBackend(t)
		s := newTestServer(t, b)
		store := b.store
		ctx := context.Background()
		if r, err := s.Client.GetHealthzWithResponse(ctx); err != nil || r.JSON200 == nil || r.JSON200.Status != client.HealthStatusOk {
			t.Fatalf("healthz: %v %s", err, r.Body)
		}
		r, err := s.Client.GetReadyzWithResponse(ctx)
		if err != nil || r.JSON200 == nil || r.JSON200.Checks["database"].Status != client.CheckStatusOk {
			t.Fatalf("readyz: %v %s", err, r.Body)
		}
		// With the database gone, readiness fails and names it; liveness does not.
		_ = store.Close()
		r, err = s.Client.GetReadyzWithResponse(ctx)
		if err != nil || r.JSON503 == nil {
			t.Fatalf("readyz with the database closed: %v %d %s", err, r.StatusCode(), r.Body)
		}
		if c := r.JSON503.Checks["database"]; c.Status != client.CheckStatusUnavailable {
			t.Errorf("readyz checks = %+v, want database unavailable", r.JSON503.Checks)
		}
		if h, _ := s.Client.GetHealthzWithResponse(ctx); h.StatusCode() != http.StatusOK {
			t.Errorf("healthz with the database closed: %d", h.StatusCode())
		}
	})
}

func TestRequestID(t *testing.T) {
	s := newTestServer(t, backends["embedded"](t))
	req, _ := http.NewRequest("GET", s.URL+"/healthz", nil)
	req.Header.Set("X-Request-Id", "trace-42.a_b")
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "trace-42.a_b" {
		t.Errorf("X-Request-Id = %q, want the caller's", got)
	}
	req.Header.Set("X-Request-Id", "bad id\twith \"quotes\"")
	resp, err = s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, " \t\"") {
		t.Errorf("unsafe X-Request-Id came back as %q", got)
	}
	// One log line per request, carrying the id.
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(s.Logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		if rec["msg"] == "request" && rec["path"] == "/healthz" {
			n++
			id, _ := rec["request_id"].(string)
			if id == "" || rec["status"] == nil || rec["duration_ms"] == nil {
				t.Errorf("request log line lacks fields: %s", line)
			}
			if n == 1 && id != "trace-42.a_b" {
				t.Errorf("the first request's log line has request_id %q, want the caller's", id)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d request log lines for 2 requests", n)
	}
}

// failingStore fails or panics on GetVehicle and delegates everything else.
type failingStore struct {
	storage.Store
	panic bool
}

func (f failingStore) GetVehicle(context.Context, int64) (storage.Vehicle, error) {
	if f.panic {
		panic("store exploded")
	}
	return storage.Vehicle{}, errBoom
}

// A failing backend yields a 500 problem that hides the cause, and the cause is logged once.
func TestInternalErrors(t *testing.T) {
	for _, panics := range []bool{false, true} {
		name := map[bool]string{false: "error", true: "panic"}[panics]
		t.Run(name, func(t *testing.T) {
			b := backends["embedded"](t)
			b.store = failingStore{Store: b.store, panic: panics}
			s := newTestServer(t, b)
			resp, body := s.do(t, "GET", "/vehicles/1", "", nil)
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("%d %s, want 500", resp.StatusCode, body)
			}
			decodeProblem(t, resp, body)
			if strings.Contains(string(body), "boom") || strings.Contains(string(body), "exploded") {
				t.Errorf("500 body leaks the cause: %s", body)
			}
			logs := s.Logs.String()
			cause := map[bool]string{false: "boom", true: "store exploded"}[panics]
			if c := strings.Count(logs, cause); c != 1 {
				t.Errorf("cause logged %d times, want once:\n%s", c, logs)
			}
			if id := resp.Header.Get("X-Request-Id"); id == "" || !strings.Contains(logs, id) {
				t.Error("the error log line lacks the request id")
			}
			// The server still works.
			if r, _ := s.do(t, "GET", "/healthz", "", nil); r.StatusCode != http.StatusOK {
				t.Errorf("healthz after a failure: %d", r.StatusCode)
			}
		})
	}
}
