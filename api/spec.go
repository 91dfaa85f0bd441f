package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/swaggest/swgui"
	"github.com/swaggest/swgui/v5emb"

	"github.com/motorpool/motorpool/gen"
)

var defineFormats sync.Once

// RegisterFormats teaches kin-openapi the string formats the contract uses; kin-openapi
// checks none by default. Tests that validate responses call it too.
func RegisterFormats() {
	defineFormats.Do(func() {
		openapi3.DefineStringFormatValidator("email", openapi3.NewCallbackValidator(ValidateEmail))
	})
}

// ValidateEmail accepts a bare RFC 5322 addr-spec (no display name, no comments) whose domain
// has at least one dot-separated label: what a mail system can deliver to.
func ValidateEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return fmt.Errorf("must be an email address such as name@example.com")
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	if domain == "" || strings.HasPrefix(domain, "[") || strings.ContainsAny(domain, " \t") {
		return fmt.Errorf("must be an email address such as name@example.com")
	}
	return nil
}

// loadedSpec is the contract, loaded once for ValidateAs.
var loadedSpec = sync.OnceValues(LoadSpec)

// ValidateAs checks v against the contract's schema component named schema ("Email", "Name"),
// for values that reach the store without passing the API (ADMIN_EMAIL, ADMIN_NAME, admin
// create), so that they obey the same rules as what the API accepts.
func ValidateAs(schema string, v any) error {
	spec, err := loadedSpec()
	if err != nil {
		return err
	}
	ref := spec.Components.Schemas[schema]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("the contract has no schema %q", schema)
	}
	err = ref.Value.VisitJSON(v)
	if se, ok := errors.AsType[*openapi3.SchemaError](err); ok {
		return errors.New(schemaField(se, "").Message) // in the words a 400 would use
	}
	return err
}

// LoadSpec returns the contract embedded in the generated code, validated.
func LoadSpec() (*openapi3.T, error) {
	RegisterFormats()
	spec, err := openapi3.NewLoader().LoadFromData(gen.Spec)
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	if err := spec.Validate(openapi3.NewLoader().Context); err != nil {
		return nil, fmt.Errorf("embedded spec is invalid: %w", err)
	}
	spec.Servers = nil // the spec is served from wherever the service runs
	return spec, nil
}

// docsHandler serves Swagger UI from assets embedded in the binary, so it works offline.
func docsHandler() http.Handler {
	return noFraming(v5emb.NewWithConfig(swgui.Config{
		Title:       "Motorpool API",
		SwaggerJSON: "/openapi.json",
		BasePath:    "/docs/",
		ShowTopBar:  false,
		SettingsUI: map[string]string{
			// A token pasted into Authorize with its "Bearer " prefix would be sent as
			// "Bearer Bearer …": send it once.
			"requestInterceptor": authorizeInterceptor,
		},
	})("", "", ""))
}

// authorizeInterceptor is Swagger UI's requestInterceptor: it drops a doubled Bearer prefix.
const authorizeInterceptor = `function (req) {
  var h = req.headers || {};
  var m = /^Bearer\s+Bearer\s+(.+)$/i.exec(h.Authorization || "");
  if (m) { h.Authorization = "Bearer " + m[1]; }
  return req;
}`

// noFraming forbids other sites to frame the docs, whose pages hold a live "Authorize" form
// (clickjacking): CSP frame-ancestors for current browsers, X-Frame-Options for older ones.
func noFraming(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
		w.Header().Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}
