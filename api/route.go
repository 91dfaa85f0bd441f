package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
)

// operation is what the edge knows about one operation of the contract, built once at start
// so that a request finds it with the mux's own match: no second router, no per-request
// lookup by path.
type operation struct {
	pattern    string         // the ServeMux pattern, "GET /vehicles/{id}"
	route      *routers.Route // for kin-openapi, which validates what the quick checks cannot
	pathParams []string       // the names of its path parameters, read with r.PathValue
	rule       string         // x-authz: "", "user", "admin", "self-or-admin"
	// secured: the operation requires bearerAuth. direct: its security is none or bearerAuth
	// alone, so authorization is decided from rule without kin-openapi's security pass.
	secured, direct bool
	quick           *quickPlan // nil: every request goes through kin-openapi
}

// operations indexes the contract's operations by the ServeMux pattern the generated router
// registers them under (the contract's paths use the mux's {name} syntax).
func operations(spec *openapi3.T) map[string]*operation {
	ops := map[string]*operation{}
	for path, item := range spec.Paths.Map() {
		for method, o := range item.Operations() {
			op := &operation{
				pattern: method + " " + path,
				route:   &routers.Route{Spec: spec, Path: path, PathItem: item, Method: method, Operation: o},
			}
			op.rule, _ = o.Extensions["x-authz"].(string)
			srs := security(op.route)
			op.secured = len(srs) > 0
			op.direct = len(srs) == 0 || len(srs) == 1 && len(srs[0]) == 1 && srs[0]["bearerAuth"] != nil
			for _, p := range parameters(op.route) {
				if p.In == openapi3.ParameterInPath {
					op.pathParams = append(op.pathParams, p.Name)
				}
			}
			op.quick = compileQuick(op.route)
			ops[op.pattern] = op
		}
	}
	return ops
}

// parameters are the operation's parameters and those of its path item it does not
// override, as kin-openapi's ValidateRequest takes them.
func parameters(route *routers.Route) []*openapi3.Parameter {
	var out []*openapi3.Parameter
	own := route.Operation.Parameters
	for _, ref := range route.PathItem.Parameters {
		if own != nil && own.GetByInAndName(ref.Value.In, ref.Value.Name) != nil {
			continue
		}
		out = append(out, ref.Value)
	}
	for _, ref := range own {
		out = append(out, ref.Value)
	}
	return out
}

// params are the request's path parameters for kin-openapi; the mux has set them.
func (op *operation) params(r *http.Request) map[string]string {
	m := make(map[string]string, len(op.pathParams))
	for _, name := range op.pathParams {
		m[name] = r.PathValue(name)
	}
	return m
}

// routeMux is the one route table: every handler registered on it, the generated ones
// included, is wrapped by stack with what is known of its pattern, so that one ServeMux match
// per request tells the access log, the metrics, the limiter and the validator which route and
// operation it is (HEAD takes the GET route, as the mux answers it). Requests the mux redirects
// (to a cleaned path) reach no route and are logged as unmatched.
type routeMux struct {
	*http.ServeMux
	ops    map[string]*operation
	hidden map[string]bool // operations of domains this process does not serve: not registered
	stack  func(pattern string, op *operation, h http.Handler) http.Handler
	seen   map[string]bool
}

func newRouteMux(ops map[string]*operation, hidden map[string]bool, stack func(string, *operation, http.Handler) http.Handler) *routeMux {
	return &routeMux{ServeMux: http.NewServeMux(), ops: ops, hidden: hidden, stack: stack, seen: map[string]bool{}}
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	if m.hidden[pattern] {
		return
	}
	m.seen[pattern] = true
	m.ServeMux.Handle(pattern, m.stack(pattern, m.ops[pattern], h))
}

// complete refuses a table in which an operation of the contract got no handler under its
// pattern: its requests would reach the catch-all, or a handler that skips validation.
func (m *routeMux) complete() error {
	for pattern := range m.ops {
		if !m.seen[pattern] {
			return fmt.Errorf("api: no handler is registered for %q", pattern)
		}
	}
	return nil
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// onRoute records the route in the request's state for the layers after it and the access log.
func onRoute(pattern string, op *operation, next http.Handler) http.Handler {
	route := pattern
	if pattern == "/" { // the catch-all that answers 404 and 405
		route = ""
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r)
		st.pattern, st.route, st.op = pattern, route, op
		next.ServeHTTP(w, r)
	})
}

// unmatched answers requests no route takes: 405 with Allow when the path exists under other
// methods, else 404.
func unmatched(router routers.Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, err := router.FindRoute(r); err == routers.ErrMethodNotAllowed {
			if allow := allowed(router, r); allow != "" {
				w.Header().Set("Allow", allow)
			}
			writeProblem(w, newProblem(http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on this path.", r.Method)))
			return
		}
		writeProblem(w, newProblem(http.StatusNotFound, "No resource lives at this path."))
	})
}

func allowed(router routers.Router, r *http.Request) string {
	var ms []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, _, err := router.FindRoute(probe); err == nil {
			ms = append(ms, m)
			if m == http.MethodGet { // answered like GET, without the body
				ms = append(ms, http.MethodHead)
			}
		}
	}
	return strings.Join(ms, ", ")
}
