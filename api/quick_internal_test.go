package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/storage"
)

// samples are values of a parameter of the plan's kind, good and bad, near every bound the
// plan or kin-openapi might draw differently.
func samples(p quickParam) []string {
	if p.integer {
		out := []string{"0", "1", "7", "20", "42", "-1", "-0", "+1", "007", "01", "1.0", "1.5", "1e3", "0x1F", "abc",
			" 1", "1 ", "１", "1_000", "9007199254740991", "9007199254740992", "9223372036854775807",
			"9223372036854775808", "99999999999999999999", "-9007199254740993", "2147483647", "2147483648", "%31"}
		for _, n := range []int64{p.lo - 1, p.lo, p.lo + 1, p.hi - 1, p.hi, p.hi + 1} {
			out = append(out, strconv.FormatInt(n, 10))
		}
		return out
	}
	out := []string{"a", "abc", `W/"x"`, `"etag"`, "é", "a b", "\x00", "a\tb", "\xff", "%41", "%", "/"}
	for _, n := range []int{p.minLen - 1, p.minLen, p.minLen + 1, p.maxLen - 1, p.maxLen, p.maxLen + 1} {
		if n > 0 {
			out = append(out, strings.Repeat("x", n), strings.Repeat("é", n))
		}
	}
	return out
}

// good is a value the plan must accept: a request of good values and absent optionals is
// the common case the quick path exists for.
func good(p quickParam) string {
	if p.integer {
		return strconv.FormatInt(max(p.lo, min(p.hi, 1)), 10)
	}
	return strings.Repeat("x", max(p.minLen, 1))
}

// request builds a request for op with the given values (absent when missing; a header or
// query value given twice when twice is set).
func request(op *operation, vals map[string]string, twice string) *http.Request {
	path := op.route.Path
	q := url.Values{}
	h := http.Header{}
	for _, p := range op.quick.params {
		v, ok := vals[p.name]
		if !ok {
			continue
		}
		switch p.in {
		case "path":
			path = strings.Replace(path, "{"+p.name+"}", url.PathEscape(v), 1)
		case "query":
			q.Add(p.name, v)
			if twice == p.name {
				q.Add(p.name, v)
			}
		case "header":
			h.Add(p.name, v)
			if twice == p.name {
				h.Add(p.name, v)
			}
		}
	}
	for _, p := range op.quick.params { // an absent path parameter still needs a segment
		if p.in == "path" {
			path = strings.Replace(path, "{"+p.name+"}", "1", 1)
		}
	}
	u := &url.URL{Path: path, RawQuery: q.Encode()}
	r := httptest.NewRequest(op.route.Method, u.String(), nil)
	for k, vs := range h {
		r.Header[k] = vs
	}
	return r.WithContext(auth.WithCaller(context.Background(), auth.Caller{UserID: 1, Role: storage.RoleAdmin}))
}

// answer is what validate made of a request: the status and body it wrote, or, when it let
// the request through, 200 and the query the handler saw (kin-openapi writes defaults there).
func answer(op *operation, r *http.Request) (int, string) {
	mux := http.NewServeMux()
	mux.Handle(op.pattern, validate(op, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("passed; query " + r.URL.RawQuery))
	})))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, r)
	return rec.Code, rec.Body.String()
}

