package api_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/motorpool/motorpool/storage/sqlite"
)

// exampleBody is the request body Swagger UI offers for an operation: the media type's own
// example when it has one, else one made of the schema's examples.
func exampleBody(t *testing.T, doc *openapi3.T, method, path string) any {
	t.Helper()
	op := doc.Paths.Find(path).GetOperation(method)
	mt := op.RequestBody.Value.Content.Get("application/json")
	if mt.Example != nil {
		return mt.Example
	}
	return schemaExample(t, method+" "+path, mt.Schema.Value)
}

func schemaExample(t *testing.T, at string, s *openapi3.Schema) any {
	t.Helper()
	if s.Example != nil {
		return s.Example
	}
	if !s.Type.Is("object") {
		t.Fatalf("%s: no example", at)
	}
	out := map[string]any{}
	for name, p := range s.Properties {
		out[name] = schemaExample(t, at+"."+name, p.Value)
	}
	return out
}

// The examples in the contract work for a new user who tries them in order, as in Swagger UI:
// register, sign in, register a vehicle, change it.
func TestSpecExamplesWork(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, openEmbedded(t, sqlite.Config{Path: filepath.Join(t.TempDir(), "motorpool.db")}))
	call := func(tok, method, path string, want int) []byte {
		t.Helper()
		b, err := json.Marshal(exampleBody(t, doc, method, path))
		if err != nil {
			t.Fatal(err)
		}
		concrete := path
		if path == "/vehicles/{id}" {
			concrete = "/vehicles/1"
		}
		resp, body := doAs(t, s, tok, method, concrete, string(b))
		if resp.StatusCode != want {
			t.Fatalf("%s %s with the spec's example %s: %d %s, want %d", method, path, b, resp.StatusCode, body, want)
		}
		return body
	}
	call("", http.MethodPost, "/users", 201)
	var pair struct{ AccessToken string }
	if err := json.Unmarshal(call("", http.MethodPost, "/auth/login", 200), &pair); err != nil {
		t.Fatal(err)
	}
	call(pair.AccessToken, http.MethodPost, "/vehicles", 201)
	call(pair.AccessToken, http.MethodPut, "/vehicles/{id}", 200)
}

// A token pasted with its scheme into a client that adds the scheme (Swagger UI's Authorize)
// is refused with a 401 that says so; a header of another scheme is told what to send.
func TestAuthorizationHeaderRefusalSaysWhy(t *testing.T) {
	s := newTestServer(t, openEmbedded(t, sqlite.Config{Path: filepath.Join(t.TempDir(), "motorpool.db")}))
	for _, c := range []struct{ header, want string }{
		{"Bearer Bearer " + s.token, "The Authorization header says Bearer twice: give the access token alone where the client adds the Bearer prefix (as Swagger UI's Authorize does)."},
		{"bearer  BEARER " + s.token, "The Authorization header says Bearer twice: give the access token alone where the client adds the Bearer prefix (as Swagger UI's Authorize does)."},
		{"Basic YWRhOnB3", "The Authorization header must be Bearer followed by the access token."},
		{"Bearer", "The Authorization header must be Bearer followed by the access token."},
		{"Bearer not-a-token", "The access token is invalid, expired or revoked."},
	} {
		resp, body, err := request(s, "GET", "/auth/me", c.header, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 401 {
			t.Fatalf("%q: %d %s", c.header, resp.StatusCode, body)
		}
		if p := decodeProblem(t, resp, body); p.Detail == nil || *p.Detail != c.want {
			t.Errorf("%q: detail %v, want %q", c.header, p.Detail, c.want)
		}
	}
	if resp, body, _ := request(s, "GET", "/auth/me", "Bearer "+s.token, nil); resp.StatusCode != 200 {
		t.Errorf("the token alone: %d %s", resp.StatusCode, body)
	}
}
