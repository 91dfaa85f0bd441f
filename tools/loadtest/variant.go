package main

import (
	"fmt"
	"strings"
)

// variant is a -variant scenario: the cached full stack with more settings.
type variant struct {
	name string
	env  map[string]string
}

// variants is the repeatable -variant flag: NAME:K=V,K=V...
type variants []variant

func (vs *variants) String() string {
	var parts []string
	for _, v := range *vs {
		parts = append(parts, v.name)
	}
	return strings.Join(parts, " ")
}

func (vs *variants) Set(s string) error {
	name, kvs, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.TrimSpace(kvs) == "" {
		return fmt.Errorf("%q: want NAME:K=V[,K=V...]", s)
	}
	v := variant{name: "variant " + name, env: map[string]string{}}
	for _, kv := range strings.Split(kvs, ",") {
		k, val, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("%q: %q is not K=V", s, kv)
		}
		v.env[k] = val
	}
	for _, o := range *vs {
		if o.name == v.name {
			return fmt.Errorf("%q: the variant %s is given twice", s, name)
		}
	}
	*vs = append(*vs, v)
	return nil
}
