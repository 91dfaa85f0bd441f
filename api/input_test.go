package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/motorpool/motorpool/client"
)

// Control characters in any stored text field get the same 400 naming the field on both
// pairings; PostgreSQL refuses NUL with an error, SQLite would have stored it.
func TestControlCharactersRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		ctx := context.Background()
		owner := mustUser(t, s, "owner@example.com")
		veh := mustVehicle(t, s, owner.Id, 1)
		for _, ch := range []string{"\x00", "\x07", "\t", "\n", "\x1f", "\x7f", "\u0085", "\u009f"} {
			bad := "Bad" + ch + "Value"
			vehicle := func(field string) client.VehicleCreate {
				v := client.VehicleCreate{Make: "Toyota", Model: "Corolla", Year: 2020, Vin: vin(100), LicensePlate: "AB-1"}
				switch field {
				case "make":
					v.Make = bad
				case "model":
					v.Model = bad
				case "licensePlate":
					v.LicensePlate = bad
				case "color":
					v.Color = &bad
				}
				return v
			}
			for _, field := range []string{"make", "model", "licensePlate", "color"} {
				t.Run(fmt.Sprintf("%s %q", field, ch), func(t *testing.T) {
					cr, err := s.Client.CreateVehicleWithResponse(ctx, vehicle(field))
					if err != nil {
						t.Fatal(err)
					}
					wantFieldError(t, cr.StatusCode(), cr.ApplicationproblemJSON400, cr.Body, field)
					up, err := s.Client.UpdateVehicleWithResponse(ctx, veh.Id, client.VehicleUpdate(vehicle(field)))
					if err != nil {
						t.Fatal(err)
					}
					wantFieldError(t, up.StatusCode(), up.ApplicationproblemJSON400, up.Body, field)
				})
			}
			t.Run(fmt.Sprintf("name %q", ch), func(t *testing.T) {
				cr, err := s.Client.CreateUserWithResponse(ctx, client.UserCreate{Email: "new@example.com", Name: bad, Password: testPassword})
				if err != nil {
					t.Fatal(err)
				}
				wantFieldError(t, cr.StatusCode(), cr.ApplicationproblemJSON400, cr.Body, "name")
				up, err := s.Client.UpdateUserWithResponse(ctx, owner.Id, client.UserUpdate{Email: owner.Email, Name: bad})
				if err != nil {
					t.Fatal(err)
				}
				wantFieldError(t, up.StatusCode(), up.ApplicationproblemJSON400, up.Body, "name")
			})
			t.Run(fmt.Sprintf("email %q", ch), func(t *testing.T) {
				// The generated client will not send such an email: a raw request.
				body, _ := json.Marshal(map[string]string{"email": "a" + ch + "b@example.com", "name": "A", "password": testPassword})
				resp, b := s.do(t, "POST", "/users", "application/json", bytes.NewReader(body))
				p := decodeProblem(t, resp, b)
				wantFieldError(t, resp.StatusCode, &p, b, "email")
			})
		}
		// Text that is merely unusual still goes in.
		u, err := s.Client.UpdateUserWithResponse(ctx, owner.Id, client.UserUpdate{Email: owner.Email, Name: "Zoë  O’Brien-李 😀"})
		if err != nil || u.JSON200 == nil || u.JSON200.Name != "Zoë  O’Brien-李 😀" {
			t.Fatalf("plain Unicode name: %v %s", err, u.Body)
		}
		g, err := s.Client.GetVehicleWithResponse(ctx, veh.Id, nil)
		if err != nil || g.JSON200 == nil || g.JSON200.Make != veh.Make || g.JSON200.Model != veh.Model {
			t.Errorf("vehicle changed by refused updates: %v %s", err, g.Body)
		}
	})
}

// wantFieldError fails unless the answer is a 400 problem naming field.
func wantFieldError(t *testing.T, status int, p *client.BadRequest, body []byte, field string) {
	t.Helper()
	if status != 400 || p == nil {
		t.Fatalf("status %d, want 400: %s", status, body)
	}
	var fields []string
	if p.Errors != nil {
		for _, e := range *p.Errors {
			fields = append(fields, e.Field)
			if e.Field == field && strings.Contains(e.Message, "control") {
				return
			}
		}
	}
	t.Errorf("errors name %v, want %q refused for control characters: %s", fields, field, body)
}

