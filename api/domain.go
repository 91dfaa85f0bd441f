package api

import (
	"fmt"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Domain is a part of the API that a process may serve on its own (SERVE_DOMAINS): each
// operation of the contract names its domain in `x-domain`.
type Domain string

// The domains. Users holds the accounts and everything about signing in; vehicles holds the
// vehicles, and the list of a user's vehicles.
const (
	DomainUsers    Domain = "users"
	DomainVehicles Domain = "vehicles"
)

// everyDomain is the x-domain of the operational operations every process serves.
const everyDomain Domain = "all"

// Domains are all the domains, in the order SERVE_DOMAINS's default names them.
func Domains() []Domain { return []Domain{DomainUsers, DomainVehicles} }

// ParseDomains reads a comma-separated list of domain names, case-insensitive, each trimmed,
// and returns them once each in the order of Domains. It refuses an empty list, an empty item
// and an unknown name.
func ParseDomains(s string) ([]Domain, error) {
	named := map[Domain]bool{}
	for _, item := range strings.Split(s, ",") {
		d := Domain(strings.ToLower(strings.TrimSpace(item)))
		switch {
		case d == "":
			return nil, fmt.Errorf("must be one or more of %s, comma-separated, without empty items", strings.ReplaceAll(domainNames(), " or ", ", "))
		case !slices.Contains(Domains(), d):
			return nil, fmt.Errorf("%q is not a domain (want %s)", strings.TrimSpace(item), domainNames())
		}
		named[d] = true
	}
	var out []Domain
	for _, d := range Domains() {
		if named[d] {
			out = append(out, d)
		}
	}
	return out, nil
}

func domainNames() string {
	var names []string
	for _, d := range Domains() {
		names = append(names, string(d))
	}
	return strings.Join(names, " or ")
}

// operationDomains reads every operation's x-domain, by ServeMux pattern; an operation
// without exactly one known domain stops the service, so none can be left out of every
// process by a typo.
func operationDomains(spec *openapi3.T) (map[string]Domain, error) {
	out := map[string]Domain{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			raw, ok := op.Extensions["x-domain"]
			if !ok {
				return nil, fmt.Errorf("%s %s has no x-domain", method, path)
			}
			d, _ := raw.(string)
			if Domain(d) != everyDomain && !slices.Contains(Domains(), Domain(d)) {
				return nil, fmt.Errorf("%s %s: x-domain %v is not %s or %s", method, path, raw, domainNames(), everyDomain)
			}
			out[method+" "+path] = Domain(d)
		}
	}
	return out, nil
}

// hiddenOperations are the patterns of the operations a process serving served does not
// serve; nil served means every domain.
func hiddenOperations(spec *openapi3.T, served []Domain) (map[string]bool, error) {
	for _, d := range served {
		if !slices.Contains(Domains(), d) {
			return nil, fmt.Errorf("api: unknown domain %q", d)
		}
	}
	domains, err := operationDomains(spec)
	if err != nil {
		return nil, err
	}
	hidden := map[string]bool{}
	for pattern, d := range domains {
		if served != nil && d != everyDomain && !slices.Contains(served, d) {
			hidden[pattern] = true
		}
	}
	return hidden, nil
}

// withoutOperations is a shallow copy of spec without the hidden operations (and the paths
// left with none). The router that tells 404 from 405 is built on it, so that a hidden
// operation's path is as unknown as any other, not a 405 with an Allow naming what the
// process refuses; and so are the operations and rate-limit rules.
func withoutOperations(spec *openapi3.T, hidden map[string]bool) *openapi3.T {
	if len(hidden) == 0 {
		return spec
	}
	cp := *spec
	cp.Paths = openapi3.NewPaths()
	for path, item := range spec.Paths.Map() {
		it := *item
		for method := range item.Operations() {
			if hidden[method+" "+path] {
				it.SetOperation(method, nil)
			}
		}
		if len(it.Operations()) > 0 {
			cp.Paths.Set(path, &it)
		}
	}
	return &cp
}
