package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/motorpool/motorpool/gen"
)

func problemField(field, message string) gen.FieldError {
	return gen.FieldError{Field: field, Message: message}
}

// validate checks every request for op before the generated router binds its parameters,
// in the order a caller should learn about faults: who may call first (a caller without a
// valid token learns nothing about its input), then every fault of the parameters and the
// body at once. Routes that are no operation (the spec, the docs, metrics, 404 and 405) get
// next unchanged.
func validate(op *operation, next http.Handler) http.Handler {
	if op == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var refused *authzError // refused for a malformed id: the 400 goes first, else this
		if err := op.authorize(r); err != nil {
			if ae, ok := errors.AsType[*authzError](err); ok && ae.badInput {
				refused = ae
			} else {
				writeValidationError(w, r, err)
				return
			}
		}
		if refused == nil && op.quick.accepts(r) {
			next.ServeHTTP(w, r)
			return
		}
		if !validInput(w, r, op) {
			return
		}
		if refused != nil {
			writeAuthzError(w, r, refused)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authorize decides whether the caller may call op: from its x-authz rule when its security
// is none or bearerAuth alone (all of the contract's today), else by kin-openapi's security
// pass, whose AuthenticationFunc applies the same rule.
func (op *operation) authorize(r *http.Request) error {
	if op.direct {
		if !op.secured {
			return nil
		}
		return authorizeRule(r, op.rule)
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: op.params(r), Route: op.route,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: authorize}}
	return openapi3filter.ValidateSecurityRequirements(r.Context(), in, security(op.route))
}

// validInput checks the parameters and the body with kin-openapi and answers 400 with every
// fault at once; it reports whether the request may go on.
func validInput(w http.ResponseWriter, r *http.Request, op *operation) bool {
	body, ok := jsonBody(w, r, op.route)
	if !ok {
		return false
	}
	// Authorization is decided; this pass checks parameters and body only.
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: op.params(r), Route: op.route,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: authorized}}
	fields := fieldErrors(openapi3filter.ValidateRequest(r.Context(), in))
	if len(body) > 0 {
		fields = append(fields, integerFaults(body, op.route.Operation.RequestBody.Value, fields)...)
	}
	if len(fields) > 0 {
		slices.SortStableFunc(fields, func(a, b gen.FieldError) int { return strings.Compare(a.Field, b.Field) })
		writeProblem(w, newProblem(http.StatusBadRequest, "The request does not match the API contract.", fields...))
		return false
	}
	return true
}

// jsonBody reads the body of an operation that takes one (limitBody has buffered it) and
// answers 400 unless it is one UTF-8 JSON value; the body is put back for what follows.
func jsonBody(w http.ResponseWriter, r *http.Request, op *routers.Route) ([]byte, bool) {
	if op.Operation.RequestBody == nil || r.Body == nil {
		return nil, true
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		internalError(w, r, fmt.Errorf("read buffered body: %w", err))
		return nil, false
	}
	if f, ok := bodyFault(body); !ok {
		writeProblem(w, newProblem(http.StatusBadRequest, "The request body is not a single JSON value.", f))
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, true
}

// security is the operation's security requirements, or the spec's when it declares none.
func security(route *routers.Route) openapi3.SecurityRequirements {
	if s := route.Operation.Security; s != nil {
		return *s
	}
	return route.Spec.Security
}

// authorized stands in for authorize once authorize has let the request through.
func authorized(context.Context, *openapi3filter.AuthenticationInput) error { return nil }

func writeValidationError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *authzError
	if errors.As(err, &ae) {
		writeAuthzError(w, r, ae)
		return
	}
	internalError(w, r, fmt.Errorf("request authorization: %w", err))
}

// bodyFault refuses a body that is not UTF-8 (RFC 8259 requires it; decoders would silently
// replace the bytes) or not exactly one JSON value: decoders stop after the first value, so
// anything after it would be ignored unseen.
func bodyFault(body []byte) (gen.FieldError, bool) {
	if len(body) == 0 {
		return gen.FieldError{}, true // a required body's absence is the validator's "is required"
	}
	if !utf8.Valid(body) {
		return problemField("body", "must be UTF-8 encoded JSON"), false
	}
	if json.Valid(body) {
		return gen.FieldError{}, true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var first json.RawMessage
	if err := dec.Decode(&first); err != nil {
		return problemField("body", syntaxMessage(err)), false
	}
	end := int(dec.InputOffset())
	end += len(body[end:]) - len(bytes.TrimLeft(body[end:], " \t\r\n"))
	// Bytes are counted from 1, as json.SyntaxError's offsets are.
	return problemField("body", fmt.Sprintf("must be a single JSON value; more data follows at byte %d", end+1)), false
}

// syntaxMessage says why a body is not JSON, without the decoder's Go vocabulary.
func syntaxMessage(err error) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("is not valid JSON: %s (at byte %d)", se.Error(), se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "is not valid JSON: it ends before the value does"
	}
	return "is not valid JSON"
}

// integerFaults names every integer field whose JSON literal has a fraction or an exponent
// (2020.0, 2e3). OpenAPI 3.0's JSON Schema counts only "a JSON number without a fraction or
// exponent part" as an integer; kin-openapi lets such literals through, and the handler's
// decoder would refuse them after the other faults had been reported. Fields already at
// fault are left out.
func integerFaults(body []byte, rb *openapi3.RequestBody, known []gen.FieldError) []gen.FieldError {
	mt := rb.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil // reported by the validator
	}
	var out []gen.FieldError
	var walk func(v any, s *openapi3.Schema, path []string)
	walk = func(v any, s *openapi3.Schema, path []string) {
		switch v := v.(type) {
		case json.Number:
			if s.Type.Is(openapi3.TypeInteger) && strings.ContainsAny(string(v), ".eE") {
				field := orBody(strings.Join(path, "."))
				if !slices.ContainsFunc(known, func(f gen.FieldError) bool { return f.Field == field }) {
					out = append(out, problemField(field, "must be an integer, written without a fraction or exponent"))
				}
			}
		case map[string]any:
			for k, sub := range v {
				if p := s.Properties[k]; p != nil && p.Value != nil {
					walk(sub, p.Value, append(slices.Clip(path), k))
				}
			}
		case []any:
			if s.Items != nil && s.Items.Value != nil {
				for i, sub := range v {
					walk(sub, s.Items.Value, append(slices.Clip(path), fmt.Sprint(i)))
				}
			}
		}
	}
	walk(v, mt.Schema.Value, nil)
	return out
}
