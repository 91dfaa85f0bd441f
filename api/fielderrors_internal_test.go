package api

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/gen"
)

// The strict handler's decode errors, should one get past the validator, are told in the
// contract's words: the field and the type it must be, never the Go struct.
func TestDecodeFault(t *testing.T) {
	decode := func(body string) error {
		var v gen.VehicleCreate
		return fmt.Errorf("can't decode JSON body: %w", json.Unmarshal([]byte(body), &v))
	}
	cases := []struct {
		body string
		want gen.FieldError
	}{
		{`{"year":2020.0}`, gen.FieldError{Field: "year", Message: "must be an integer (int32), not number 2020.0"}},
		{`{"userId":"1"}`, gen.FieldError{Field: "userId", Message: "must be an integer (int64), not string"}},
		{`{"make":5}`, gen.FieldError{Field: "make", Message: "must be a string, not number"}},
		{`[1]`, gen.FieldError{Field: "body", Message: "must be an object, not array"}},
		{`{"make":`, gen.FieldError{Field: "body", Message: "is not valid JSON: unexpected end of JSON input (at byte 8)"}},
		{`{"make" 1}`, gen.FieldError{Field: "body", Message: "is not valid JSON: invalid character '1' after object key (at byte 9)"}},
	}
	for _, c := range cases {
		if diff := cmp.Diff(c.want, decodeFault(decode(c.body))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.body, diff)
		}
	}
}
