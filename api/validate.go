package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	nethttpmiddleware "github.com/oapi-codegen/nethttp-middleware"

	"github.com/motorpool/motorpool/gen"
)

func problemField(field, message string) gen.FieldError {
	return gen.FieldError{Field: field, Message: message}
}

// validator checks every request against the spec before the handler sees it.
func validator(spec *openapi3.T) func(http.Handler) http.Handler {
	return nethttpmiddleware.OapiRequestValidatorWithOptions(spec, &nethttpmiddleware.Options{
		Options: openapi3filter.Options{
			MultiError:         true,
			AuthenticationFunc: authorize,
		},
		DoNotValidateServers:  true,
		SilenceServersWarning: true,
		ErrorHandlerWithOpts: func(_ context.Context, err error, w http.ResponseWriter, r *http.Request, opts nethttpmiddleware.ErrorHandlerOpts) {
			writeValidationError(w, r, err, opts.StatusCode)
		},
	})
}

func writeValidationError(w http.ResponseWriter, r *http.Request, err error, status int) {
	// Who may call comes before what they sent: an unauthenticated request learns nothing
	// about its body's faults.
	var ae *authzError
	if errors.As(err, &ae) {
		writeAuthzError(w, r, ae)
		return
	}
	switch {
	case status == http.StatusNotFound:
		writeProblem(w, newProblem(http.StatusNotFound, "No operation matches this path."))
		return
	case status == http.StatusMethodNotAllowed:
		writeProblem(w, newProblem(http.StatusMethodNotAllowed, "The path does not take this method."))
		return
	case status >= 500:
		internalError(w, r, fmt.Errorf("request validation: %w", err))
		return
	}
	fields := fieldErrors(err)
	if len(fields) == 0 {
		fields = []gen.FieldError{problemField("request", err.Error())}
	}
	writeProblem(w, newProblem(http.StatusBadRequest, "The request does not match the API contract.", fields...))
}

// fieldErrors flattens kin-openapi's error tree into one entry per offending field.
func fieldErrors(err error) []gen.FieldError {
	var out []gen.FieldError
	var walk func(error, string)
	walk = func(err error, field string) {
		// Match each level's own type: errors.As would look through a RequestError into its
		// MultiError and lose the parameter name on the way.
		switch e := err.(type) {
		case openapi3.MultiError:
			for _, sub := range e {
				walk(sub, field)
			}
		case *openapi3filter.RequestError:
			switch {
			case e.Parameter != nil:
				field = e.Parameter.Name
			case e.RequestBody != nil:
				field = ""
			}
			switch {
			case e.Err == nil:
				out = append(out, problemField(orBody(field), e.Reason))
			case errors.Is(e.Err, openapi3filter.ErrInvalidRequired):
				out = append(out, problemField(orBody(field), "is required"))
			default:
				walk(e.Err, field)
			}
		case *openapi3.SchemaError:
			out = append(out, schemaField(e, field))
		case *openapi3filter.ParseError:
			out = append(out, problemField(orBody(field), "is not valid JSON or not of the declared type: "+e.Error()))
		default:
			if inner := errors.Unwrap(err); inner != nil {
				walk(inner, field)
				return
			}
			out = append(out, problemField(orBody(field), err.Error()))
		}
	}
	walk(err, "")
	return out
}

func orBody(field string) string {
	if field == "" {
		return "body"
	}
	return field
}

var propertyReason = regexp.MustCompile(`^property "(.*)" is (missing|unsupported)$`)

// schemaField names the property a schema error is about: JSON pointer segments joined with
// dots, plus the property itself for "missing" and "unsupported" errors, which kin-openapi
// reports on the enclosing object.
func schemaField(e *openapi3.SchemaError, prefix string) gen.FieldError {
	path := e.JSONPointer()
	if prefix != "" {
		path = append([]string{prefix}, path...)
	}
	msg := e.Reason
	if e.SchemaField == "pattern" {
		msg = patternMessage(e)
	}
	if m := propertyReason.FindStringSubmatch(e.Reason); m != nil {
		if len(path) == 0 || path[len(path)-1] != m[1] {
			path = append(path, m[1])
		}
		if m[2] == "missing" {
			msg = "is required"
		} else {
			msg = "is not a field of this object"
		}
	}
	return problemField(orBody(strings.Join(path, ".")), msg)
}

// patternMessage says in plain words why a string failed the text patterns of the contract
// (no control characters, not blank); other patterns keep kin-openapi's reason.
func patternMessage(e *openapi3.SchemaError) string {
	v, _ := e.Value.(string)
	switch {
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return "must not contain control characters"
	case strings.TrimSpace(v) == "":
		return "must not be blank"
	}
	return e.Reason
}

// paramError answers the generated router's parameter binding errors (an id that is not an
// integer, a limit that is not a number) with a 400 naming the parameter.
func paramError(w http.ResponseWriter, _ *http.Request, err error) {
	name := "request"
	var (
		format   *gen.InvalidParamFormatError
		required *gen.RequiredParamError
		many     *gen.TooManyValuesForParamError
		unmarsh  *gen.UnmarshalingParamError
		header   *gen.RequiredHeaderError
	)
	msg := "is not valid"
	switch {
	case errors.As(err, &format):
		name, msg = format.ParamName, "is not of the declared type"
	case errors.As(err, &required):
		name, msg = required.ParamName, "is required"
	case errors.As(err, &many):
		name, msg = many.ParamName, "must be given once"
	case errors.As(err, &unmarsh):
		name, msg = unmarsh.ParamName, "is not of the declared type"
	case errors.As(err, &header):
		name, msg = header.ParamName, "is required"
	}
	writeProblem(w, newProblem(http.StatusBadRequest, "The request does not match the API contract.", problemField(name, msg)))
}

// bodyError answers the strict server's body decoding errors, which the validator normally
// catches first.
func bodyError(w http.ResponseWriter, _ *http.Request, err error) {
	writeProblem(w, newProblem(http.StatusBadRequest, "The request body could not be decoded.", problemField("body", err.Error())))
}
