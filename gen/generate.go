// Package gen holds the code oapi-codegen generates from openapi.yaml: models, the strict
// server interface on net/http, a client and the embedded spec.
package gen

//go:generate go tool -modfile=../tools/go.mod oapi-codegen -config cfg.yaml ../openapi.yaml