// A body is one JSON value (RFC 8259): data after it is refused, not silently dropped, and
// nothing is created.
func TestTrailingDataRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		valid := `{"email":"eve@example.com","name":"Eve","password":"correct horse battery"}`
		for _, tail := range []string{`{"role":"admin"}`, ` {"role":"admin"}`, "\n[]", ` "x"`, ` 1`, `}`, ` null`} {
			t.Run(tail, func(t *testing.T) {
				resp, b := s.do(t, "POST", "/users", "application/json", strings.NewReader(valid+tail))
				if resp.StatusCode != 400 {
					t.Fatalf("%q after the body: %d %s, want 400", tail, resp.StatusCode, b)
				}
				p := decodeProblem(t, resp, b)
				if got := problemFields(p); !slices.Equal(got, []string{"body"}) {
					t.Errorf("errors name %v, want [body]: %s", got, b)
				}
			})
		}
		r, err := s.Client.ListUsersWithResponse(context.Background(), &client.ListUsersParams{Email: ptr(client.Email("eve@example.com"))})
		if err != nil || r.JSON200 == nil || len(r.JSON200.Items) != 0 {
			t.Fatalf("a refused body created the user: %v %s", err, r.Body)
		}
		// Whitespace after the value is still one value.
		resp, b := s.do(t, "POST", "/users", "application/json", strings.NewReader(valid+" \r\n\t"))
		if resp.StatusCode != 201 {
			t.Fatalf("trailing whitespace: %d %s, want 201", resp.StatusCode, b)
		}
	})
}

// Every fault of a request comes back in one answer, whichever layer would have found it, and
// a body with thousands of faults gets a bounded answer: the first 20 and the count.
func TestValidationErrorsAllAtOnceAndCapped(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		owner := mustUser(t, s, "owner@example.com")
		veh := mustVehicle(t, s, owner.Id, 1)
		bad := `{"make":"","model":"Corolla","year":2020.0,"vin":"nope","licensePlate":"AB","extra":1}`
		cases := []struct {
			name, method, path string
			want               []string
		}{
			{"body faults of every kind", "PUT", "/vehicles/" + itoa(veh.Id), []string{"extra", "make", "vin", "year"}},
			{"path and body together", "PUT", "/vehicles/abc", []string{"extra", "id", "make", "vin", "year"}},
			{"create", "POST", "/vehicles", []string{"extra", "make", "vin", "year"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				resp, b := s.do(t, c.method, c.path, "application/json", strings.NewReader(bad))
				if resp.StatusCode != 400 {
					t.Fatalf("%d %s, want 400", resp.StatusCode, b)
				}
				p := decodeProblem(t, resp, b)
				got := slices.Compact(problemFields(p))
				if !slices.Equal(got, c.want) {
					t.Errorf("errors name %v, want %v: %s", got, c.want, b)
				}
				if p.ErrorCount == nil || *p.ErrorCount != len(*p.Errors) {
					t.Errorf("errorCount = %v, want %d", p.ErrorCount, len(*p.Errors))
				}
				noGoInternals(t, b)
			})
		}

		t.Run("60000 faults", func(t *testing.T) {
			var sb strings.Builder
			sb.WriteString(`{"email":"a@example.com","name":"A","password":"correct horse battery"`)
			for i := range 60000 {
				fmt.Fprintf(&sb, `,"f%d":1`, i)
			}
			sb.WriteString("}")
			resp, b := s.do(t, "POST", "/users", "application/json", strings.NewReader(sb.String()))
			if resp.StatusCode != 400 {
				t.Fatalf("%d, want 400", resp.StatusCode)
			}
			p := decodeProblem(t, resp, b)
			if p.Errors == nil || len(*p.Errors) != 20 || p.ErrorCount == nil || *p.ErrorCount != 60000 {
				t.Errorf("errors: %d listed, errorCount %v; want 20 and 60000", len(problemFields(p)), p.ErrorCount)
			}
			if len(b) > 4096 {
				t.Errorf("answer is %d bytes, want a bounded one", len(b))
			}
		})
	})
}

// noGoInternals fails if a client-facing message speaks the decoder's Go vocabulary.
func noGoInternals(t *testing.T, body []byte) {
	t.Helper()
	for _, leak := range []string{"Go struct", "json:", "strconv", "int32 ", "int64 ", "can't decode", "unmarshal", "json.Number", "float64"} {
		if strings.Contains(string(body), leak) {
			t.Errorf("answer leaks %q: %s", leak, body)
		}
	}
}

// A number where the contract wants an integer is named in the contract's words.
func TestTypeErrorsInContractWords(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		for _, year := range []string{"2020.0", "2.02e3", "2020E0"} {
			t.Run(year, func(t *testing.T) {
				body := `{"make":"Toyota","model":"Corolla","year":` + year + `,"vin":"1HGCM82633A004352","licensePlate":"AB-1"}`
				resp, b := s.do(t, "POST", "/vehicles", "application/json", strings.NewReader(body))
				if resp.StatusCode != 400 {
					t.Fatalf("%d %s, want 400", resp.StatusCode, b)
				}
				p := decodeProblem(t, resp, b)
				if p.Errors == nil || len(*p.Errors) != 1 || (*p.Errors)[0].Field != "year" || !strings.Contains((*p.Errors)[0].Message, "integer") {
					t.Errorf("want one error naming year as not an integer: %s", b)
				}
				noGoInternals(t, b)
			})
		}
	})
}
