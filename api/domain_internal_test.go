package api

import (
	"strings"
	"testing"
)

// An operation without exactly one known x-domain stops the service at start, so no route
// can silently be served by no process (or by both) when the domains run apart.
func TestOperationDomainsRefusesBadRules(t *testing.T) {
	for name, tc := range map[string]struct {
		value   any
		missing bool
		want    string
	}{
		"missing":     {missing: true, want: "has no x-domain"},
		"two domains": {value: []any{"users", "vehicles"}, want: "is not users or vehicles or all"},
		"unknown":     {value: "cars", want: "is not users or vehicles or all"},
		"empty":       {value: "", want: "is not users or vehicles or all"},
	} {
		t.Run(name, func(t *testing.T) {
			spec, err := LoadSpec()
			if err != nil {
				t.Fatal(err)
			}
			op := spec.Paths.Value("/vehicles/{id}").Get
			if tc.missing {
				delete(op.Extensions, "x-domain")
			} else {
				op.Extensions["x-domain"] = tc.value
			}
			_, err = operationDomains(spec)
			if err == nil || !strings.Contains(err.Error(), "GET /vehicles/{id}") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("operationDomains: %v, want an error naming GET /vehicles/{id} and %q", err, tc.want)
			}
			if _, err := hiddenOperations(spec, []Domain{DomainUsers}); err == nil {
				t.Error("hiddenOperations accepted the spec")
			}
		})
	}
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hiddenOperations(spec, []Domain{"cars"}); err == nil {
		t.Error("hiddenOperations accepted an unknown domain to serve")
	}
}
