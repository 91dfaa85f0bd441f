package api

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
)

// A quickPlan proves, with typed checks derived from the contract at start, that the
// parameters of a request for an operation without a body are valid: a signed-in GET of one
// id should not pay for a general validator. It only ever accepts: whatever it cannot prove
// (a value out of bounds, not canonical, repeated, empty, percent-encoded) goes to
// kin-openapi, which then refuses it, or accepts it, in its own words. So every fault is still
// named exactly as before, and the quick path can only be wrong by accepting what kin-openapi
// would refuse, which TestQuickAgreesWithKin looks for.
type quickPlan struct {
	params []quickParam
}

type quickParam struct {
	name     string
	in       string // path, query or header
	required bool
	integer  bool  // else a string
	lo, hi   int64 // an integer's bounds, inclusive
	minLen   int   // a string's bounds, in runes (maxLen < 0: none)
	maxLen   int
	// def is the default kin-openapi writes into the query when the parameter is absent
	// (fmt.Sprint of the contract's value, as it does); hasDef says there is one.
	def    string
	hasDef bool
}

// maxExact bounds the integers accepted quickly: kin-openapi compares numbers as float64,
// which holds every integer up to 2^53 exactly, so within it both agree by construction.
const maxExact = 1<<53 - 1

// compileQuick returns the plan for an operation, or nil when the operation takes a body or
// has a parameter whose schema uses anything the plan does not check: those always go to
// kin-openapi.
func compileQuick(route *routers.Route) *quickPlan {
	if route.Operation.RequestBody != nil {
		return nil
	}
	q := &quickPlan{}
	for _, p := range parameters(route) {
		qp, ok := compileParam(p)
		if !ok {
			return nil
		}
		q.params = append(q.params, qp)
	}
	return q
}

func compileParam(p *openapi3.Parameter) (quickParam, bool) {
	if p.Schema == nil || p.Schema.Value == nil || !plainParameter(p) {
		return quickParam{}, false
	}
	s := p.Schema.Value
	if !plainSchema(s) || s.Type == nil || len(*s.Type) != 1 {
		return quickParam{}, false
	}
	qp := quickParam{name: p.Name, in: p.In, required: p.Required, maxLen: -1}
	switch {
	case s.Type.Is(openapi3.TypeInteger):
		qp.integer, qp.lo, qp.hi = true, -maxExact, maxExact
		switch s.Format {
		case "", "int64":
		case "int32":
			qp.lo, qp.hi = math.MinInt32, math.MaxInt32
		default:
			return quickParam{}, false
		}
		if s.Min != nil {
			qp.lo = max(qp.lo, int64(math.Ceil(max(*s.Min, -maxExact))))
		}
		if s.Max != nil {
			qp.hi = min(qp.hi, int64(math.Floor(min(*s.Max, maxExact))))
		}
	case s.Type.Is(openapi3.TypeString) && s.Format == "":
		qp.minLen = int(min(s.MinLength, math.MaxInt32))
		if s.MaxLength != nil {
			qp.maxLen = int(min(*s.MaxLength, math.MaxInt32))
		}
	default:
		return quickParam{}, false
	}
	if s.Default != nil {
		qp.def, qp.hasDef = fmt.Sprint(s.Default), true
		// Only a query default is written where the handler reads it; and one the plan
		// would not accept is left to kin-openapi, which validates it.
		if p.In != openapi3.ParameterInQuery || !qp.valid(qp.def) {
			return quickParam{}, false
		}
	}
	return qp, true
}

// plainParameter: in the path, the query or a header, serialized the default way.
func plainParameter(p *openapi3.Parameter) bool {
	c := *p
	style, explode := "simple", false
	switch c.In {
	case openapi3.ParameterInPath, openapi3.ParameterInHeader:
	case openapi3.ParameterInQuery:
		style, explode = "form", true
	default:
		return false
	}
	if c.Style == style {
		c.Style = ""
	}
	if c.Explode != nil && *c.Explode == explode {
		c.Explode = nil
	}
	// What does not change how a value is read or judged.
	c.Extensions, c.Origin, c.Name, c.In, c.Description, c.Deprecated, c.Required = nil, nil, "", "", "", false, false
	c.Schema, c.Example, c.Examples = nil, nil, nil
	return reflect.DeepEqual(c, openapi3.Parameter{})
}

// plainSchema: the schema uses no keyword but type, format, bounds, lengths and a default
// (and the ones that change nothing, such as description). Any other, present or added
// later, sends the operation to kin-openapi.
func plainSchema(s *openapi3.Schema) bool {
	c := *s
	c.Extensions, c.Origin, c.Title, c.Description, c.Example, c.Examples, c.ExternalDocs, c.Comment, c.Deprecated =
		nil, nil, "", "", nil, nil, nil, "", false
	c.Type, c.Format, c.Min, c.Max, c.MinLength, c.MaxLength, c.Default = nil, "", nil, nil, 0, nil, nil
	return reflect.DeepEqual(c, openapi3.Schema{})
}

// accepts reports whether every parameter of r is proven valid, writing the query defaults
// kin-openapi would; false means "let kin-openapi decide", not "refused".
func (q *quickPlan) accepts(r *http.Request) bool {
	if q == nil {
		return false
	}
	var query url.Values
	defaults := false
	for i := range q.params {
		p := &q.params[i]
		var v string
		var n int
		switch p.in {
		case openapi3.ParameterInPath:
			if v = r.PathValue(p.name); v != "" {
				n = 1
			}
		case openapi3.ParameterInHeader:
			vs := r.Header.Values(p.name)
			if n = len(vs); n == 1 {
				v = vs[0]
			}
		case openapi3.ParameterInQuery:
			if query == nil && r.URL.RawQuery != "" {
				query = r.URL.Query()
			}
			vs := query[p.name]
			if n = len(vs); n == 1 {
				v = vs[0]
			}
		}
		switch {
		case n == 0 && p.required:
			return false
		case n == 0:
			defaults = defaults || p.hasDef
		case n > 1 || !p.valid(v):
			return false
		}
	}
	if defaults {
		if query == nil {
			query = url.Values{}
		}
		for _, p := range q.params {
			if p.hasDef && query[p.name] == nil {
				query.Add(p.name, p.def)
			}
		}
		r.URL.RawQuery = query.Encode()
	}
	return true
}

// valid reports whether v is, beyond doubt, a value the parameter's schema takes.
func (p *quickParam) valid(v string) bool {
	if p.integer {
		n, ok := canonicalInt(v)
		return ok && p.lo <= n && n <= p.hi
	}
	if !utf8.ValidString(v) || p.in == openapi3.ParameterInPath && strings.Contains(v, "%") {
		return false
	}
	n := utf8.RuneCountInString(v)
	return n >= p.minLen && (p.maxLen < 0 || n <= p.maxLen)
}

// canonicalInt parses a plain decimal integer: an optional minus, no leading zeros, at most
// 15 digits (below 2^53). Anything else ("+1", "007", "1e3", "-0") is not proven.
func canonicalInt(v string) (int64, bool) {
	digits := strings.TrimPrefix(v, "-")
	if digits == "" || len(digits) > 15 || digits[0] == '0' && (len(digits) > 1 || len(v) > 1) {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}
