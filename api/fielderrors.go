package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/motorpool/motorpool/gen"
)

// fieldErrors flattens kin-openapi's error tree into one entry per offending field.
func fieldErrors(err error) []gen.FieldError {
	if err == nil {
		return nil
	}
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
			msg := "is not valid JSON"
			if field != "" {
				msg = "is not of the declared type"
			}
			out = append(out, problemField(orBody(field), msg))
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
	switch {
	case e.SchemaField == "pattern":
		msg = patternMessage(e)
	case strings.Contains(msg, "json.Number"): // a number no float64 holds, such as 1e400
		msg = "is out of range"
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
// catches first; it says what is wrong in the contract's words, not the decoder's.
func bodyError(w http.ResponseWriter, _ *http.Request, err error) {
	writeProblem(w, newProblem(http.StatusBadRequest, "The request body could not be decoded.", decodeFault(err)))
}

func decodeFault(err error) gen.FieldError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		msg := "must be " + contractType(te.Type)
		if te.Value != "" {
			msg += ", not " + te.Value
		}
		return problemField(orBody(te.Field), msg)
	}
	if _, ok := errors.AsType[*json.SyntaxError](err); ok || errors.Is(err, io.ErrUnexpectedEOF) {
		return problemField("body", syntaxMessage(err))
	}
	return problemField("body", "does not match the declared types")
}

// contractType names a Go type the way openapi.yaml does.
func contractType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int32:
		return "an integer (int32)"
	case reflect.Int64:
		return "an integer (int64)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of the declared type"
}
