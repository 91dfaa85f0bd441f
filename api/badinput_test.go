package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/motorpool/motorpool/client"
)

// Every kind of bad input gets a problem+json 4xx naming what is wrong; none reaches the
// store as a 500.
func TestBadInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		owner := mustUser(t, s, "owner@example.com")
		veh := mustVehicle(t, s, owner.Id, 1)
		usersCursor := func() string {
			mustUser(t, s, "second@example.com")
			r, err := s.Client.ListUsersWithResponse(context.Background(), &client.ListUsersParams{Limit: ptr(client.Limit(1))})
			if err != nil || r.JSON200 == nil || r.JSON200.NextCursor == nil {
				t.Fatalf("no users cursor: %v %s", err, r.Body)
			}
			return *r.JSON200.NextCursor
		}()
		nextYear := time.Now().Year() + 1
		vehicleBody := func(field, value string) string {
			m := map[string]string{
				"userId": itoa(owner.Id), "make": `"Toyota"`, "model": `"Corolla"`, "year": "2020",
				"vin": `"1HGCM82633A004352"`, "licensePlate": `"AB-123-CD"`,
			}
			if value == "" {
				delete(m, field)
			} else {
				m[field] = value
			}
			var parts []string
			for k, v := range m {
				parts = append(parts, fmt.Sprintf("%q:%s", k, v))
			}
			return "{" + strings.Join(parts, ",") + "}"
		}
		const json = "application/json"
		big := `{"email":"a@example.com","name":"` + strings.Repeat("x", 1<<20) + `","password":"correct horse battery"}`

		cases := []struct {
			name        string
			method      string
			path        string
			contentType string
			body        string
			status      int
			fields      []string // must all be named in errors
		}{
			{"id not a number", "GET", "/users/abc", "", "", 400, []string{"id"}},
			{"id zero", "GET", "/users/0", "", "", 400, []string{"id"}},
			{"id negative", "GET", "/vehicles/-5", "", "", 400, []string{"id"}},
			{"id overflows int64", "GET", "/users/99999999999999999999", "", "", 400, []string{"id"}},
			{"id fractional", "DELETE", "/vehicles/1.5", "", "", 400, []string{"id"}},
			{"limit zero", "GET", "/users?limit=0", "", "", 400, []string{"limit"}},
			{"limit over 100", "GET", "/vehicles?limit=101", "", "", 400, []string{"limit"}},
			{"limit not a number", "GET", "/users?limit=ten", "", "", 400, []string{"limit"}},
			{"cursor garbage", "GET", "/users?cursor=%21%21%21", "", "", 400, []string{"cursor"}},
			{"cursor forged", "GET", "/vehicles?cursor=djA", "", "", 400, []string{"cursor"}},
			{"cursor from another list", "GET", "/vehicles?cursor=" + usersCursor, "", "", 400, []string{"cursor"}},
			{"cursor too long", "GET", "/users?cursor=" + strings.Repeat("a", 200), "", "", 400, []string{"cursor"}},
			{"email filter not an email", "GET", "/users?email=not-an-email", "", "", 400, []string{"email"}},
			{"userId filter not a number", "GET", "/vehicles?userId=me", "", "", 400, []string{"userId"}},
			{"malformed JSON", "POST", "/users", json, `{"email":`, 400, []string{"body"}},
			{"JSON array body", "POST", "/users", json, `[]`, 400, nil},
			{"JSON null body", "POST", "/users", json, `null`, 400, nil},
			{"empty body", "POST", "/users", json, ``, 400, []string{"body"}},
			{"missing field", "POST", "/users", json, `{"email":"a@example.com","name":"A"}`, 400, []string{"password"}},
			{"unknown field", "POST", "/users", json, `{"email":"a@example.com","name":"A","password":"correct horse battery","role":"admin"}`, 400, []string{"role"}},
			{"email not an email", "POST", "/users", json, `{"email":"ada at example","name":"A","password":"correct horse battery"}`, 400, []string{"email"}},
			{"email with display name", "POST", "/users", json, `{"email":"Ada <ada@example.com>","name":"A","password":"correct horse battery"}`, 400, []string{"email"}},
			{"password too short", "POST", "/users", json, `{"email":"a@example.com","name":"A","password":"short"}`, 400, []string{"password"}},
			{"password too long", "POST", "/users", json, `{"email":"a@example.com","name":"A","password":"` + strings.Repeat("p", 257) + `"}`, 400, []string{"password"}},
			{"name blank", "POST", "/users", json, `{"email":"a@example.com","name":"   ","password":"correct horse battery"}`, 400, []string{"name"}},
			{"name empty", "POST", "/users", json, `{"email":"a@example.com","name":"","password":"correct horse battery"}`, 400, []string{"name"}},
			{"name wrong type", "POST", "/users", json, `{"email":"a@example.com","name":5,"password":"correct horse battery"}`, 400, []string{"name"}},
			{"several faults at once", "POST", "/users", json, `{"email":"nope","name":"","password":"x"}`, 400, []string{"email", "name", "password"}},
			{"wrong content type", "POST", "/users", "text/plain", `{"email":"a@example.com","name":"A","password":"correct horse battery"}`, 415, nil},
			{"form content type", "PUT", "/users/" + itoa(owner.Id), "application/x-www-form-urlencoded", `email=a`, 415, nil},
			{"body over 1 MiB", "POST", "/users", json, big, 413, nil},
			{"body not UTF-8", "POST", "/users", json, "{\"email\":\"a@example.com\",\"name\":\"\xff\xfe\",\"password\":\"correct horse battery\"}", 400, []string{"body"}},
			{"JSON nested too deep", "POST", "/users", json, strings.Repeat("[", 100000) + strings.Repeat("]", 100000), 400, []string{"body"}},
			{"number out of range", "POST", "/vehicles", json, vehicleBody("year", "1e400"), 400, []string{"year"}},
			{"owner id overflows", "POST", "/vehicles", json, vehicleBody("userId", "99999999999999999999"), 400, []string{"userId"}},
			{"repeated query parameter", "GET", "/users?limit=1&limit=2", "", "", 400, []string{"limit"}},
			{"empty email filter", "GET", "/users?email=", "", "", 400, []string{"email"}},
			{"VIN lower case", "POST", "/vehicles", json, vehicleBody("vin", `"1hgcm82633a004352"`), 400, []string{"vin"}},
			{"VIN with I", "POST", "/vehicles", json, vehicleBody("vin", `"1HGCM82633I004352"`), 400, []string{"vin"}},
			{"VIN too short", "POST", "/vehicles", json, vehicleBody("vin", `"1HGCM82633A00435"`), 400, []string{"vin"}},
			{"year before 1886", "POST", "/vehicles", json, vehicleBody("year", "1885"), 400, []string{"year"}},
			{"year after next year", "POST", "/vehicles", json, vehicleBody("year", itoa(int64(nextYear+1))), 400, []string{"year"}},
			{"year not an integer", "POST", "/vehicles", json, vehicleBody("year", "2020.5"), 400, []string{"year"}},
			{"year as string", "POST", "/vehicles", json, vehicleBody("year", `"2020"`), 400, []string{"year"}},
			{"plate too long", "POST", "/vehicles", json, vehicleBody("licensePlate", `"`+strings.Repeat("A", 17)+`"`), 400, []string{"licensePlate"}},
			{"plate empty", "POST", "/vehicles", json, vehicleBody("licensePlate", `""`), 400, []string{"licensePlate"}},
			{"owner id zero", "POST", "/vehicles", json, vehicleBody("userId", "0"), 400, []string{"userId"}},
			{"owner as string", "POST", "/vehicles", json, vehicleBody("userId", `"1"`), 400, []string{"userId"}},
			{"make missing on update", "PUT", "/vehicles/" + itoa(veh.Id), json, vehicleBody("make", ""), 400, []string{"make"}},
			{"color null", "PUT", "/vehicles/" + itoa(veh.Id), json, vehicleBody("color", "null"), 400, []string{"color"}},
			{"unknown path", "GET", "/nothing-here", "", "", 404, nil},
			{"trailing slash", "GET", "/users/", "", "", 404, nil},
			{"method not allowed", "DELETE", "/users", "", "", 405, nil},
			{"method not allowed on item", "POST", "/vehicles/" + itoa(veh.Id), json, `{}`, 405, nil},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var body io.Reader
				if c.body != "" {
					body = strings.NewReader(c.body)
				}
				resp, b := s.do(t, c.method, c.path, c.contentType, body)
				if resp.StatusCode != c.status {
					t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, resp.StatusCode, b, c.status)
				}
				p := decodeProblem(t, resp, b)
				noGoInternals(t, b)
				got := problemFields(p)
				for _, f := range c.fields {
					if !slices.Contains(got, f) {
						t.Errorf("errors name %v, want %q among them; body %s", got, f, b)
					}
				}
				if c.status == 400 && len(got) == 0 {
					t.Errorf("a 400 must name at least one field: %s", b)
				}
				if c.status == 405 && resp.Header.Get("Allow") == "" {
					t.Error("405 without Allow")
				}
			})
		}

		// A body over the limit with no Content-Length (chunked) is cut off at 1 MiB.
		t.Run("chunked body over 1 MiB", func(t *testing.T) {
			req, err := http.NewRequest("POST", s.URL+"/users", io.MultiReader(strings.NewReader(big)))
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = -1
			req.Header.Set("Content-Type", json)
			resp, err := s.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("chunked 1 MiB+: %d %s", resp.StatusCode, b)
			}
			decodeProblem(t, resp, b)
		})

		// Nothing bad input did may have changed data.
		list, err := s.Client.ListUsersWithResponse(context.Background(), nil)
		if err != nil || list.JSON200 == nil || len(list.JSON200.Items) != 3 { // admin, owner, second
			t.Errorf("users after bad input: %v %s", err, list.Body)
		}
		if strings.Contains(s.Logs.String(), `"level":"ERROR"`) {
			t.Errorf("bad input logged errors:\n%s", s.Logs.String())
		}
	})
}