// TestQuickAgreesWithKin: for every operation with a quick plan, for samples of good and bad
// values of each parameter (and each parameter absent, and repeated), the validator with its
// quick plan answers exactly as kin-openapi alone does (the same status, the same fields in the
// same words, the same defaults), and the plan does take the common request.
func TestQuickAgreesWithKin(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	ops := operations(spec)
	for _, must := range []string{"GET /vehicles/{id}", "GET /users/{id}", "GET /vehicles", "GET /users/{id}/vehicles"} {
		if ops[must] == nil || ops[must].quick == nil {
			t.Errorf("%s has no quick plan; it would pay for kin-openapi on every request", must)
		}
	}
	compared := 0
	for pattern, op := range ops {
		if op.quick == nil {
			continue
		}
		slow := *op
		slow.quick = nil
		base := map[string]string{}
		for _, p := range op.quick.params {
			if p.required {
				base[p.name] = good(p)
			}
		}
		check := func(vals map[string]string, twice string) {
			t.Helper()
			compared++
			qs, qb := answer(op, request(op, vals, twice))
			ks, kb := answer(&slow, request(op, vals, twice))
			if qs != ks || qb != kb {
				t.Errorf("%s %v (twice %q): quick path %d %s; kin-openapi %d %s", pattern, vals, twice, qs, qb, ks, kb)
			}
		}
		took := false
		mux := http.NewServeMux()
		mux.HandleFunc(op.pattern, func(_ http.ResponseWriter, r *http.Request) { took = op.quick.accepts(r) })
		r := request(op, base, "")
		if mux.ServeHTTP(httptest.NewRecorder(), r); !took {
			t.Errorf("%s: the quick plan does not take %s", pattern, r.URL)
		}
		check(base, "")
		for _, p := range op.quick.params {
			vals := func(v string) map[string]string {
				m := map[string]string{}
				for k, x := range base {
					m[k] = x
				}
				m[p.name] = v
				return m
			}
			for _, v := range samples(p) {
				check(vals(v), "")
			}
			check(vals(""), "")
			if p.in != "path" {
				check(vals(good(p)), p.name)
				without := vals("")
				delete(without, p.name)
				check(without, "")
			}
		}
	}
	if compared < 100 {
		t.Errorf("compared only %d requests", compared)
	}
}

// TestRouteTableComplete: a contract operation with no handler under its pattern stops the
// service at start, instead of reaching the catch-all or skipping validation.
func TestRouteTableComplete(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	m := newRouteMux(operations(spec), nil, func(_ string, _ *operation, h http.Handler) http.Handler { return h })
	m.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {})
	err = m.complete()
	if err == nil || !strings.Contains(err.Error(), "no handler is registered") {
		t.Fatalf("complete() = %v, want an error naming a missing pattern", err)
	}
}

// TestDirectAuthzAgreesWithKin: deciding authorization from the x-authz rule directly gives,
// for every operation and every kind of caller, the answer kin-openapi's security pass gives.
func TestDirectAuthzAgreesWithKin(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	callers := map[string]func(context.Context) context.Context{
		"no token":    func(ctx context.Context) context.Context { return ctx },
		"refused":     withAuthErr(auth.ErrInvalidToken),
		"undecidable": withAuthErr(auth.ErrUnavailable),
		"user 2": func(ctx context.Context) context.Context {
			return auth.WithCaller(ctx, auth.Caller{UserID: 2, Role: storage.RoleUser})
		},
		"admin": func(ctx context.Context) context.Context {
			return auth.WithCaller(ctx, auth.Caller{UserID: 1, Role: storage.RoleAdmin})
		},
	}
	decision := func(err error) string {
		if err == nil {
			return "allowed"
		}
		if ae, ok := errors.AsType[*authzError](err); ok {
			return fmt.Sprintf("%d %q badInput=%v cause=%v", ae.status, ae.detail, ae.badInput, ae.cause)
		}
		return "error " + err.Error()
	}
	direct := 0
	for pattern, op := range operations(spec) {
		if !op.direct {
			continue
		}
		direct++
		viaKin := *op
		viaKin.direct = false
		path := op.route.Path
		for _, id := range []string{"1", "2", "abc", "0"} {
			for who, with := range callers {
				var got, want string
				mux := http.NewServeMux()
				mux.HandleFunc(op.pattern, func(_ http.ResponseWriter, r *http.Request) {
					got, want = decision(op.authorize(r)), decision(viaKin.authorize(r))
				})
				r := httptest.NewRequest(op.route.Method, strings.ReplaceAll(path, "{id}", id), nil)
				r = r.WithContext(with(r.Context()))
				mux.ServeHTTP(httptest.NewRecorder(), r)
				if got != want {
					t.Errorf("%s id %s, %s: direct %s; kin-openapi %s", pattern, id, who, got, want)
				}
			}
		}
	}
	if direct == 0 {
		t.Error("no operation is authorized directly")
	}
}

func withAuthErr(err error) func(context.Context) context.Context {
	return func(ctx context.Context) context.Context {
		return context.WithValue(ctx, admissionKey{}, admission{authErr: err})
	}
}
