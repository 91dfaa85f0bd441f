package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/motorpool/motorpool/gen"
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
			vehicle := func(field string) gen.VehicleCreate {
				v := gen.VehicleCreate{Make: "Toyota", Model: "Corolla", Year: 2020, Vin: vin(100), LicensePlate: "AB-1"}
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
					up, err := s.Client.UpdateVehicleWithResponse(ctx, veh.Id, gen.VehicleUpdate(vehicle(field)))
					if err != nil {
						t.Fatal(err)
					}
					wantFieldError(t, up.StatusCode(), up.ApplicationproblemJSON400, up.Body, field)
				})
			}
			t.Run(fmt.Sprintf("name %q", ch), func(t *testing.T) {
				cr, err := s.Client.CreateUserWithResponse(ctx, gen.UserCreate{Email: "new@example.com", Name: bad, Password: testPassword})
				if err != nil {
					t.Fatal(err)
				}
				wantFieldError(t, cr.StatusCode(), cr.ApplicationproblemJSON400, cr.Body, "name")
				up, err := s.Client.UpdateUserWithResponse(ctx, owner.Id, gen.UserUpdate{Email: owner.Email, Name: bad})
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
		u, err := s.Client.UpdateUserWithResponse(ctx, owner.Id, gen.UserUpdate{Email: owner.Email, Name: "Zoë  O’Brien-李 😀"})
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
func wantFieldError(t *testing.T, status int, p *gen.BadRequest, body []byte, field string) {
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
