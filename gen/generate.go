// Package gen holds what the server is generated from openapi.yaml: oapi-codegen's models and
// strict server interface on net/http (the client is package client), and a byte-for-byte
// copy of openapi.yaml, which the service validates against and serves. The generator's own
// embedded copy is not the file (it capitalises every operationId), so clients generated from
// the URL would differ from clients generated from the file.
package gen

import _ "embed"

//go:generate go run ../internal/serverspec -o server.yaml ../openapi.yaml
//go:generate go tool -modfile=../tools/go.mod oapi-codegen -config cfg.yaml server.yaml
//go:generate cp ../openapi.yaml openapi.yaml

// Spec is openapi.yaml as committed.
//
//go:embed openapi.yaml
var Spec []byte
